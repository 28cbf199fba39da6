"""Threading a patron's email reply by the Message-ID of an email refdesk sent them.

A patron's mail client may answer a staff reply with only `In-Reply-To: <refdesk's
Message-ID>` (no References, no ticket tag in the subject). Ingest learns those ids from the
commands on refdesk.notifications: the notifier makes each email's Message-ID from the
command's idempotency key with `shared.events.message_id_local`, so ingest derives the same id
from the command by calling it too (and both read `shared.events.STAFF_FACING`).

The ids are not secret: some are derived from ids a patron can see (a survey's key is the
conversation id), and anyone a patron forwards an email to sees its Message-ID. So a sent id is
remembered bound to the address it was sent to, and a reply threads through it only when it
comes from that address: naming another patron's Message-ID from another address starts a new
conversation, as before. Only emails sent to patrons count (a staff member answering a
circulation email from their own address is not the patron).
"""

from __future__ import annotations

from services.ingest.providers.contacts import normalize_email
from services.ingest.providers.errors import InvalidField
from shared.events import STAFF_FACING, Channel, NotificationRequested, derived_id, message_id_local

SENT_NAMESPACE = "email-sent"
"""The seen-keys namespace of Message-IDs refdesk sent, each bound to its recipient."""
MAX_CONVERSATION_ID = 128
"""Longest conversation id the seen-keys table holds."""


def local_part(message_id: str) -> str:
    """A Message-ID (without angle brackets) up to its last "@"."""
    return message_id.rsplit("@", 1)[0]


def sent_key(local: str, address: str) -> str:
    """The seen key of one sent Message-ID bound to the (normalised) address it went to."""
    return derived_id(SENT_NAMESPACE, local, address)


def sent_entry(command: NotificationRequested) -> tuple[str, str, str, None] | None:
    """The seen-keys entry (namespace, key, conversation id, no event id) recording the email a
    command asks the notifier to send to a patron; None for any other command."""
    if command.channel is not Channel.EMAIL or command.kind in STAFF_FACING:
        return None
    if len(command.conversation_id) > MAX_CONVERSATION_ID:
        return None  # not one of ingest's ids, and too long for the seen-keys column
    address = normalized_recipient(command.recipient)
    if address is None:
        return None
    local = message_id_local(command.idempotency_key)
    return (SENT_NAMESPACE, sent_key(local, address), command.conversation_id, None)


def normalized_recipient(raw: str) -> str | None:
    """A command's recipient as ingest writes a sender's address (so the two compare)."""
    try:
        return normalize_email(raw, field="recipient")
    except InvalidField:
        return raw.strip().lower() or None
