"""Ingest's shared state: provider ids already accepted, SMS threads, blocked contacts.

Every replica uses the same database, so a provider's retry is recognised whichever replica
it reaches, and across restarts. Seen keys expire after REFDESK_DEDUPE_TTL_DAYS.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.ingest.tables import blocklist, seen, sms_threads


def utcnow() -> datetime:
    """Naive UTC now, as stored."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class IngestStore:
    engine: AsyncEngine
    ttl: timedelta

    async def seen_conversation(self, namespace: str, key: str) -> str | None:
        """The conversation id recorded with a seen key, or None if unseen or expired."""
        async with self.engine.connect() as s:
            row = (
                await s.execute(
                    select(seen.c.conversation_id).where(
                        seen.c.namespace == namespace,
                        seen.c.key == key,
                        seen.c.expires_at > utcnow(),
                    )
                )
            ).first()
        return None if row is None else (row[0] or "")

    async def seen_event_id(self, namespace: str, key: str) -> str | None:
        """The event id recorded with a seen key, or None if unseen or expired."""
        async with self.engine.connect() as s:
            query = select(seen.c.event_id).where(
                seen.c.namespace == namespace, seen.c.key == key, seen.c.expires_at > utcnow()
            )
            row = (await s.execute(query)).first()
        return None if row is None else (row[0] or "")

    async def is_seen(self, namespace: str, key: str) -> bool:
        """Whether a key was accepted before (and has not expired)."""
        return await self.seen_conversation(namespace, key) is not None

    async def remember(self, *entries: tuple[str, str, str | None, str | None]) -> None:
        """Record (namespace, key, conversation_id, event_id) entries; existing ones are kept."""
        expires = utcnow() + self.ttl
        async with self.engine.connect() as s:
            for namespace, key, conversation_id, event_id in entries:
                try:
                    async with s.begin_nested():
                        await s.execute(
                            delete(seen).where(
                                seen.c.namespace == namespace,
                                seen.c.key == key,
                                seen.c.expires_at <= utcnow(),
                            )
                        )
                        await s.execute(
                            insert(seen).values(
                                namespace=namespace,
                                key=key,
                                conversation_id=conversation_id,
                                event_id=event_id,
                                expires_at=expires,
                            )
                        )
                except IntegrityError:
                    pass  # a concurrent delivery of the same message recorded it first
            await s.commit()

    async def purge_expired(self) -> int:
        """Drop expired seen keys; returns how many."""
        async with self.engine.connect() as s:
            result = await s.execute(delete(seen).where(seen.c.expires_at <= utcnow()))
            await s.commit()
        return int(result.rowcount or 0)

    async def sms_state(
        self, message_sid: str, contact: str, *, window: timedelta
    ) -> tuple[bool, bool, str | None]:
        """(seen before, sender blocked, open conversation) of one inbound text; one session."""
        now = utcnow()
        async with self.engine.connect() as s:
            seen_row = (
                await s.execute(
                    select(seen.c.key).where(
                        seen.c.namespace == "twilio",
                        seen.c.key == message_sid,
                        seen.c.expires_at > now,
                    )
                )
            ).first()
            if seen_row is not None:
                return True, False, None
            blocked = (
                await s.execute(select(blocklist.c.contact).where(blocklist.c.contact == contact))
            ).first()
            thread = (
                await s.execute(select(sms_threads).where(sms_threads.c.contact == contact))
            ).first()
        open_id = None
        if thread is not None and not thread.closed and now - thread.last_message_at <= window:
            open_id = str(thread.conversation_id)
        return False, blocked is not None, open_id

    async def record_sms(
        self, contact: str, conversation_id: str, message_sid: str, event_id: str
    ) -> None:
        """After the broker's ack: the thread's latest text and the seen MessageSid, as two
        upserts in one transaction (a concurrent replica's seen row, if still valid, is kept)."""
        now, expires = utcnow(), utcnow() + self.ttl
        async with self.engine.connect() as s:
            upsert = _dialect_insert(s)
            thread = upsert(sms_threads).values(
                contact=contact, conversation_id=conversation_id, last_message_at=now, closed=False
            )
            await s.execute(
                thread.on_conflict_do_update(
                    index_elements=[sms_threads.c.contact],
                    set_={
                        "conversation_id": conversation_id,
                        "last_message_at": now,
                        "closed": False,
                    },
                )
            )
            mark = upsert(seen).values(
                namespace="twilio",
                key=message_sid,
                conversation_id=conversation_id,
                event_id=event_id,
                expires_at=expires,
            )
            await s.execute(
                mark.on_conflict_do_update(
                    index_elements=[seen.c.namespace, seen.c.key],
                    set_={
                        "conversation_id": conversation_id,
                        "event_id": event_id,
                        "expires_at": expires,
                    },
                    where=seen.c.expires_at <= now,
                )
            )
            await s.commit()

    async def open_sms_thread(self, contact: str, *, window: timedelta) -> str | None:
        """The open conversation of a phone number within the reply window, if any."""
        async with self.engine.connect() as s:
            row = (
                await s.execute(select(sms_threads).where(sms_threads.c.contact == contact))
            ).first()
        if row is None or row.closed or utcnow() - row.last_message_at > window:
            return None
        return str(row.conversation_id)

    async def touch_sms_thread(self, contact: str, conversation_id: str) -> None:
        """Record that a number's latest text belongs to this conversation."""
        async with self.engine.connect() as s:
            updated = await s.execute(
                update(sms_threads)
                .where(sms_threads.c.contact == contact)
                .values(conversation_id=conversation_id, last_message_at=utcnow(), closed=False)
            )
            if updated.rowcount == 0:
                try:
                    async with s.begin_nested():
                        await s.execute(
                            insert(sms_threads).values(
                                contact=contact,
                                conversation_id=conversation_id,
                                last_message_at=utcnow(),
                                closed=False,
                            )
                        )
                except IntegrityError:
                    pass
            await s.commit()

    async def close_conversation(self, conversation_id: str) -> None:
        """A closed SMS ticket: the number's next text starts a new conversation."""
        async with self.engine.connect() as s:
            await s.execute(
                update(sms_threads)
                .where(sms_threads.c.conversation_id == conversation_id)
                .values(closed=True)
            )
            await s.commit()

    async def is_blocked(self, contact: str) -> bool:
        """Whether a contact is on the blocklist."""
        async with self.engine.connect() as s:
            row = (
                await s.execute(select(blocklist.c.contact).where(blocklist.c.contact == contact))
            ).first()
        return row is not None

    async def block(self, contact: str, *, reason: str | None, added_by: str) -> None:
        """Put a contact on the blocklist (idempotent)."""
        if await self.is_blocked(contact):
            return
        async with self.engine.connect() as s:
            await s.execute(
                insert(blocklist).values(
                    contact=contact, reason=reason, added_by=added_by, added_at=utcnow()
                )
            )
            await s.commit()

    async def unblock(self, contact: str) -> bool:
        """Take a contact off the blocklist; False if it was not there."""
        async with self.engine.connect() as s:
            result = await s.execute(delete(blocklist).where(blocklist.c.contact == contact))
            await s.commit()
        return bool(result.rowcount)


def _dialect_insert(conn: AsyncConnection) -> Any:
    """The INSERT construct with ON CONFLICT support for the connection's database."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert
    return sqlite.insert
