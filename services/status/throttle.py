"""Throttling of credential guessing: failed sign-ins per staff id from one client address,
and per client address.

After LIMITS' number of failures within their window, further wrong attempts from that
address (or for that staff id from that address) are answered 429 with Retry-After until the
oldest failure leaves the window; a success clears the pair's count. A right token is always
let in: a campus behind one NAT address, the CARE Team included, was locked out for 15
minutes by one person's (or one broken integration's) 20 wrong tokens, and a token of 32
random bytes gains an attacker nothing from being told apart. A staff id is never locked
for every address: staff ids are guessable (first initial and surname), so that would let
anyone keep a librarian from signing in at the desk, and a staff token (32 random bytes)
cannot be guessed in any number of tries the address limit allows. Counts live in this
process's memory, so each replica throttles on its own (an attacker spread over N replicas
gets N times the attempts).
Behind a proxy the client address is the proxy's unless REFDESK_FORWARDED_ALLOW_IPS names it
(`shared.service.serve`: no X-Forwarded-For is believed by default, not even from loopback).
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from fastapi import HTTPException, Request
from sqlalchemy.ext.asyncio import AsyncSession

from services.status.auth import Actor, actor_for_token
from services.status.errors import Unauthenticated

PER_STAFF = (5, 900.0)
"""Failed sign-ins for one staff id from one client address allowed per 15 minutes."""
PER_ADDRESS = (20, 900.0)
"""Failed sign-ins (or bearer tokens) from one client address allowed per 15 minutes."""
MAX_KEYS = 10_000
"""Most ids and addresses remembered at once (the least recently failed are forgotten)."""


@dataclass
class Window:
    """Failures per key within a sliding window."""

    limit: int
    window_s: float
    _failures: OrderedDict[str, deque[float]] = field(default_factory=OrderedDict)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def retry_after(self, key: str, now: float) -> int | None:
        """Seconds until `key` may try again, or None if it may now."""
        times = self._recent(key, now)
        if len(times) < self.limit:
            return None
        return max(1, math.ceil(times[-self.limit] + self.window_s - now))

    def fail(self, key: str, now: float) -> None:
        """Count one failure of `key`."""
        times = self._recent(key, now)
        times.append(now)
        self._failures[key] = times
        self._failures.move_to_end(key)
        while len(self._failures) > MAX_KEYS:
            self._failures.popitem(last=False)

    def clear(self, key: str) -> None:
        """Forget `key`'s failures."""
        self._failures.pop(key, None)


@dataclass
class LoginThrottle:
    """Sign-in failures by staff id and client address together, and by client address."""

    by_staff: Window = field(default_factory=lambda: Window(*PER_STAFF))
    by_address: Window = field(default_factory=lambda: Window(*PER_ADDRESS))

    def retry_after(self, *, address: str, staff_id: str | None, now: float) -> int | None:
        """Seconds to wait before another attempt, or None if one may be made now."""
        waits = [self.by_address.retry_after(address, now)]
        if staff_id is not None:
            waits.append(self.by_staff.retry_after(_pair(staff_id, address), now))
        known = [w for w in waits if w is not None]
        return max(known) if known else None

    def failed(self, *, address: str, staff_id: str | None, now: float) -> None:
        """Count a failed attempt."""
        self.by_address.fail(address, now)
        if staff_id is not None:
            self.by_staff.fail(_pair(staff_id, address), now)

    def succeeded(self, *, address: str, staff_id: str) -> None:
        """A staff member signed in: their count from this address starts again (the
        address's own does not)."""
        self.by_staff.clear(_pair(staff_id, address))


def _pair(staff_id: str, address: str) -> str:
    return f"{staff_id}\n{address}"


def client_address(request: Request) -> str:
    """The address the request came from (as uvicorn reports it)."""
    return request.client.host if request.client else "unknown"


def too_many(retry_after: int) -> HTTPException:
    """429 problem+json with Retry-After."""
    return HTTPException(
        429, "too many failed sign-ins; try again later", headers={"Retry-After": str(retry_after)}
    )


_KEY = "login_throttle"


def throttle_of(extra: dict[str, object]) -> LoginThrottle:
    """The app's throttle, kept in Resources.extra (one per process)."""
    found = extra.get(_KEY)
    if not isinstance(found, LoginThrottle):
        found = extra[_KEY] = LoginThrottle()
    return found


async def bearer_actor(
    *, request: Request, extra: dict[str, object], session: AsyncSession, token: str, now: float
) -> Actor:
    """The staff member owning a bearer token; wrong tokens count against the client address,
    which gets 429 once it made too many."""
    throttle = throttle_of(extra)
    address = client_address(request)
    try:
        return await actor_for_token(session=session, token=token)
    except Unauthenticated:
        wait = throttle.retry_after(address=address, staff_id=None, now=now)
        if wait is not None:
            raise too_many(wait) from None
        throttle.failed(address=address, staff_id=None, now=now)
        raise
