"""The SMS lane when Twilio says no, through the fake Twilio over a real SQLite ledger: "slow
down" (429) waits at least its Retry-After, however many other texts go out meanwhile, while an
ordinary failure is still retried as soon as the lane sends again; "never" (a 4xx with an error
code) is not retried, and is announced with Twilio's code, also when announced again after a
crash."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from deliverer_fakes import LEASE_S, Crash, lose_answer, refuse
from sms_lane import Lane

from services.notifier.errors import (
    PermanentSendError,
    RateLimited,
    TransientSendError,
    UncertainSendError,
)
from services.notifier.settings import NotifierSettings
from shared.events import (
    Channel,
    DeliveryState,
    KeywordReplyContext,
    NotificationKind,
    NotificationRequested,
)
from shared.topics import DELIVERIES, NOTIFICATIONS

PATRON = "+18175550123"
KEY = "keyword-sms-1"
RETRY_AFTER_S = 30.0
SPREAD = 1.1
"""A rate-limited text comes back within a tenth after its Retry-After (delivery.py)."""


@pytest.fixture
async def lane(tmp_path: Path, ledger_url: str) -> AsyncIterator[Lane]:
    settings = NotifierSettings(
        run_dir=tmp_path,
        lease_s=LEASE_S,
        max_attempts=10,
        retry_for_h=0,
        backoff_base_s=1,
        backoff_max_s=30,
    )
    made = Lane(settings, ledger_url)
    yield made
    await made.deliverer.close()


def keyword_reply(
    n: int = 0, *, to: str = PATRON, key: str = KEY, conversation: str = "conv-1"
) -> NotificationRequested:
    context = KeywordReplyContext(reply_text="NE is open until 9 tonight.", keyword="HOURS")
    return NotificationRequested(
        idempotency_key=key if n == 0 else f"{key}-{n}",
        kind=NotificationKind.KEYWORD_REPLY,
        channel=Channel.SMS,
        recipient=to,
        conversation_id=conversation if n == 0 else f"{conversation}-{n}",
        context=context.model_dump(mode="json"),
        requested_at=datetime(2026, 12, 1, 14, 0, tzinfo=UTC),
    )


def someone_else(n: int) -> NotificationRequested:
    """Another patron's text, which Twilio takes: the provider is up."""
    return keyword_reply(n, to=f"+181755502{n:02d}", key="other", conversation="conv-other")


def rate_limited(retry_after_s: float | None = RETRY_AFTER_S) -> RateLimited:
    return RateLimited("twilio http 429 error 20429", code=429, retry_after_s=retry_after_s)


# ---- 429: wait at least what Retry-After says -------------------------------------------------


async def test_a_429_waits_out_its_retry_after_while_other_texts_go_out(lane: Lane) -> None:
    """The outside tester's case: 429 (Retry-After: 30) four times, then 201, while other texts
    are sent. Before, a success on the lane made the waiting retry due at once."""
    lane.sms.steps_to[PATRON] = [refuse(rate_limited())] * 4
    await lane.deliverer.record([keyword_reply()])
    await lane.drain()
    for n in range(1, 5):
        refused_at = lane.clock.now
        assert lane.sms.attempts.count(KEY) == n
        await lane.deliverer.record([someone_else(n)])
        await lane.drain()
        assert f"other-{n}" in lane.sms.attempts  # the other text went out at once
        assert lane.sms.attempts.count(KEY) == n  # and did not cut the wait short
        row = await lane.row(KEY)
        assert row.next_attempt_at >= refused_at + timedelta(seconds=RETRY_AFTER_S)
        await lane.later(RETRY_AFTER_S - 1)
        assert lane.sms.attempts.count(KEY) == n
        await lane.later(RETRY_AFTER_S * (SPREAD - 1) + 1.5)
        assert lane.sms.attempts.count(KEY) == n + 1
    [mine] = [o for o in lane.outcomes() if o.idempotency_key == KEY]
    assert mine.state is DeliveryState.SENT and mine.attempts == 5
    assert len(lane.sms.created) == 5  # this text once, and the 4 others


async def test_a_429_without_retry_after_is_not_pulled_forward_either(lane: Lane) -> None:
    """No Retry-After: the ordinary backoff, but a success elsewhere does not end it (pulling
    every throttled text forward at once is what brings the next 429)."""
    lane.sms.steps_to[PATRON] = [refuse(rate_limited(None))]
    await lane.deliverer.record([keyword_reply()])
    await lane.drain()
    await lane.deliverer.record([someone_else(1)])
    await lane.drain()
    assert lane.sms.attempts.count(KEY) == 1
    await lane.later(lane.settings.backoff_base_s + 0.1)
    assert lane.sms.attempts.count(KEY) == 2
    assert [o.state for o in lane.outcomes()] == [DeliveryState.SENT] * 2


async def test_a_503_with_retry_after_waits_it_out_too(lane: Lane) -> None:
    """Twilio's 503 with Retry-After (maintenance): the retry came after the lane's backoff
    (seconds) or at once on the next success elsewhere, into the same maintenance window."""
    busy = UncertainSendError("twilio http 503", code=503, retry_after_s=RETRY_AFTER_S)
    lane.sms.steps_to[PATRON] = [refuse(busy)]
    await lane.deliverer.record([keyword_reply()])
    await lane.drain()
    await lane.deliverer.record([someone_else(1)])
    await lane.drain()
    assert lane.sms.attempts.count(KEY) == 1  # another text's success did not pull it in
    await lane.later(RETRY_AFTER_S - 1)
    assert lane.sms.attempts.count(KEY) == 1
    await lane.later(RETRY_AFTER_S * (SPREAD - 1) + 1.5)
    assert lane.sms.attempts.count(KEY) == 2
    [mine] = [o for o in lane.outcomes() if o.idempotency_key == KEY]
    assert mine.state is DeliveryState.SENT and len(lane.sms.created) == 2


async def test_an_ordinary_failure_is_still_retried_when_the_lane_sends_again(
    lane: Lane,
) -> None:
    """Twilio unreachable, then reachable: the first success makes the waiting retries due at
    once (the rule a rate limit is exempt from)."""
    lane.sms.steps_to[PATRON] = [refuse(TransientSendError("twilio unreachable: ConnectError"))]
    await lane.deliverer.record([keyword_reply()])
    await lane.drain()
    await lane.deliverer.record([someone_else(1)])
    await lane.drain()
    assert lane.sms.attempts.count(KEY) == 2
    assert {o.idempotency_key for o in lane.outcomes()} == {KEY, "other-1"}


async def test_a_429_on_the_lookup_holds_a_text_in_doubt_for_its_retry_after(
    lane: Lane,
) -> None:
    """The first answer was lost (the text exists); the lookup before sending it again is
    throttled: the text waits for Twilio's Retry-After, then is found, not sent twice."""
    lane.sms.steps_to[PATRON] = [lose_answer(UncertainSendError("twilio did not answer"))]
    lane.sms.lookup_failures.append(rate_limited(20))
    await lane.deliverer.record([keyword_reply()])
    await lane.drain()
    await lane.later(lane.settings.backoff_base_s + 0.1)  # the lookup answers 429
    assert len(lane.sms.lookups) == 1
    await lane.deliverer.record([someone_else(1)])
    await lane.drain()
    await lane.later(19)
    assert len(lane.sms.lookups) == 1
    await lane.later(20 * (SPREAD - 1) + 1.5)
    assert len(lane.sms.lookups) == 2
    assert lane.sms.attempts.count(KEY) == 1  # found: never created twice
    [mine] = [o for o in lane.outcomes() if o.idempotency_key == KEY]
    assert mine.state is DeliveryState.SENT


# ---- 4xx: refused for good, announced with Twilio's code --------------------------------------


@pytest.mark.parametrize("code", [21610, 21211, 21614])
async def test_a_refused_text_is_announced_with_twilios_code(lane: Lane, code: int) -> None:
    lane.sms.steps_to[PATRON] = [
        refuse(PermanentSendError(f"twilio http 400 error {code}", code=400, provider_code=code))
    ]
    await lane.deliverer.record([keyword_reply()])
    await lane.drain()
    await lane.later(LEASE_S)
    assert lane.sms.attempts == [KEY]  # not retried
    [outcome] = lane.outcomes()
    assert outcome.state is DeliveryState.FAILED
    # Twilio's own opt-out is what the patron asked for: remembered, no dead letter for it
    opted_out = code == 21610
    reason = "opted out" if opted_out else "rejected 400"
    assert (outcome.reason, outcome.error_code) == (reason, code)
    assert len(lane.publisher.on(NOTIFICATIONS.dlq_name)) == (0 if opted_out else 1)


async def test_a_refusal_without_a_code_and_a_failure_by_retries_carry_none(lane: Lane) -> None:
    await lane.deliverer.close()
    lane.settings = lane.settings.model_copy(update={"max_attempts": 1, "retry_for_h": 0})
    lane.restart()
    lane.sms.steps_to[PATRON] = [refuse(PermanentSendError("twilio http 400", code=400))]
    lane.sms.steps_to["+18175550201"] = [refuse(rate_limited())]
    await lane.deliverer.record([keyword_reply(), someone_else(1)])
    await lane.later(1)
    outcomes = {o.idempotency_key: o for o in lane.outcomes()}
    assert (outcomes[KEY].reason, outcomes[KEY].error_code) == ("rejected 400", None)
    assert (outcomes["other-1"].reason, outcomes["other-1"].error_code) == (
        "retries exhausted 429",
        None,
    )


async def test_a_refusal_announced_again_after_a_crash_keeps_twilios_code(lane: Lane) -> None:
    lane.sms.steps_to[PATRON] = [
        refuse(PermanentSendError("twilio http 400 error 21610", code=400, provider_code=21610))
    ]
    lane.publisher.dies_on.add(DELIVERIES.name)  # refused and recorded; dies announcing it
    await lane.deliverer.record([keyword_reply()])
    with pytest.raises(Crash):
        await lane.drain()
    await lane.deliverer.close()
    lane.publisher.dies_on.clear()
    lane.restart()
    lane.clock.advance(LEASE_S + 1)
    assert await lane.deliverer.announcer.announce_lost(Channel.SMS) == 1
    [outcome] = lane.outcomes()
    assert (outcome.state, outcome.error_code) == (DeliveryState.FAILED, 21610)
