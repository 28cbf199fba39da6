"""Sending one SMS notification as one or more provider messages, each created once.

Twilio's Messages API has no idempotency key: a create retried after an attempt whose answer
was lost (a read timeout, a dropped connection, a 5xx, a crash between the request and the
ledger write) can text the patron twice. So the lane remembers when an attempt's outcome is
unknown (`in_doubt_since`, in the ledger: set from the error, or at the claim of a row whose
previous lease ran out without an outcome) and, before sending that message again, asks the
provider whether it exists (`SmsSender.find_sent`: same number, same body, created since the
attempt began, less LOOKUP_SKEW_S). Found: it counts as sent, with its SID. Not found: it is
sent. The lookup cannot be made (no list endpoint: 404, 405, 501; a credential that may send but
not read): it is sent, a possible duplicate rather than a message held back for good. The lookup
fails for now (network, 5xx, 429): a crisis message is sent anyway (a duplicate is better than
a delay or a loss); any other waits for its next attempt, as it would for a failed send (after
a 429, at least as long as Twilio's Retry-After said).

A text over the provider's body limit goes out as several messages (sms_parts.py), in order,
one after another. After each part but the last the ledger records how far the text got, the
SIDs so far and the part budget (`Progress`, one unit of ledger work), so a retry or another
worker resumes with the next part and never sends a recorded part again; a part whose record
was lost is in doubt like any other message. Twilio answering 21617 for a part anyway halves the
budget for the rest (recorded first, so the layout every attempt computes stays the same).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from services.notifier.errors import (
    BodyTooLong,
    PermanentSendError,
    RateLimited,
    TransientSendError,
    UncertainSendError,
)
from services.notifier.metrics import SMS_LOOKUPS
from services.notifier.segments import sms_segments
from services.notifier.sms import LookupUnavailable, SmsSender
from services.notifier.sms_parts import MIN_BUDGET, SMS_BODY_LIMIT, next_part

log = logging.getLogger(__name__)

LOOKUP_SKEW_S = 10.0
"""How much earlier than the attempt a message found may have been created: Twilio's
date_created is whole seconds, and its clock and ours differ a little."""


@dataclass(frozen=True)
class Progress:
    """How far a notification's text got: what the ledger keeps between attempts."""

    chars: int = 0
    """Characters of the text whose parts were sent."""
    sids: tuple[str, ...] = ()
    """The provider's ids of the parts sent, in order."""
    budget: int = SMS_BODY_LIMIT
    """The part budget (sms_parts.py); smaller after the provider refused a part as too long."""
    segments: int = 0
    """Segments of the parts sent."""

    def to_json(self) -> dict[str, Any]:
        """As the ledger stores it."""
        return {
            "chars": self.chars,
            "sids": list(self.sids),
            "budget": self.budget,
            "segments": self.segments,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Progress:
        """From the ledger (a fresh start when nothing was recorded)."""
        if not data:
            return cls()
        return cls(
            chars=int(data.get("chars", 0)),
            sids=tuple(str(s) for s in data.get("sids", ())),
            budget=int(data.get("budget", SMS_BODY_LIMIT)),
            segments=int(data.get("segments", 0)),
        )


SaveProgress = Callable[[Progress], Awaitable[None]]
"""Records progress in the ledger (and that nothing is in doubt any more)."""


@dataclass
class SmsAttempt:
    """One attempt at one SMS notification."""

    sender: SmsSender
    to: str
    text: str
    key: str
    save: SaveProgress
    progress: Progress = field(default_factory=Progress)
    in_doubt_since: datetime | None = None
    """An earlier attempt at the next part may have reached the provider, starting then."""
    crisis: bool = False
    last_attempt: bool = False
    """No attempt comes after this one: a lookup that fails now sends the text (a possible
    duplicate) rather than let it be buried without ever being tried."""
    taken: Callable[[datetime], Awaitable[Collection[str]]] | None = None
    """The provider ids since then that belong to other notifications (identical texts to
    the same number are common: a lookup must not claim another's)."""

    def part_key(self, number: int, last: bool) -> str:
        """The key a part is sent under: the notification's own for a text sent whole."""
        return self.key if number == 1 and last else f"{self.key}.part{number}"

    async def run(self) -> Progress:
        """Send what is left of the text; the progress with every part's id."""
        progress = self.progress
        while progress.chars < len(self.text):
            body, end = next_part(self.text, progress.chars, progress.budget)
            if not body:  # only whitespace was left
                break
            number = len(progress.sids) + 1
            key = self.part_key(number, last=end >= len(self.text))
            sid = None
            if self.in_doubt_since is not None:
                sid = await self._earlier(body, key, progress, self.in_doubt_since)
                self.in_doubt_since = None  # found, or known to need sending
            if sid is None:
                try:
                    sid = await self.sender.send(to=self.to, body=body, idempotency_key=key)
                except BodyTooLong:
                    progress = await self._smaller(progress)
                    continue
            progress = Progress(
                chars=end,
                sids=(*progress.sids, sid),
                budget=progress.budget,
                segments=progress.segments + sms_segments(body)[1],
            )
            if end < len(self.text):
                await self._record(progress)
        if not progress.sids:
            raise PermanentSendError("the SMS text is empty")
        return progress

    async def _earlier(
        self, body: str, key: str, progress: Progress, in_doubt_since: datetime
    ) -> str | None:
        """The id of the part as an earlier attempt created it, or None to send it."""
        since = in_doubt_since - timedelta(seconds=LOOKUP_SKEW_S)
        exclude = set(progress.sids)
        try:
            if self.taken is not None:
                exclude |= set(await self.taken(since))
            sid = await self.sender.find_sent(
                to=self.to, body=body, idempotency_key=key, since=since, exclude=exclude
            )
        except LookupUnavailable as exc:
            SMS_LOOKUPS.labels(result="unavailable").inc()
            log.warning(
                "sms lookup unavailable; sending without knowing whether an earlier attempt "
                "went out",
                extra={"notification": key, "error": str(exc)},
            )
            return None
        except TransientSendError as exc:
            SMS_LOOKUPS.labels(result="failed").inc()
            if not (self.crisis or self.last_attempt):
                reason = f"looking for an earlier attempt failed: {exc}"
                # the wait Twilio asked for (a 429's or 503's Retry-After) holds for the lookup
                kind = RateLimited if isinstance(exc, RateLimited) else TransientSendError
                raise kind(reason, retry_after_s=exc.retry_after_s) from exc
            log.warning(
                "sms lookup failed; sending again rather than waiting"
                + (" (a crisis message)" if self.crisis else " (its last attempt)"),
                extra={"notification": key, "error": str(exc)},
            )
            return None
        SMS_LOOKUPS.labels(result="absent" if sid is None else "found").inc()
        if sid is not None:
            log.info("an earlier attempt had sent it", extra={"notification": key, "sid": sid})
        return sid

    async def _smaller(self, progress: Progress) -> Progress:
        """Halve the part budget for the rest of the text, recorded before anything is sent
        with it; BodyTooLong when parts cannot get any smaller."""
        budget = progress.budget // 2
        if budget < MIN_BUDGET:
            raise BodyTooLong(f"twilio refused a part of {progress.budget} as too long")
        log.warning(
            "twilio refused an sms part as too long; sending smaller parts",
            extra={"notification": self.key, "budget": budget},
        )
        smaller = replace(progress, budget=budget)
        await self._record(smaller)
        return smaller

    async def _record(self, progress: Progress) -> None:
        try:
            await self.save(progress)
        except Exception as exc:  # a part went out unrecorded: the next attempt looks first
            raise UncertainSendError(f"sms progress not recorded: {type(exc).__name__}") from exc
