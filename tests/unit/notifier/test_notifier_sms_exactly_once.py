"""The SMS lane through a fake Twilio that creates messages and lists them, over a real SQLite
ledger: a text whose earlier attempt may have gone out is looked up before it is sent again
(Twilio has no idempotency key), a text over Twilio's 1,600-character limit goes out in parts
sent once each, and refused credentials keep messages waiting, loudly, instead of dropping
them."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from deliverer_fakes import (
    LEASE_S,
    Crash,
    Step,
    lose_answer,
    refuse,
)
from prometheus_client import REGISTRY
from sms_lane import Lane

from services.notifier import tables
from services.notifier.errors import (
    AuthenticationFailed,
    BodyTooLong,
    TransientSendError,
    UncertainSendError,
)
from services.notifier.settings import NotifierSettings
from services.notifier.sms import LookupUnavailable
from services.notifier.sms_parts import SMS_BODY_LIMIT, body_size
from shared.events import (
    Channel,
    CrisisResourcesContext,
    DeliveryState,
    NotificationKind,
    NotificationRequested,
    StaffReplyContext,
)
from shared.topics import NOTIFICATIONS

PATRON = "+18175550123"
LONG_REPLY = (
    "Hi! Here is what you need to know about renewing and returning items at TCC libraries. " * 20
)[:1700]
"""The audit's staff reply: 1,700 characters, over Twilio's limit."""
THREE_PARTS = " ".join(
    f"Sentence {i} of a long answer about interlibrary loans." for i in range(80)
)
"""About 4,300 characters: three parts."""


@pytest.fixture
async def lane(tmp_path: Path, ledger_url: str) -> AsyncIterator[Lane]:
    settings = NotifierSettings(
        run_dir=tmp_path,
        lease_s=LEASE_S,
        max_attempts=3,
        crisis_max_attempts=3,
        retry_for_h=0,
        backoff_base_s=1,
        backoff_max_s=5,
    )
    made = Lane(settings, ledger_url)
    yield made
    await made.deliverer.close()


def reply(text: str = "Your book is on hold at NW until Friday.") -> NotificationRequested:
    context = StaffReplyContext(reply_id="r-1", staff_id="jdoe", text=text)
    return NotificationRequested(
        idempotency_key="reply-sms-1",
        kind=NotificationKind.STAFF_REPLY,
        channel=Channel.SMS,
        recipient=PATRON,
        conversation_id="conv-1",
        context=context.model_dump(mode="json"),
        requested_at=datetime(2026, 12, 1, 14, 0, tzinfo=UTC),
    )


def crisis_resources() -> NotificationRequested:
    context = CrisisResourcesContext(counseling_url="https://www.tccd.edu/counseling")
    return NotificationRequested(
        idempotency_key="crisis-sms-1",
        kind=NotificationKind.CRISIS_RESOURCES,
        channel=Channel.SMS,
        recipient=PATRON,
        conversation_id="conv-2",
        context=context.model_dump(mode="json"),
        requested_at=datetime(2026, 12, 1, 14, 0, tzinfo=UTC),
    )


def lookups(result: str) -> float:
    value = REGISTRY.get_sample_value("refdesk_sms_lookups_total", {"result": result})
    return value or 0.0


# ---- an attempt in doubt is looked up before it is sent again ---------------------------------


async def test_a_text_twilio_created_before_the_answer_was_lost_is_not_sent_again(
    lane: Lane,
) -> None:
    """The audit's case: Twilio took 12 s to answer 201, the notifier gave up after 10 s."""
    cmd = reply()
    lane.sms.steps.append(lose_answer(UncertainSendError("twilio did not answer: ReadTimeout")))
    found = lookups("found")
    await lane.deliverer.record([cmd])
    await lane.drain()
    assert lane.outcomes() == []  # a retry is scheduled
    await lane.later(lane.settings.backoff_max_s + 1)
    [texted] = lane.sms.created
    assert texted.body == cmd.context["text"]
    [outcome] = lane.outcomes()
    assert outcome.state is DeliveryState.SENT and outcome.message_id == texted.sid
    assert lane.sms.lookups == [cmd.idempotency_key] and lookups("found") == found + 1
    assert (await lane.row(cmd.idempotency_key)).in_doubt_since is None


async def test_a_crash_between_the_create_and_its_record_does_not_text_twice(
    lane: Lane,
) -> None:
    cmd = crisis_resources()
    lane.sms.steps.append(lose_answer(Crash("killed after Twilio took it")))
    await lane.deliverer.record([cmd])
    with pytest.raises(Crash):
        await lane.drain()
    lane.restart()
    await lane.later(1)
    assert lane.sms.lookups == [] and len(lane.sms.created) == 1  # the dead worker's lease holds
    await lane.later(LEASE_S)
    assert len(lane.sms.created) == 1, "the crisis resources were texted twice"
    [outcome] = lane.outcomes()
    assert outcome.state is DeliveryState.SENT and outcome.message_id == lane.sms.created[0].sid


async def test_a_lost_answer_for_a_text_twilio_never_created_sends_it(lane: Lane) -> None:
    lane.sms.steps.append(refuse(UncertainSendError("twilio http 502", code=502)))
    await lane.deliverer.record([reply()])
    await lane.drain()
    await lane.later(lane.settings.backoff_max_s + 1)
    assert len(lane.sms.lookups) == 1 and len(lane.sms.created) == 1
    assert [o.state for o in lane.outcomes()] == [DeliveryState.SENT]


async def test_a_request_that_never_left_is_sent_again_without_a_lookup(lane: Lane) -> None:
    lane.sms.steps.append(refuse(TransientSendError("twilio unreachable: ConnectError")))
    await lane.deliverer.record([reply()])
    await lane.drain()
    await lane.later(lane.settings.backoff_max_s + 1)
    assert lane.sms.lookups == [] and len(lane.sms.created) == 1


async def test_without_a_list_endpoint_the_text_is_sent_again_not_held_back(lane: Lane) -> None:
    """A provider (or fake) that cannot be asked: a possible duplicate, never a lost text."""
    lane.sms.steps.append(lose_answer(UncertainSendError("twilio did not answer: ReadTimeout")))
    lane.sms.lookup_failures.append(LookupUnavailable("twilio lookup answered http 404"))
    unavailable = lookups("unavailable")
    await lane.deliverer.record([reply()])
    await lane.drain()
    await lane.later(lane.settings.backoff_max_s + 1)
    assert len(lane.sms.created) == 2
    assert [o.state for o in lane.outcomes()] == [DeliveryState.SENT]
    assert lookups("unavailable") == unavailable + 1


async def test_a_failing_lookup_holds_back_a_reply_until_it_can_look(lane: Lane) -> None:
    cmd = reply()
    lane.sms.steps.append(lose_answer(UncertainSendError("twilio did not answer: ReadTimeout")))
    lane.sms.lookup_failures.append(TransientSendError("twilio lookup failed", code=503))
    await lane.deliverer.record([cmd])
    await lane.drain()
    await lane.later(lane.settings.backoff_max_s + 1)
    assert len(lane.sms.created) == 1 and lane.outcomes() == []  # waiting, not sent again
    assert (await lane.row(cmd.idempotency_key)).in_doubt_since is not None
    await lane.later(lane.settings.backoff_max_s + 1)
    assert len(lane.sms.created) == 1 and lane.sms.lookups == [cmd.idempotency_key] * 2
    assert [o.state for o in lane.outcomes()] == [DeliveryState.SENT]


async def test_a_lookup_failing_to_the_last_attempt_sends_rather_than_buries(
    lane: Lane,
) -> None:
    """max_attempts is 3: the first attempt's answer is lost, the lookups of the second and
    third fail; the third sends (a possible duplicate) instead of burying a text never tried
    again."""
    cmd = reply()
    lane.sms.steps.append(lose_answer(UncertainSendError("twilio did not answer: ReadTimeout")))
    for _ in range(2):
        lane.sms.lookup_failures.append(TransientSendError("twilio lookup failed", code=503))
    await lane.deliverer.record([cmd])
    await lane.drain()
    await lane.later(lane.settings.backoff_max_s + 1)
    assert len(lane.sms.created) == 1 and lane.outcomes() == []
    await lane.later(lane.settings.backoff_max_s + 1)
    assert len(lane.sms.created) == 2
    assert [o.state for o in lane.outcomes()] == [DeliveryState.SENT]


async def test_a_failing_lookup_does_not_hold_back_crisis_resources(lane: Lane) -> None:
    """For a patron in crisis a second text is better than a late or lost one."""
    lane.sms.steps.append(lose_answer(UncertainSendError("twilio did not answer: ReadTimeout")))
    lane.sms.lookup_failures.append(TransientSendError("twilio lookup failed", code=503))
    await lane.deliverer.record([crisis_resources()])
    await lane.drain()
    await lane.later(lane.settings.backoff_max_s + 1)
    assert len(lane.sms.created) == 2
    assert [o.state for o in lane.outcomes()] == [DeliveryState.SENT]


# ---- a text over Twilio's limit goes out in parts, each once ----------------------------------


async def test_a_reply_over_twilios_limit_goes_out_in_parts_in_order(lane: Lane) -> None:
    cmd = reply(LONG_REPLY)
    await lane.deliverer.record([cmd])
    await lane.drain()
    bodies = lane.sms.bodies()
    assert len(bodies) == 2 and all(body_size(b) <= SMS_BODY_LIMIT for b in bodies)
    assert " ".join(bodies) == LONG_REPLY.strip()
    assert bodies[0][-1] in ".!?"  # at a sentence's end
    keys = [t.key for t in lane.sms.created]
    assert keys == [f"{cmd.idempotency_key}.part1", f"{cmd.idempotency_key}.part2"]
    [outcome] = lane.outcomes()
    assert outcome.state is DeliveryState.SENT and outcome.text == LONG_REPLY.strip()
    assert outcome.message_id == lane.sms.created[0].sid
    assert outcome.segments == 12  # 11 + 1 GSM-7 segments
    row = await lane.row(cmd.idempotency_key)
    assert row.progress["sids"] == [t.sid for t in lane.sms.created]


async def test_a_failed_part_is_sent_again_without_the_parts_before_it(lane: Lane) -> None:
    # part 1 goes out, part 2 is throttled; the retry sends parts 2 and 3
    lane.sms.steps.extend([Step(), refuse(TransientSendError("twilio http 429", code=429))])
    await lane.deliverer.record([reply(THREE_PARTS)])
    await lane.drain()
    assert len(lane.sms.created) == 1 and lane.outcomes() == []
    await lane.later(lane.settings.backoff_max_s + 1)
    bodies = lane.sms.bodies()
    assert len(bodies) == 3 and len(set(bodies)) == 3, "a part was sent twice"
    assert " ".join(bodies) == THREE_PARTS
    assert lane.sms.lookups == []  # a 429 is known not to have created the part
    assert [o.state for o in lane.outcomes()] == [DeliveryState.SENT]


async def test_a_crash_after_a_recorded_part_resumes_with_the_next_one(lane: Lane) -> None:
    """Even with no way to look (the lookup unavailable), a recorded part is never resent."""
    lane.sms.steps.extend([Step(), refuse(Crash("killed before part 2 went out"))])
    lane.sms.lookup_failures.append(LookupUnavailable("no list endpoint"))
    await lane.deliverer.record([reply(THREE_PARTS)])
    with pytest.raises(Crash):
        await lane.drain()
    lane.restart()
    await lane.later(LEASE_S + 1)
    bodies = lane.sms.bodies()
    assert len(bodies) == 3 and len(set(bodies)) == 3, "a part was sent twice"
    assert " ".join(bodies) == THREE_PARTS
    assert [o.state for o in lane.outcomes()] == [DeliveryState.SENT]


async def test_a_part_whose_record_was_lost_is_looked_up_not_resent(lane: Lane) -> None:
    lane.sms.steps.extend([Step(), lose_answer(Crash("killed after part 2 went out"))])
    await lane.deliverer.record([reply(THREE_PARTS)])
    with pytest.raises(Crash):
        await lane.drain()
    lane.restart()
    await lane.later(LEASE_S + 1)
    bodies = lane.sms.bodies()
    assert len(bodies) == 3 and len(set(bodies)) == 3, "a part was sent twice"
    assert lane.sms.lookups == ["reply-sms-1.part2"]


async def test_twilio_refusing_a_part_as_too_long_gets_smaller_parts(lane: Lane) -> None:
    lane.sms.steps.append(refuse(BodyTooLong("twilio http 400 error 21617", code=400)))
    await lane.deliverer.record([reply(LONG_REPLY)])
    await lane.drain()
    bodies = lane.sms.bodies()
    assert len(bodies) == 3 and all(body_size(b) <= SMS_BODY_LIMIT // 2 for b in bodies)
    assert " ".join(bodies) == LONG_REPLY.strip()
    assert [o.state for o in lane.outcomes()] == [DeliveryState.SENT]


# ---- refused credentials: retried, loud, never dropped -----------------------------------------


@pytest.mark.parametrize("channel", [Channel.SMS, Channel.EMAIL])
async def test_refused_credentials_keep_the_message_waiting_loudly(
    lane: Lane, channel: Channel, caplog: pytest.LogCaptureFixture
) -> None:
    """A rotated auth token (Twilio 401 / 20003, SMTP 535): past max_attempts and still
    waiting, until the token is fixed; never dead-lettered."""
    cmd = crisis_resources()
    refused = AuthenticationFailed("twilio http 401 error 20003", code=401)
    if channel is Channel.EMAIL:
        cmd = cmd.model_copy(update={"channel": channel, "recipient": "ana@my.tccd.edu"})
        lane.email.failures.extend(
            [AuthenticationFailed("smtp SMTPAuthenticationError", code=535)] * 5
        )
    else:
        lane.sms.steps.extend([refuse(refused)] * 5)
    metric = {"channel": channel.value}
    before = REGISTRY.get_sample_value("refdesk_notification_auth_failures_total", metric) or 0.0
    await lane.deliverer.record([cmd])
    with caplog.at_level(logging.ERROR, logger="services.notifier.delivery"):
        await lane.drain(channel)
        for _ in range(4):  # 5 refusals against max 3 attempts
            lane.clock.advance(lane.settings.backoff_max_s + 1)
            await lane.drain(channel)
    assert lane.outcomes() == [] and lane.publisher.on(NOTIFICATIONS.dlq_name) == []
    assert REGISTRY.get_sample_value("refdesk_notification_auth_failures_total", metric) == (
        before + 5
    )
    refusals = [r for r in caplog.records if "refused the notifier's credentials" in r.message]
    assert len(refusals) == 5 and all(r.levelno == logging.ERROR for r in refusals)
    row = await lane.row(cmd.idempotency_key)
    assert row.state == tables.PENDING and row.attempts == 0
    lane.clock.advance(lane.settings.backoff_max_s + 1)  # the token is fixed
    await lane.drain(channel)
    [outcome] = lane.outcomes()
    assert outcome.state is DeliveryState.SENT and outcome.attempts == 1


@pytest.mark.parametrize("restarted", [False, True], ids=["same process", "after a restart"])
async def test_a_lookup_never_takes_an_identical_text_sent_for_another_notification(
    lane: Lane, restarted: bool
) -> None:
    """A patron who texts HOURS twice gets two identical replies: when the second's attempt is
    in doubt, the first (recorded as sent, or sent by this process) is not taken for it."""
    first = reply()
    second = first.model_copy(update={"idempotency_key": "reply-sms-2"})
    await lane.deliverer.record([first])
    await lane.drain()
    [sent_first] = lane.sms.created
    lane.sms.steps.append(refuse(UncertainSendError("connection lost before the request")))
    await lane.deliverer.record([second])
    await lane.drain()
    if restarted:
        await lane.deliverer.close()
        lane.restart()
    await lane.later(lane.settings.backoff_max_s + 1)
    assert [t.key for t in lane.sms.created] == ["reply-sms-1", "reply-sms-2"]
    outcomes = {o.idempotency_key: o.message_id for o in lane.outcomes()}
    assert outcomes["reply-sms-1"] == sent_first.sid
    assert outcomes["reply-sms-2"] == lane.sms.created[1].sid != sent_first.sid


@pytest.mark.parametrize("restarted", [False, True], ids=["same process", "after a restart"])
async def test_a_lookup_never_takes_the_same_text_sent_to_the_number_in_another_conversation(
    lane: Lane, restarted: bool
) -> None:
    """One phone, two conversations (the patron texted again after the first one's window):
    each gets the same after-hours text. When the second's attempt is in doubt, the first's
    message (recorded as sent, or sent by this process) is not taken for it."""
    first = reply()
    second = first.model_copy(
        update={"idempotency_key": "reply-sms-2", "conversation_id": "conv-later"}
    )
    await lane.deliverer.record([first])
    await lane.drain()
    [sent_first] = lane.sms.created
    lane.sms.steps.append(refuse(UncertainSendError("connection lost before the request")))
    await lane.deliverer.record([second])
    await lane.drain()
    if restarted:
        await lane.deliverer.close()
        lane.restart()
    await lane.later(lane.settings.backoff_max_s + 1)
    assert lane.sms.lookups == ["reply-sms-2"]
    assert [t.key for t in lane.sms.created] == ["reply-sms-1", "reply-sms-2"]
    outcomes = {o.idempotency_key: o.message_id for o in lane.outcomes()}
    assert outcomes["reply-sms-1"] == sent_first.sid
    assert outcomes["reply-sms-2"] == lane.sms.created[1].sid != sent_first.sid
