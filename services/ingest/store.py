"""Ingest's shared state: provider ids already accepted, SMS threads, blocked contacts.

Every replica uses the same database, so a provider's retry is recognised whichever replica
it reaches, and across restarts. Seen keys expire after REFDESK_DEDUPE_TTL_DAYS.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
from collections.abc import Awaitable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import bindparam, case, delete, false, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.errors import StoreUnavailable
from services.ingest.metrics import SEEN_KEYS_PURGED, SMS_THREADS_PURGED
from services.ingest.tables import blocklist, seen, sms_threads, thread_marks
from shared.batching import Batcher
from shared.clock import utcnow
from shared.contacts import untagged
from shared.logs import REPEATING
from shared.syncdb import UnitRunner

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Thread:
    """A phone number's latest SMS conversation."""

    conversation_id: str
    last_message_at: datetime
    closed: bool


PURGE_EVERY_S = 3600.0
"""How often expired seen keys are deleted (lookups already ignore them; this bounds the table
to about REFDESK_DEDUPE_TTL_DAYS of provider ids)."""

# Store operations carried by the batches: ("seen", namespace, key) and ("thread", contact) are
# reads; ("remember", namespace, key, conversation_id, event_id), ("bind", namespace, key,
# conversation_id), ("touch", contact, conversation_id, at), ("replayed", contact,
# conversation_id, at) (a touch only where nothing newer is there), ("close", conversation_id),
# ("crisis", conversation_id) and ("forget", conversation_id) are writes.
Op = tuple[Any, ...]
Entry = tuple[str, str, str | None, str | None]
"""A seen key: (namespace, key, conversation_id, event_id)."""
Binding = tuple[str, str, str]
"""A key bound to a conversation, kept while it is in use: (namespace, key, conversation_id)."""


class IngestStore:
    """Dedupe keys, SMS threads and the blocklist, read and written in shared round trips.

    Lookups and writes made by concurrent requests are grouped (`shared.batching.Batcher`): one
    SELECT per table for a batch of lookups, one transaction for a batch of writes, which every
    caller awaits (group commit), so a webhook is still answered only after its rows are
    committed. The blocklist is held in memory: this process's admin changes apply at once, other
    replicas' within `blocklist_refresh_s`.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        ttl: timedelta,
        *,
        blocklist_refresh_s: float = 5.0,
        purge_every_s: float = PURGE_EVERY_S,
        thread_retention: timedelta | None = None,
        wait_s: float | None = None,
    ) -> None:
        self.engine = engine
        self.wait_s = wait_s
        """Longest a request waits for a lookup or a claim, the steps before its event is
        published, before it is answered 503 (`StoreUnavailable`): a database that stops
        answering without refusing (a partition, a frozen server) would otherwise hold every
        webhook until the provider gives up. None waits as long as the database takes. The
        writes after a publish are not cut short: they are bounded by the publish's own wait
        and still land when the database answers, so a retry finds the message."""
        self.ttl = ttl
        self.thread_retention = thread_retention
        """A number's text thread (the number, in clear) is deleted this long after its last
        message (REFDESK_TRANSCRIPT_RETENTION_DAYS); None keeps threads."""
        self.blocklist_refresh_s = blocklist_refresh_s
        self._blocked: frozenset[str] = frozenset()
        self._reader = UnitRunner(engine, name="ingest-reads")
        self._writer = UnitRunner(engine, name="ingest-writes")
        self._reads: Batcher[Op, Any] = Batcher(self._read_batch)
        self._writes: Batcher[list[Op], None] = Batcher(self._write_batch)
        self._refresher: asyncio.Task[None] | None = None
        self.purge_every_s = purge_every_s
        self._purger: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Load the blocklist and keep it fresh; purge expired seen keys now and periodically."""
        await self.load_blocklist()
        self._refresher = asyncio.create_task(self._refresh_blocklist())
        self._purger = asyncio.create_task(self._purge_periodically())

    async def ping(self) -> bool:
        """Whether both database threads run a unit in time (`UnitRunner.ping`)."""
        return all(await asyncio.gather(self._reader.ping(), self._writer.ping()))

    async def close(self) -> None:
        """Stop the refresh task and the batch workers."""
        for task in (self._refresher, self._purger):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._reads.close()
        await self._writes.close()
        self._reader.close()
        self._writer.close()

    async def _within_wait(self, work: Awaitable[T]) -> T:
        """`work`, or StoreUnavailable once `wait_s` has passed (a unit already handed to
        the database thread still runs when the database answers; its result is dropped)."""
        try:
            async with asyncio.timeout(self.wait_s):
                return await work
        except TimeoutError as exc:
            raise StoreUnavailable("TimeoutError") from exc

    # -- reads ------------------------------------------------------------------------------

    async def _read_batch(self, ops: list[Op]) -> list[Any]:
        return await self._reader(lambda conn: _read(conn, ops))

    async def _seen(self, namespace: str, key: str) -> tuple[str, str] | None:
        result: tuple[str, str] | None = await self._within_wait(
            self._reads.submit(("seen", namespace, key))
        )
        return result

    async def seen_conversation(self, namespace: str, key: str) -> str | None:
        """The conversation id recorded with a seen key, or None if unseen or expired."""
        row = await self._seen(namespace, key)
        return None if row is None else row[0]

    async def seen_event_id(self, namespace: str, key: str) -> str | None:
        """The event id recorded with a seen key, or None if unseen or expired."""
        row = await self._seen(namespace, key)
        return None if row is None else row[1]

    async def is_seen(self, namespace: str, key: str) -> bool:
        """Whether a key was accepted before (and has not expired)."""
        return await self._seen(namespace, key) is not None

    async def open_sms_thread(self, contact: str, *, window: timedelta) -> str | None:
        """The open conversation of a phone number within the reply window, if any."""
        thread: Thread | None = await self._within_wait(self._reads.submit(("thread", contact)))
        if thread is None or thread.closed or utcnow() - thread.last_message_at > window:
            return None
        return thread.conversation_id

    async def sms_contact_of(self, conversation_id: str) -> str | None:
        """The number whose text thread this conversation is, while ingest keeps the thread;
        None for any other conversation (a close the chat platform sent without the patron
        still gets its survey to the number)."""

        def read(conn: Connection) -> str | None:
            found = conn.execute(_THREAD_CONTACT, {"conversation_id": conversation_id})
            return found.scalar()

        contact: str | None = await self._within_wait(self._reader(read))
        return contact

    async def sms_state(
        self, message_sid: str, contact: str, *, window: timedelta
    ) -> tuple[bool, bool, str | None]:
        """(seen before, sender blocked, open conversation) of one inbound text."""
        was_seen, open_id = await asyncio.gather(
            self.is_seen("twilio", message_sid), self.open_sms_thread(contact, window=window)
        )
        if was_seen:
            return True, False, None
        return False, self.is_blocked(contact), open_id

    # -- writes -----------------------------------------------------------------------------

    async def remember(self, *entries: Entry, bindings: Sequence[Binding] = ()) -> None:
        """Record (namespace, key, conversation_id, event_id) entries; valid existing ones are
        kept (a concurrent delivery of the same message recorded it first). `bindings` are
        written in the same transaction, each valid for the TTL from its latest recording."""
        await self._writes.submit(
            [("remember", *entry) for entry in entries]
            + [("bind", *binding) for binding in bindings]
        )

    async def claim(self, namespace: str, key: str, event_id: str) -> str:
        """Record a key for an event unless a valid record of it exists, in one unique insert
        that wins or loses (concurrent claims included); the event id the key now stands for:
        `event_id` when this claim won or the key was already this event's, another otherwise."""
        holder: str = await self._within_wait(
            self._writer(lambda conn: _claim(conn, namespace, key, event_id, ttl=self.ttl))
        )
        return holder

    async def record_sms(
        self, contact: str, conversation_id: str, message_sid: str, event_id: str
    ) -> None:
        """After the broker's ack: the thread's latest text and the seen MessageSid, committed
        together."""
        await self._writes.submit(
            [
                ("touch", contact, conversation_id, utcnow()),
                ("remember", "twilio", message_sid, conversation_id, event_id),
            ]
        )

    async def replay_sms(self, texts: Sequence[tuple[str, str, datetime]]) -> None:
        """Patron texts read back from refdesk.interactions, as (contact, conversation_id,
        received_at): each number's thread is set to its latest text where the table has
        nothing as new (a database restored from a backup, rewound to T, had lost every thread
        begun after T, and a crisis patron's next text opened a new, ordinary conversation: an
        outside review). A text the webhook already recorded changes nothing."""
        if texts:
            await self._writes.submit([("replayed", *text) for text in texts])

    async def close_conversation(self, conversation_id: str) -> None:
        """A closed SMS ticket: the number's next text starts a new conversation, unless the
        CARE Team was alerted about it (`mark_crisis`): a crisis's thread is not ended by any
        close, the desk's or the chat platform's, so the patron's next text within the reply
        window joins the crisis (reopened with the CARE Team if it was closed), as an email reply
        to a crisis does; an unacknowledged crisis the platform closed is still open."""
        await self._thread_writes("close", [conversation_id])

    async def mark_crisis(self, conversation_ids: Collection[str]) -> None:
        """The CARE Team was alerted about these conversations: their text threads (those still
        each number's latest) are kept until the reply window lapses, a close that came first
        included."""
        await self._thread_writes("crisis", conversation_ids)

    async def forget_conversations(self, conversation_ids: Collection[str]) -> None:
        """Erased on the patron's request (status's `desk.erased`): the number whose text thread
        a conversation is goes now rather than at the retention (its next text starts a new
        conversation)."""
        await self._thread_writes("forget", conversation_ids)

    async def _thread_writes(self, kind: str, conversation_ids: Collection[str]) -> None:
        """One `_THREAD_WRITES` change per conversation, group-committed with the other writes."""
        await self._writes.submit([(kind, conversation_id) for conversation_id in conversation_ids])

    async def _write_batch(self, items: list[list[Op]]) -> list[None]:
        ops = [op for item in items for op in item]
        await self._writer(lambda conn: _write(conn, ops, ttl=self.ttl))
        return [None] * len(items)

    async def purge_expired(self) -> int:
        """Drop expired seen keys, and text threads past the retention (on the writer, like
        every write); returns how many seen keys, counted in
        refdesk_ingest_seen_keys_purged_total (threads: refdesk_ingest_sms_threads_purged_total)."""
        now = utcnow()
        retention = self.thread_retention

        def purge(conn: Connection) -> tuple[int, int]:
            keys = conn.execute(delete(seen).where(seen.c.expires_at <= now)).rowcount or 0
            # marks outlive no replay: a rewind reaches back as far as the seen keys do
            conn.execute(delete(thread_marks).where(thread_marks.c.marked_at <= now - self.ttl))
            threads = 0
            if retention is not None:
                old = sms_threads.c.last_message_at < now - retention
                threads = conn.execute(delete(sms_threads).where(old)).rowcount or 0
            return int(keys), int(threads)

        purged, threads = await self._writer(purge)
        SEEN_KEYS_PURGED.inc(purged)
        SMS_THREADS_PURGED.inc(threads)
        return purged

    async def _purge_periodically(self) -> None:
        while True:
            try:
                await self.purge_expired()
            except Exception as exc:  # the next round tries again; lookups ignore expired keys
                log.warning(
                    "seen-key purge failed", extra={"error": type(exc).__name__, REPEATING: True}
                )
            await asyncio.sleep(self.purge_every_s)

    # -- blocklist --------------------------------------------------------------------------

    def is_blocked(self, contact: str) -> bool:
        """Whether a contact is on the blocklist (as of the last refresh or local change): an
        address with a "+tag" as the address without it (a blocked eve.park@ writing as
        eve.park+x@ had been accepted: an outside review)."""
        return contact in self._blocked or untagged(contact) in self._blocked

    async def load_blocklist(self) -> None:
        """Read the whole blocklist (a short list of contacts) into memory."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(blocklist.c.contact))
            self._blocked = frozenset(row[0] for row in rows)

    async def _refresh_blocklist(self) -> None:
        while True:
            await asyncio.sleep(self.blocklist_refresh_s)
            try:
                await self.load_blocklist()
            except Exception as exc:  # the last list stays in force until the database answers
                log.warning(
                    "blocklist refresh failed",
                    extra={"error": type(exc).__name__, REPEATING: True},
                )

    async def block(self, contact: str, *, reason: str | None, added_by: str) -> None:
        """Put a contact on the blocklist (idempotent)."""
        async with self.engine.connect() as conn:
            insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
            stmt = insert(blocklist).values(
                contact=contact, reason=reason, added_by=added_by, added_at=utcnow()
            )
            await conn.execute(stmt.on_conflict_do_nothing(index_elements=[blocklist.c.contact]))
            await conn.commit()
        self._blocked = self._blocked | {contact}

    async def unblock(self, contact: str) -> bool:
        """Take a contact off the blocklist; False if it was not there."""
        async with self.engine.connect() as conn:
            result = await conn.execute(delete(blocklist).where(blocklist.c.contact == contact))
            await conn.commit()
        self._blocked = self._blocked - {contact}
        return bool(result.rowcount)


# Built once: SQLAlchemy then only looks up the compiled form (the constructs themselves cost
# more to build than SQLite takes to run them).
_SEEN_LOOKUP = select(seen.c.key, seen.c.conversation_id, seen.c.event_id).where(
    seen.c.namespace == bindparam("namespace"),
    seen.c.key.in_(bindparam("keys", expanding=True)),
    seen.c.expires_at > bindparam("now"),
)
_THREAD_LOOKUP = select(sms_threads).where(
    sms_threads.c.contact.in_(bindparam("contacts", expanding=True))
)
_THREAD_CONTACT = (
    select(sms_threads.c.contact)
    .where(sms_threads.c.conversation_id == bindparam("conversation_id"))
    .limit(1)
)
_OF_IDS = sms_threads.c.conversation_id.in_(bindparam("ids", expanding=True))
_THREAD_WRITES = {
    "close": update(sms_threads).where(_OF_IDS, ~sms_threads.c.crisis).values(closed=True),
    "crisis": update(sms_threads).where(_OF_IDS).values(crisis=True, closed=False),
    "forget": delete(sms_threads).where(_OF_IDS),
}
"""A close ends a thread the CARE Team was not alerted about; an alert keeps its thread open (a
close may have come first); an erasure forgets the number."""

_MARKS = {"crisis": "crisis", "forget": "forgotten"}
"""The thread writes kept by conversation (`thread_marks`), and the mark each sets."""
_MARKED = _OF_IDS & sms_threads.c.conversation_id.in_(
    select(thread_marks.c.conversation_id).where(thread_marks.c.crisis)
)
_MARKED_CRISIS = update(sms_threads).where(_MARKED).values(crisis=True, closed=False)
_MARKED_FORGOTTEN = delete(sms_threads).where(
    _OF_IDS,
    sms_threads.c.conversation_id.in_(
        select(thread_marks.c.conversation_id).where(thread_marks.c.forgotten)
    ),
)


@functools.cache
def _mark(dialect: str, kind: str) -> Any:
    """Keep a conversation's mark (the row's other mark stays as it is)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(thread_marks)
    column = _MARKS[kind]
    return statement.on_conflict_do_update(
        index_elements=[thread_marks.c.conversation_id],
        set_={column: True, "marked_at": statement.excluded.marked_at},
    )


@functools.cache
def _upserts(dialect: str) -> tuple[Any, Any, Any, Any]:
    """(remember a seen key unless a valid one exists, bind a key anew, set a number's latest
    thread, set it only where the thread's latest text is older)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    key = insert(seen)
    replaced = {
        "conversation_id": key.excluded.conversation_id,
        "event_id": key.excluded.event_id,
        "expires_at": key.excluded.expires_at,
    }
    remember = key.on_conflict_do_update(
        index_elements=[seen.c.namespace, seen.c.key],
        set_=replaced,
        where=seen.c.expires_at <= bindparam("now"),
    )
    bind = key.on_conflict_do_update(index_elements=[seen.c.namespace, seen.c.key], set_=replaced)
    thread = insert(sms_threads)
    latest = {
        "conversation_id": thread.excluded.conversation_id,
        "last_message_at": thread.excluded.last_message_at,
        "closed": False,
        # a new conversation of the number starts without the last one's crisis
        "crisis": case(
            (
                sms_threads.c.conversation_id == thread.excluded.conversation_id,
                sms_threads.c.crisis,
            ),
            else_=false(),
        ),
    }
    touch = thread.on_conflict_do_update(index_elements=[sms_threads.c.contact], set_=latest)
    replayed = thread.on_conflict_do_update(
        index_elements=[sms_threads.c.contact],
        set_=latest,
        where=sms_threads.c.last_message_at < thread.excluded.last_message_at,
    )
    return remember, bind, touch, replayed


def _read(conn: Connection, ops: list[Op]) -> list[Any]:
    """One result per lookup: (conversation_id, event_id) of a valid seen key, or a Thread."""
    now = utcnow()
    found: dict[Op, Any] = {}
    by_namespace: dict[str, set[str]] = {}
    contacts: set[str] = set()
    for op in ops:
        if op[0] == "seen":
            by_namespace.setdefault(op[1], set()).add(op[2])
        else:
            contacts.add(op[1])
    for namespace, keys in by_namespace.items():
        rows = conn.execute(
            _SEEN_LOOKUP, {"namespace": namespace, "keys": sorted(keys), "now": now}
        )
        for key, conversation_id, event_id in rows:
            found["seen", namespace, key] = (conversation_id or "", event_id or "")
    if contacts:
        for row in conn.execute(_THREAD_LOOKUP, {"contacts": sorted(contacts)}):
            found["thread", row.contact] = Thread(
                str(row.conversation_id), row.last_message_at, bool(row.closed)
            )
    return [found.get(op) for op in ops]


def _claim(conn: Connection, namespace: str, key: str, event_id: str, *, ttl: timedelta) -> str:
    """Insert (namespace, key) -> event_id unless a valid row exists, then read who holds it.

    The insert and the read are one transaction; the primary key decides between concurrent
    claims (PostgreSQL makes the loser wait for the winner's commit, SQLite runs one writer at
    a time), so exactly one claimant of a fresh key sees its own event id.
    """
    now = utcnow()
    remember, _, _, _ = _upserts(conn.dialect.name)
    conn.execute(
        remember,
        [
            {
                "namespace": namespace,
                "key": key,
                "conversation_id": None,
                "event_id": event_id,
                "expires_at": now + ttl,
                "now": now,
            }
        ],
    )
    holder = conn.execute(
        select(seen.c.event_id).where(seen.c.namespace == namespace, seen.c.key == key)
    ).scalar_one()
    return str(holder or "")


def _write(conn: Connection, ops: list[Op], *, ttl: timedelta) -> None:
    """One transaction: seen keys (the first valid one wins), bindings (their expiry moved on),
    then thread changes in order."""
    now = utcnow()
    remember, bind, touch, replayed = _upserts(conn.dialect.name)
    rows: dict[str, dict[tuple[str, str], dict[str, Any]]] = {"remember": {}, "bind": {}}
    for op in ops:
        if op[0] in rows:
            row: dict[str, Any] = {
                "namespace": op[1],
                "key": op[2],
                "conversation_id": op[3],
                "event_id": op[4] if op[0] == "remember" else None,
                "expires_at": now + ttl,
            }
            if op[0] == "remember":
                row["now"] = now  # its upsert replaces only an expired key
            rows[op[0]].setdefault((op[1], op[2]), row)
    for kind, statement in (("remember", remember), ("bind", bind)):
        if rows[kind]:
            conn.execute(statement, list(rows[kind].values()))
    # closes and touches of sms_threads keep their order: a text after a close reopens
    for kind, group in itertools.groupby(
        (op for op in ops if op[0] not in rows), key=lambda op: op[0]
    ):
        run = list(group)
        if kind in _THREAD_WRITES:
            ids = sorted({op[1] for op in run})
            conn.execute(_THREAD_WRITES[kind], {"ids": ids})
            if kind in _MARKS:  # kept for a text of the conversation read back after it
                conn.execute(
                    _mark(conn.dialect.name, kind),
                    [{"conversation_id": i, _MARKS[kind]: True, "marked_at": now} for i in ids],
                )
            continue
        latest: dict[str, dict[str, Any]] = {}
        for op in run:  # a touch's latest is the last made; a replay's, the latest text
            if kind == "touch" or op[1] not in latest or op[3] > latest[op[1]]["last_message_at"]:
                latest[op[1]] = {
                    "contact": op[1],
                    "conversation_id": op[2],
                    "last_message_at": op[3],
                    "closed": False,
                    "crisis": False,
                }
        conn.execute(touch if kind == "touch" else replayed, list(latest.values()))
        if kind == "replayed":  # what was said of these conversations before their texts
            ids = sorted({row["conversation_id"] for row in latest.values()})
            conn.execute(_MARKED_CRISIS, {"ids": ids})
            conn.execute(_MARKED_FORGOTTEN, {"ids": ids})
