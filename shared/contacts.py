"""Patrons' contacts as every service compares them."""

from __future__ import annotations


def untagged(contact: str) -> str:
    """An email address without its sub-address ("eve.park+x@my.tccd.edu" is
    "eve.park@my.tccd.edu": most mail systems deliver both to one mailbox); anything else (a
    phone number) as it is."""
    local, at, domain = contact.rpartition("@")
    if not at or "+" not in local:
        return contact
    return f"{local.split('+', 1)[0]}@{domain}"
