"""Threading a patron's email reply, by the Message-ID of an email refdesk sent them or by
its ticket tag, only when it comes from an address of that conversation.

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

The ticket tag `[refdesk #<conversation id>]` in a subject is no secret either (the id is in
every subject refdesk sends and can be guessed), so it is bound the same way: each address a
conversation is known to have (the sender of every email accepted into it, the recipient of
every email refdesk sent a patron in it) is remembered as a party of it (PARTY_NAMESPACE), and a
tag threads an email only when its sender is one of them.
"""

from __future__ import annotations

from collections.abc import Sequence

from services.ingest.providers.contacts import normalize_email
from services.ingest.providers.errors import InvalidField
from shared.events import (
    STAFF_FACING,
    Channel,
    NotificationKind,
    NotificationRequested,
    derived_id,
    message_id_local,
)

SENT_NAMESPACE = "email-sent"
"""The seen-keys namespace of Message-IDs refdesk sent, each bound to its recipient."""
STAFF_SENT_NAMESPACE = "email-staff-sent"
"""The seen-keys namespace of Message-IDs refdesk sent to staff (circulation managers, the
desk's safety reviews), each bound to its recipient: only a bounce joins a conversation
through them."""
CARE_SENT_NAMESPACE = "email-care-sent"
"""The same for the CARE Team's crisis alerts and re-escalations, kept apart so that a bounce
of one can be told from the others (it pages: the next crisis alert may bounce too)."""
BOUNCED_TO = {
    SENT_NAMESPACE: "patron",
    STAFF_SENT_NAMESPACE: "staff",
    CARE_SENT_NAMESPACE: "care_team",
}
"""Whom the email a bounce reports on was sent to, by the namespace it was found in."""
CARE_KINDS = frozenset({NotificationKind.CRISIS_ALERT, NotificationKind.CRISIS_REESCALATION})
"""The CARE Team's alerts: their emails are found in CARE_SENT_NAMESPACE, and a text thread
they name is a crisis's (`IngestStore.mark_crisis`)."""
PARTY_NAMESPACE = "email-party"
"""The seen-keys namespace of the addresses each conversation is known to have."""
MAX_CONVERSATION_ID = 128
"""Longest conversation id the seen-keys table holds."""


def local_part(message_id: str) -> str:
    """A Message-ID (without angle brackets) up to its last "@"."""
    return message_id.rsplit("@", 1)[0]


def sent_key(local: str, address: str) -> str:
    """The seen key of one sent Message-ID bound to the (normalised) address it went to."""
    return derived_id(SENT_NAMESPACE, local, address)


def party_key(conversation_id: str, address: str) -> str:
    """The seen key binding a (normalised) address to a conversation it takes part in."""
    return derived_id(PARTY_NAMESPACE, conversation_id, address)


def party_binding(conversation_id: str, address: str) -> tuple[str, str, str]:
    """The binding (namespace, key, conversation id) of an address to a conversation."""
    return (PARTY_NAMESPACE, party_key(conversation_id, address), conversation_id)


def sent_entry(command: NotificationRequested) -> tuple[str, str, str, None] | None:
    """The seen-keys entry (namespace, key, conversation id, no event id) recording the email a
    command asks the notifier to send: SENT_NAMESPACE for a patron's, CARE_SENT_NAMESPACE for
    the CARE Team's, STAFF_SENT_NAMESPACE for other staff's; None for any other command."""
    local = message_id_local(command.idempotency_key)
    address = _patron_address(command)
    if address is not None:
        return (SENT_NAMESPACE, sent_key(local, address), command.conversation_id, None)
    address = _email_address(command)
    if address is None:
        return None
    namespace = CARE_SENT_NAMESPACE if command.kind in CARE_KINDS else STAFF_SENT_NAMESPACE
    return (namespace, derived_id(namespace, local, address), command.conversation_id, None)


def bounce_lookups(message_id: str, recipients: Sequence[str]) -> list[tuple[str, str]]:
    """The seen keys (namespace, key) under which an email refdesk sent with this Message-ID
    to one of these addresses was recorded: a bounce reporting on it joins its conversation.
    A report naming another id or another address finds nothing."""
    local = local_part(message_id)
    found: list[tuple[str, str]] = []
    for address in recipients:
        found.append((SENT_NAMESPACE, sent_key(local, address)))
        for namespace in (STAFF_SENT_NAMESPACE, CARE_SENT_NAMESPACE):
            found.append((namespace, derived_id(namespace, local, address)))
    return found


def recipient_binding(command: NotificationRequested) -> tuple[str, str, str] | None:
    """The party binding of the patron a command emails to its conversation; None for any
    command that emails no patron."""
    address = _patron_address(command)
    return None if address is None else party_binding(command.conversation_id, address)


def _patron_address(command: NotificationRequested) -> str | None:
    """The patron address an email command writes to, as ingest writes a sender's; None for a
    staff-facing or non-email command, or a conversation id that is not one of ingest's."""
    if command.kind in STAFF_FACING:
        return None
    return _email_address(command)


def _email_address(command: NotificationRequested) -> str | None:
    """The address an email command writes to, normalised; None for another channel, or a
    conversation id that is not one of ingest's."""
    if command.channel is not Channel.EMAIL:
        return None
    if len(command.conversation_id) > MAX_CONVERSATION_ID:
        return None  # not one of ingest's ids, and too long for the seen-keys column
    return normalized_recipient(command.recipient)


def normalized_recipient(raw: str) -> str | None:
    """A command's recipient as ingest writes a sender's address (so the two compare)."""
    try:
        return normalize_email(raw, field="recipient")
    except InvalidField:
        return raw.strip().lower() or None
