"""What the router remembers of each conversation, so that a patron's next message is a
follow-up and not a new question.

A conversation's first message is routed in full: its department, its hand-off, its emails.
Every later message until the conversation is closed is a follow-up: it is decided as any
message is (a crisis in it escalates at once, with the CARE Team's alert and the patron's
crisis resources), and its decision says `follow_up`, so the status service leaves the
conversation with its department and librarian unless the follow-up is a crisis. What the
first message already set in motion is not sent again: no second hand-off (the patron is
where the first put them) or after-hours acknowledgement, no second circulation email unless
the follow-up names a patron, TCC ID or item (then the engine sends it to the circulation
managers whatever it would route to alone: `DecisionInput.circulation_emailed`), no safety
review of a conversation the CARE Team already has. Once closed, the patron's next message
starts a new round, a new opening of the conversation with its own after-hours
acknowledgement (keyed by the close before it, `last_close`), except in a conversation where
a crisis was escalated: that one stays a follow-up, its close sends no survey, and a help word
texted alone in it (HELP, AYUDA) is routed as a message of the crisis, not answered as a
keyword (`DecisionInput.crisis_conversation`); nor does the close of a conversation of text
keywords only (HELP, HOURS) send a survey.

The rows are written in the transaction that records the batch's interactions as processed,
after the batch's events were published: a crash in between decides the batch again from the
rows as they were, into the same ids, which consumers drop.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite

from services.router.tables import conversations
from shared.events import (
    ConversationClosed,
    NotificationKind,
    NotificationRequested,
    derived_id,
)


@dataclass(frozen=True)
class Remembered:
    """One conversation as the router last left it."""

    routed_at: datetime
    crisis: bool = False
    circulation_emailed: bool = False
    closed: bool = False
    asked: bool = True
    """the patron wrote something other than text keywords (HELP, HOURS...)"""
    last_close: str | None = None
    """the latest close applied (`close_token`): it names the conversation's opening after it,
    so a conversation closed and reopened gets its after-hours acknowledgement again, once"""
    circulation_key: str | None = None
    """the idempotency key of the circulation managers' first email in this round: a second
    one (more details) threads under it"""
    crisis_alerted_at: datetime | None = None
    """when the CARE Team was last alerted about it (and the patron sent crisis resources)"""
    review_alerted_at: datetime | None = None
    """when the desk was last alerted to read it (a possible crisis)"""
    circulation_named: str | None = None
    """a digest of what the circulation managers' last email about it named"""
    last_message_at: datetime | None = None
    """when the patron's latest message it decided was received: a close that accounted only
    for messages before it (its `through`) is stale (made before the patron wrote again, and
    published late)"""

    @property
    def follows(self) -> bool:
        """Whether the patron's next message is a follow-up: the patron asked something (not
        only text keywords, which route nothing) and the conversation was not closed since;
        or a crisis was escalated in it (a crisis conversation never starts over: it stays
        with the CARE Team, closed or not)."""
        return self.crisis or (self.asked and not self.closed)


def close_token(closed: ConversationClosed) -> str:
    """What names one close of a conversation, deterministic from its event (a redelivered or
    republished close gives the same): its time, in UTC."""
    return closed.closed_at.astimezone(UTC).isoformat()


def opening_of(before: Remembered | None) -> str | None:
    """What names the opening a conversation's next new round belongs to: the close before it
    (None: the conversation's first opening)."""
    return None if before is None else before.last_close


CIRCULATION_FIELDS = ("patron_name", "tcc_id", "item")
"""What makes a circulation email worth sending again: a name, a TCC ID or an item."""

REALERT_AFTER = timedelta(minutes=10)
"""A follow-up's crisis alert and resources, or its safety-review alert, go out again only
this long after the last one about the conversation: the first reached the CARE Team and the
desk, the conversation is on top of every queue, its new messages show on the console at once,
and a crisis nobody acknowledges is re-escalated; one patron texting 200 times in a minute had
sent the CARE Team 31 alerts and the patron 31 crisis texts (an outside review)."""


def circulation_named(command: NotificationRequested) -> str | None:
    """A digest of what a circulation email names (None: it names nothing)."""
    named = [str(command.context.get(name) or "") for name in CIRCULATION_FIELDS]
    if not any(named):
        return None
    return derived_id("circulation-named", *named)


def follow_up_keeps(command: NotificationRequested, before: Remembered, now: datetime) -> bool:
    """Whether a follow-up's command is sent: not a second hand-off or after-hours
    acknowledgement (staff may be in the conversation already), not a second circulation
    email that names nothing new (no patron name, TCC ID or item, or the same as the last:
    "do I have to pay a fine?" after the first, the same message again), not a safety review
    of a conversation already escalated as a crisis, not a crisis's alert and resources or a
    safety review within REALERT_AFTER of the last; everything else (a keyword's reply, a
    circulation email with new details) as for a first message."""
    if command.kind in (NotificationKind.HANDOFF, NotificationKind.AFTER_HOURS_ACK):
        return False
    if command.kind is NotificationKind.CIRCULATION_EMAIL:
        named = circulation_named(command)
        if named is None:
            return not before.circulation_emailed
        return named != before.circulation_named
    if command.kind in (NotificationKind.CRISIS_ALERT, NotificationKind.CRISIS_RESOURCES):
        return _due(before.crisis_alerted_at, now)
    if command.kind is NotificationKind.SAFETY_REVIEW_ALERT:
        return not before.crisis and _due(before.review_alerted_at, now)
    return True


def _due(last: datetime | None, now: datetime) -> bool:
    return last is None or now - last >= REALERT_AFTER


def _aware(at: datetime | None) -> datetime | None:
    """A stored time, aware (SQLite hands back naive UTC)."""
    return at if at is None or at.tzinfo is not None else at.replace(tzinfo=UTC)


def threaded(command: NotificationRequested, before: Remembered) -> NotificationRequested:
    """A follow-up's circulation email names the round's first (`earlier_key`), under which the
    notifier threads it; any other command as it is."""
    if command.kind is not NotificationKind.CIRCULATION_EMAIL or before.circulation_key is None:
        return command
    context = {**command.context, "earlier_key": before.circulation_key}
    return command.model_copy(update={"context": context})


def load(conn: Connection, ids: Collection[str]) -> dict[str, Remembered]:
    """The remembered conversations among these ids, in one query (a unit of work)."""
    if not ids:
        return {}
    c = conversations.c
    rows = conn.execute(
        select(
            c.conversation_id,
            c.routed_at,
            c.crisis,
            c.circulation_emailed,
            c.closed,
            c.asked,
            c.last_close,
            c.circulation_key,
            c.crisis_alerted_at,
            c.review_alerted_at,
            c.circulation_named,
            c.last_message_at,
        ).where(c.conversation_id.in_(sorted(set(ids))))
    )
    return {
        row.conversation_id: Remembered(
            routed_at=row.routed_at,
            crisis=row.crisis,
            circulation_emailed=row.circulation_emailed,
            closed=row.closed,
            asked=row.asked,
            last_close=row.last_close,
            circulation_key=row.circulation_key,
            crisis_alerted_at=_aware(row.crisis_alerted_at),
            review_alerted_at=_aware(row.review_alerted_at),
            circulation_named=row.circulation_named,
            last_message_at=_aware(row.last_message_at),
        )
        for row in rows
    }


def save(conn: Connection, changed: Iterable[tuple[str, Remembered]]) -> None:
    """Write the batch's changed conversations (one statement; a unit of work)."""
    rows = [
        {
            "conversation_id": conversation_id,
            "routed_at": state.routed_at,
            "crisis": state.crisis,
            "circulation_emailed": state.circulation_emailed,
            "closed": state.closed,
            "asked": state.asked,
            "last_close": state.last_close,
            "circulation_key": state.circulation_key,
            "crisis_alerted_at": state.crisis_alerted_at,
            "review_alerted_at": state.review_alerted_at,
            "circulation_named": state.circulation_named,
            "last_message_at": state.last_message_at,
        }
        for conversation_id, state in dict(changed).items()
    ]
    if rows:
        conn.execute(_upsert(conn.dialect.name), rows)


def _upsert(dialect: str) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(conversations)
    return statement.on_conflict_do_update(
        index_elements=[conversations.c.conversation_id],
        set_={
            name: statement.excluded[name]
            for name in (
                "routed_at",
                "crisis",
                "circulation_emailed",
                "closed",
                "asked",
                "last_close",
                "circulation_key",
                "crisis_alerted_at",
                "review_alerted_at",
                "circulation_named",
                "last_message_at",
            )
        },
    )


def forget_named(conn: Connection, before: datetime) -> int:
    """Clear what the circulation emails of conversations first routed before `before` named
    (the transcripts' retention ago): the digest is a hash of a patron's name, TCC ID and item
    that anyone with a copy of the database could test a guess against, and it had been kept
    for ever (an outside review). Returns how many rows it cleared (a unit of work)."""
    c = conversations.c
    result = conn.execute(
        update(conversations)
        .where(c.routed_at < before, c.circulation_named.is_not(None))
        .values(circulation_named=None)
    )
    return int(result.rowcount or 0)
