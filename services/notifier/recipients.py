"""Which texts already belong to a phone number: a keyed hash of the number, kept with each SMS
row, and the provider ids attributed to it.

A text in doubt is looked up in Twilio's Messages list by number and body (sms_delivery.py),
and one number gets the same text for several notifications: in one conversation (HOURS texted
three times) and across conversations (a patron who texts again after a thread's window starts
a new conversation, and gets the same after-hours acknowledgement there). So a lookup excludes
every id attributed to the number, whatever the conversation: those the ledger holds for SMS
rows with the same `recipient_hash`, and those this process sent whose outcomes may not be
committed yet (`RecentTexts`).

The number stays where the ledger already kept it, in the command, and nowhere else: the hash
is HMAC-SHA256 under a key the notifier generated for itself and keeps in its own database
(`ledger_keys`, made by migration 0007, or here on first use), so the column is no second copy
of the number and is not reversed by hashing every phone number. A key of its own, not a
setting: it needs no provisioning, is the same for every replica on the database, and never
changes under the rows already hashed with it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import bindparam, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from services.notifier.tables import PENDING, ledger, ledger_keys

KEY_NAME = "recipient"
"""The `ledger_keys` row of the recipient hash's key."""
RECENT_PER_RECIPIENT = 50
RECENT_RECIPIENTS = 10_000
"""Bounds of the provider ids of texts sent lately, kept for the lookups of texts in doubt."""

_KEY = select(ledger_keys.c.secret).where(ledger_keys.c.name == bindparam("name"))
_NEW_KEY = {
    name: dialect.insert(ledger_keys).on_conflict_do_nothing(index_elements=[ledger_keys.c.name])
    for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))
}
# Every SMS row of the number a lookup can still meet: final since the attempt in doubt began
# (its provider id; a text sent in parts, every part's), or pending (the parts it has sent).
_TAKEN = select(ledger.c.provider_id, ledger.c.progress).where(
    ledger.c.recipient_hash == bindparam("rh"),
    or_(ledger.c.state == PENDING, ledger.c.finished_at >= bindparam("since")),
)


def ledger_key(conn: Connection) -> bytes:
    """The key of the recipient hash, made (once, whichever replica is first) if missing."""
    found = conn.scalar(_KEY, {"name": KEY_NAME})
    if found is None:
        made = {"name": KEY_NAME, "secret": secrets.token_hex(32)}
        conn.execute(_NEW_KEY[conn.dialect.name], made)
        found = conn.scalar(_KEY, {"name": KEY_NAME})
    return bytes.fromhex(str(found))


def recipient_hash(number: str, key: bytes) -> str:
    """The ledger's keyed hash of a phone number (hex; migration 0007 computes the same)."""
    return hmac.new(key, number.encode("utf-8"), hashlib.sha256).hexdigest()


def ids_taken(conn: Connection, recipient: str, *, since: datetime) -> set[str]:
    """The provider ids the ledger attributes to the number (by its hash) that a lookup since
    then could meet: none of them may be taken for another notification."""
    taken: set[str] = set()
    for provider_id, progress in conn.execute(_TAKEN, {"rh": recipient, "since": since}):
        if provider_id:
            taken.add(provider_id)
        if progress:
            taken.update(str(sid) for sid in progress.get("sids", ()))
    return taken


@dataclass
class RecentTexts:
    """Provider ids of texts this process sent lately, by recipient hash, whose outcomes may
    not be committed yet: a lookup for another text in doubt must not take them either."""

    _ids: OrderedDict[str, list[str]] = field(default_factory=OrderedDict)

    def remember(self, recipient: str, ids: Iterable[str]) -> None:
        """Keep the ids of a text just sent (the newest RECENT_PER_RECIPIENT per number, for
        the RECENT_RECIPIENTS numbers texted last)."""
        kept = self._ids.setdefault(recipient, [])
        kept.extend(ids)
        del kept[:-RECENT_PER_RECIPIENT]
        self._ids.move_to_end(recipient)
        while len(self._ids) > RECENT_RECIPIENTS:
            self._ids.popitem(last=False)

    def of(self, recipient: str) -> set[str]:
        """The ids remembered for a number (by its hash)."""
        return set(self._ids.get(recipient, ()))
