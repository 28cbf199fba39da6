"""When each sign-in token was last used, for admins deciding which to revoke.

A request noting its token's use writes nothing: each replica keeps the latest use per token
in memory, and the periodic task writes what changed (`flush`), one UPDATE per token and at
most once a minute per token, the later time winning across replicas. A replica that stops
loses at most its last minute of notes, so "last used" is a lower bound, to the minute.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, bindparam, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.status.auth import Actor
from services.status.models import StaffToken

GRANULARITY = timedelta(minutes=1)
"""A use within this of the last one written is not written again."""

_TOKENS = cast(Table, StaffToken.__table__)
_RECORD = (
    update(_TOKENS)
    .where(
        _TOKENS.c.id == bindparam("token_id"),
        or_(_TOKENS.c.last_used_at.is_(None), _TOKENS.c.last_used_at < bindparam("used_at")),
    )
    .values(last_used_at=bindparam("used_at"))
)

_KEY = "token_use"


class TokenUse:
    """The uses this replica noted and has not written yet."""

    def __init__(self) -> None:
        self._pending: dict[int, datetime] = {}
        self._written: dict[int, datetime] = {}

    def note(self, actor: Actor | None, at: datetime) -> None:
        """The actor's token was used at `at` (a bearer request, a console request or a
        sign-in); nothing to do for an actor without one."""
        if actor is None or actor.token_id is None:
            return
        token_id = actor.token_id
        written = self._written.get(token_id)
        if written is not None and at - written < GRANULARITY:
            return
        pending = self._pending.get(token_id)
        if pending is None or at > pending:
            self._pending[token_id] = at

    async def flush(self, session: AsyncSession) -> int:
        """Write the noted uses and commit; how many tokens. On failure they stay noted for
        the next flush."""
        if not self._pending:
            return 0
        pending, self._pending = self._pending, {}
        try:
            await session.execute(
                _RECORD, [{"token_id": t, "used_at": at} for t, at in pending.items()]
            )
            await session.commit()
        except BaseException:
            for token_id, at in pending.items():  # with what was noted meanwhile
                self._pending[token_id] = max(at, self._pending.get(token_id, at))
            raise
        self._written.update(pending)
        return len(pending)


def token_use_of(extra: dict[str, object]) -> TokenUse:
    """The app's TokenUse, kept in Resources.extra (one per process)."""
    found = extra.get(_KEY)
    if not isinstance(found, TokenUse):
        found = extra[_KEY] = TokenUse()
    return found
