"""Normalise patron contacts: phones to E.164, email addresses to lower case."""

from __future__ import annotations

import re
from email.utils import getaddresses

import phonenumbers

from services.ingest.providers.errors import InvalidField

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
# A pragmatic addr-spec: no quoted local parts or IP-literal domains; the domain needs a dot.
_ADDR_SPEC = re.compile(rf"[^@\s<>()\[\],;:\"]+@{_LABEL}(?:\.{_LABEL})+")


def normalize_phone(raw: str, default_region: str = "US", *, field: str = "phone") -> str:
    """Return `raw` as an E.164 number; InvalidField(field) if it is not a valid number."""
    try:
        number = phonenumbers.parse(raw.strip(), default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidField(field, "not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidField(field, "not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def parse_address(raw: str, *, field: str = "email") -> tuple[str | None, str]:
    """Split one address ("Jane Doe <jane@x.edu>") into (display name, lower-cased address)."""
    pairs = [(name, addr) for name, addr in getaddresses([raw]) if name or addr]
    if len(pairs) != 1:
        raise InvalidField(field, "expected exactly one email address")
    name, addr = pairs[0]
    addr = addr.strip()
    if not _ADDR_SPEC.fullmatch(addr):
        raise InvalidField(field, "not an email address")
    return (name.strip() or None), addr.lower()


def normalize_email(raw: str, *, field: str = "email") -> str:
    """The lower-cased address in `raw`; InvalidField(field) unless it holds exactly one."""
    return parse_address(raw, field=field)[1]
