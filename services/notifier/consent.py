"""Which numbers texted STOP: the notifier's own opt-out list, so no text goes to a patron who
opted out, whether or not Twilio enforces it too.

The router turns a text that is a carrier opt-out keyword (STOP, QUIT, ...) into an
SMS_OPT_OUT command and an opt-in keyword (START, UNSTOP; YES texted alone, which opts in only a
number that opted out, as Twilio's YES does: recorded for any other number it changes nothing,
and recording it makes a redelivery of it after a later STOP change nothing too) into
SMS_OPT_IN; each is recorded here, keyed by its idempotency key (a replay changes nothing),
against the number's keyed hash (recipients.py: never the number). The number's latest change
decides: every text to a number whose latest change is an opt-out is settled as refused with
Twilio's own code for it (21610), whatever its conversation or kind, except the one
confirmation the opt-out names (the policy's STOP reply, when it has one). Twilio's own 21610
to a text is recorded as an opt-out too (`provider_opt_out`): a STOP Twilio keeps that refdesk
never saw.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from services.notifier import recipients
from services.notifier.tables import sms_consent
from shared.events import NotificationKind, NotificationRequested

_RECORD = {
    name: dialect.insert(sms_consent)
    .on_conflict_do_nothing(index_elements=[sms_consent.c.idempotency_key])
    .returning(sms_consent.c.idempotency_key)
    for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))
}
_LATEST_AT = (
    select(sms_consent.c.recorded_at)
    .where(sms_consent.c.recipient_hash == bindparam("rh"))
    .order_by(sms_consent.c.id.desc())
    .limit(1)
)
_LATEST = (
    select(sms_consent.c.opted_out, sms_consent.c.confirmation_key)
    .where(sms_consent.c.recipient_hash == bindparam("rh"))
    .order_by(sms_consent.c.id.desc())
    .limit(1)
)


def record(
    conn: Connection,
    commands: Sequence[NotificationRequested],
    *,
    now: datetime,
    recipient_key: bytes,
) -> set[str]:
    """Record the opt-outs and opt-ins, numbered in their order; the keys that were new."""
    if not commands:
        return set()
    rows = [
        {
            "idempotency_key": cmd.idempotency_key,
            "recipient_hash": recipients.recipient_hash(cmd.recipient, recipient_key),
            "opted_out": cmd.kind is NotificationKind.SMS_OPT_OUT,
            "confirmation_key": cmd.context.get("confirmation_key"),
            "conversation_id": cmd.conversation_id,
            "recorded_at": now,
        }
        for cmd in commands
    ]
    return set(conn.scalars(_RECORD[conn.dialect.name], rows))


def refuses(conn: Connection, *, recipient_hash: str, key: str) -> bool:
    """True when the number's latest change is an opt-out and the text `key` is not the one
    confirmation it names."""
    latest = conn.execute(_LATEST, {"rh": recipient_hash}).first()
    if latest is None or not latest.opted_out:
        return False
    return bool(latest.confirmation_key != key)


def provider_opt_out(
    conn: Connection,
    *,
    recipient_hash: str,
    key: str,
    conversation_id: str,
    since: datetime,
    now: datetime,
) -> bool:
    """Record an opt-out Twilio told of (its 21610 to the text `key`: the number unsubscribed at
    Twilio, a STOP refdesk never saw) unless the number's consent changed since `since`, when
    the refused attempt began (a START recorded meanwhile is the newer word). True if
    recorded; recorded once per text."""
    latest = conn.execute(_LATEST_AT, {"rh": recipient_hash}).first()
    if latest is not None and latest.recorded_at >= since:
        return False
    row = {
        "idempotency_key": f"provider-opt-out:{key}",
        "recipient_hash": recipient_hash,
        "opted_out": True,
        "confirmation_key": None,
        "conversation_id": conversation_id,
        "recorded_at": now,
    }
    return bool(list(conn.scalars(_RECORD[conn.dialect.name], [row])))
