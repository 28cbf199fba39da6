"""A number that texted STOP gets nothing more from refdesk, through the fake Twilio over a real
SQLite ledger: every later text to it, in any conversation and of any kind, is settled as
refused with Twilio's code for it (21610) without reaching Twilio, until it texts START; a
replayed STOP or START changes nothing. And the HELP reply as the patron reads it."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from deliverer_fakes import LEASE_S, refuse
from sms_lane import Lane
from sqlalchemy.engine import Connection

from services.notifier import recipients, tables
from services.notifier.consent import provider_opt_out
from services.notifier.errors import PermanentSendError
from services.notifier.outgoing import build
from services.notifier.settings import NotifierSettings
from services.router.commands import commands_for
from services.router.policy import (
    DecisionInput,
    Policy,
    default_policy_path,
    load_policy,
    parse_policy,
)
from shared.events import (
    Channel,
    DeliveryState,
    InteractionReceived,
    KeywordReplyContext,
    NotificationKind,
    NotificationRequested,
    Patron,
    SmsConsentContext,
    StaffReplyContext,
    SurveyContext,
)
from shared.topics import NOTIFICATIONS

PATRON = "+18175550123"
OTHER = "+18175550199"
AT = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)


@pytest.fixture
async def lane(tmp_path: Path, ledger_url: str) -> AsyncIterator[Lane]:
    settings = NotifierSettings(run_dir=tmp_path, lease_s=LEASE_S, max_attempts=5, retry_for_h=0)
    made = Lane(settings, ledger_url)
    yield made
    await made.deliverer.close()


def consent(
    key: str, kind: NotificationKind, *, to: str = PATRON, confirmation: str | None = None
) -> NotificationRequested:
    context = SmsConsentContext(keyword="STOP" if kind is NotificationKind.SMS_OPT_OUT else "START")
    if confirmation is not None:
        context = context.model_copy(update={"confirmation_key": confirmation})
    return NotificationRequested(
        idempotency_key=key,
        kind=kind,
        channel=Channel.SMS,
        recipient=to,
        conversation_id="conv-1",
        context=context.model_dump(mode="json"),
        requested_at=AT,
    )


def stop(key: str = "stop-1", **kw: str) -> NotificationRequested:
    return consent(key, NotificationKind.SMS_OPT_OUT, **kw)


def start(key: str = "start-1") -> NotificationRequested:
    return consent(key, NotificationKind.SMS_OPT_IN)


def yes(key: str = "yes-1") -> NotificationRequested:
    """YES texted alone: an opt-in only after an opt-out (it also answers librarians)."""
    found = consent(key, NotificationKind.SMS_OPT_IN)
    return found.model_copy(
        update={"context": {**found.context, "keyword": "YES", "if_opted_out": True}}
    )


def staff_reply(
    key: str, *, to: str = PATRON, conversation: str = "conv-1"
) -> NotificationRequested:
    context = StaffReplyContext(reply_id=key, staff_id="lib-1", text="Your book is on hold.")
    return NotificationRequested(
        idempotency_key=key,
        kind=NotificationKind.STAFF_REPLY,
        channel=Channel.SMS,
        recipient=to,
        conversation_id=conversation,
        context=context.model_dump(mode="json"),
        requested_at=AT,
    )


def survey(key: str, *, conversation: str = "conv-2") -> NotificationRequested:
    return NotificationRequested(
        idempotency_key=key,
        kind=NotificationKind.SURVEY,
        channel=Channel.SMS,
        recipient=PATRON,
        conversation_id=conversation,
        context=SurveyContext(survey_url="https://s.tccd.edu/r").model_dump(mode="json"),
        requested_at=AT,
    )


def reply(key: str, keyword: str = "STOP") -> NotificationRequested:
    context = KeywordReplyContext(reply_text="You are unsubscribed.", keyword=keyword)
    return NotificationRequested(
        idempotency_key=key,
        kind=NotificationKind.KEYWORD_REPLY,
        channel=Channel.SMS,
        recipient=PATRON,
        conversation_id="conv-1",
        context=context.model_dump(mode="json"),
        requested_at=AT,
    )


def outcome_of(lane: Lane, key: str) -> tuple[DeliveryState, str | None, int | None]:
    [found] = [o for o in lane.outcomes() if o.idempotency_key == key]
    return found.state, found.reason, found.error_code


REFUSED = (DeliveryState.FAILED, "opted out", 21610)


async def test_after_stop_no_text_reaches_twilio_in_any_conversation(lane: Lane) -> None:
    """The tester's case: STOP, then the conversation closed and the survey went out."""
    await lane.deliverer.record([stop()])
    await lane.deliverer.record([staff_reply("reply-1"), survey("survey-2")])
    await lane.later(1)  # the rows of a batch are due a microsecond apart
    assert lane.sms.attempts == []
    assert outcome_of(lane, "reply-1") == REFUSED
    assert outcome_of(lane, "survey-2") == REFUSED
    assert lane.publisher.on(NOTIFICATIONS.dlq_name) == []  # what the patron asked: no fault
    row = await lane.row("survey-2")
    assert (row.state, row.error_code) == (tables.DEAD, 21610)


async def test_a_text_waiting_when_stop_arrives_is_not_sent(lane: Lane) -> None:
    await lane.deliverer.record([survey("survey-2")])
    await lane.deliverer.record([stop()])
    await lane.later(1)
    assert lane.sms.attempts == []
    assert outcome_of(lane, "survey-2") == REFUSED


async def test_the_opt_out_itself_sends_and_announces_nothing(lane: Lane) -> None:
    assert await lane.deliverer.record([stop()]) == set()  # no lane to wake
    await lane.later(1)
    assert lane.sms.attempts == [] and lane.outcomes() == []
    rows = await lane.deliverer.db(lambda conn: conn.execute(tables.sms_consent.select()).all())
    assert [(r.idempotency_key, r.opted_out) for r in rows] == [("stop-1", True)]
    assert PATRON not in str(rows)  # the number's keyed hash, never the number
    ledger_rows = await lane.deliverer.db(lambda conn: conn.execute(tables.ledger.select()).all())
    assert ledger_rows == []


async def test_other_numbers_are_texted_as_before(lane: Lane) -> None:
    await lane.deliverer.record([stop(), staff_reply("other-1", to=OTHER, conversation="c9")])
    await lane.later(1)
    assert lane.sms.attempts == ["other-1"]
    assert outcome_of(lane, "other-1")[0] is DeliveryState.SENT


async def test_start_clears_the_opt_out(lane: Lane) -> None:
    await lane.deliverer.record([stop(), staff_reply("reply-1")])
    await lane.later(1)
    await lane.deliverer.record([start(), staff_reply("reply-2")])
    await lane.later(1)
    assert lane.sms.attempts == ["reply-2"]
    assert outcome_of(lane, "reply-1") == REFUSED
    assert outcome_of(lane, "reply-2")[0] is DeliveryState.SENT


async def test_a_replayed_stop_or_start_changes_nothing(lane: Lane) -> None:
    """STOP, START, then STOP redelivered (a crash before the offset commit): still opted in.
    Then START redelivered after a second, new STOP: still opted out."""
    await lane.deliverer.record([stop()])
    await lane.deliverer.record([start()])
    await lane.deliverer.record([stop()])  # the same key again
    await lane.deliverer.record([staff_reply("reply-1")])
    await lane.later(1)
    assert lane.sms.attempts == ["reply-1"]
    await lane.deliverer.record([stop("stop-2")])
    await lane.deliverer.record([start()])  # the same key again
    await lane.deliverer.record([staff_reply("reply-2")])
    await lane.later(1)
    assert lane.sms.attempts == ["reply-1"]
    assert outcome_of(lane, "reply-2") == REFUSED


async def test_yes_after_stop_opts_back_in_as_twilio_does(lane: Lane) -> None:
    """Twilio resumed texts to a number that texted YES after STOP; refdesk kept refusing
    them (21610) until START."""
    await lane.deliverer.record([stop(), staff_reply("reply-1")])
    await lane.later(1)
    await lane.deliverer.record([yes(), staff_reply("reply-2")])
    await lane.later(1)
    assert lane.sms.attempts == ["reply-2"]
    assert outcome_of(lane, "reply-1") == REFUSED


async def test_yes_to_a_number_that_never_opted_out_changes_nothing(lane: Lane) -> None:
    """A "yes" in answer to a librarian: the number stays opted in, a later STOP still stops,
    and that YES redelivered after the STOP (a crash before the offset commit) changes
    nothing."""
    await lane.deliverer.record([yes(), staff_reply("reply-1")])
    await lane.later(1)
    assert lane.sms.attempts == ["reply-1"]
    await lane.deliverer.record([stop()])
    await lane.deliverer.record([yes()])  # the same key again
    await lane.deliverer.record([staff_reply("reply-2")])
    await lane.later(1)
    assert lane.sms.attempts == ["reply-1"]
    assert outcome_of(lane, "reply-2") == REFUSED


async def test_stop_then_yes_in_one_batch_keep_their_order(lane: Lane) -> None:
    await lane.deliverer.record([stop(), yes(), staff_reply("reply-1")])
    await lane.later(1)
    assert lane.sms.attempts == ["reply-1"]


async def test_stop_then_start_in_one_batch_keep_their_order(lane: Lane) -> None:
    await lane.deliverer.record([stop(), start(), staff_reply("reply-1")])
    await lane.later(1)
    assert lane.sms.attempts == ["reply-1"]


async def test_the_policys_stop_reply_is_the_one_confirmation_sent(lane: Lane) -> None:
    await lane.deliverer.record(
        [stop(confirmation="confirm-1"), reply("confirm-1"), reply("help-1", "HELP")]
    )
    await lane.later(1)
    assert lane.sms.attempts == ["confirm-1"]
    assert outcome_of(lane, "help-1") == REFUSED


async def test_the_opt_out_outlives_the_process(lane: Lane) -> None:
    await lane.deliverer.record([stop()])
    await lane.deliverer.close()
    lane.restart()
    await lane.deliverer.record([survey("survey-2")])
    await lane.later(1)
    assert lane.sms.attempts == []
    assert outcome_of(lane, "survey-2") == REFUSED


# ---- the router's commands, as the notifier takes them ----------------------------------------


def short_code_policy() -> Policy:
    """The default policy with the HELP and INFO replies its comment gives for a short code."""
    text = default_policy_path().read_text("utf-8")
    text = text.replace("  #   HELP: &help_reply ", "  HELP: &help_reply ", 1)
    text = text.replace("  #   INFO: *help_reply", "  INFO: *help_reply", 1)
    return parse_policy(text.encode("utf-8"))


def routed(text: str, *, help_reply: bool = False) -> list[NotificationRequested]:
    policy = short_code_policy() if help_reply else load_policy(default_policy_path())
    interaction = InteractionReceived(
        interaction_id=f"i-{text}",
        conversation_id="sms-c1",
        channel=Channel.SMS,
        provider="test",
        provider_message_id="m-1",
        patron=Patron(contact=PATRON),
        text=text,
        received_at=AT,
    )
    inp = DecisionInput(channel=Channel.SMS, text=text, received_at=AT)
    return commands_for(interaction, policy.decide(inp), policy)


async def test_the_routers_stop_and_start_reach_the_number(lane: Lane) -> None:
    await lane.deliverer.record(routed("STOP"))
    await lane.deliverer.record(routed("HOURS"))
    await lane.later(1)
    assert lane.sms.attempts == []
    await lane.deliverer.record(routed("start"))
    await lane.deliverer.record(routed("hours"))  # another text than the refused HOURS
    await lane.later(1)
    assert len(lane.sms.created) == 1 and lane.sms.created[0].body.startswith("TCC Library:")


@pytest.mark.parametrize("word", ["HELP", "help", "INFO"])
def test_the_help_reply_says_each_thing_once(word: str) -> None:
    """The tester's HELP reply said "TCC Library:" twice and "STOP to opt out" twice. (The
    default policy leaves HELP to Twilio; a short code's policy answers it, as here.)"""
    [cmd] = routed(word, help_reply=True)
    text = build(cmd, NotifierSettings(run_dir=Path("/tmp"))).text
    assert text.count("TCC Library") == 1
    assert text.count("STOP") == 1 and text.count("opt out") == 1
    assert "Msg&data rates may apply" in text
    assert len(text) <= 160  # one segment


def test_ayuda_gets_one_reply_with_the_rates_in_spanish() -> None:
    [cmd] = routed("ayuda")
    text = build(cmd, NotifierSettings(run_dir=Path("/tmp"))).text
    assert text.count("TCC Library") == 1 and text.count("STOP") == 1
    assert "Pueden aplicarse tarifas de mensajes y datos" in text


async def test_an_opt_out_twilio_keeps_is_remembered_without_a_dead_letter(lane: Lane) -> None:
    """Twilio enforces a STOP of its own (one refdesk never saw: texted to the number before
    refdesk, or to another app of the account): its 21610 had been a dead letter, and a page,
    for every text after it (an outside probe). The first is remembered as the number's
    opt-out, and the number's next texts are settled here, until it texts START."""
    unsubscribed = PermanentSendError("twilio http 400 error 21610", code=400, provider_code=21610)
    lane.sms.steps.append(refuse(unsubscribed))
    await lane.deliverer.record([staff_reply("reply-1")])
    await lane.later(1)
    assert outcome_of(lane, "reply-1") == REFUSED
    await lane.deliverer.record([staff_reply("reply-2")])
    await lane.later(1)
    assert lane.sms.attempts == ["reply-1"]  # the second never reached Twilio
    assert outcome_of(lane, "reply-2") == REFUSED
    assert lane.publisher.on(NOTIFICATIONS.dlq_name) == []
    await lane.deliverer.record([start(), staff_reply("reply-3")])
    await lane.later(1)
    assert lane.sms.attempts == ["reply-1", "reply-3"]
    assert outcome_of(lane, "reply-3")[0] is DeliveryState.SENT


async def test_a_start_read_while_twilio_refused_the_text_stands(lane: Lane) -> None:
    """The number's START recorded after the refused attempt began is the newer word: Twilio's
    refusal is not recorded over it (one that began after it is)."""
    await lane.deliverer.record([start()])
    key = await lane.deliverer.db(recipients.ledger_key)
    number = recipients.recipient_hash(PATRON, key)

    def refused_since(since: datetime, text: str) -> Callable[[Connection], bool]:
        return functools.partial(
            provider_opt_out,
            recipient_hash=number,
            key=text,
            conversation_id="conv-1",
            since=since,
            now=lane.clock(),
        )

    earlier = lane.clock() - timedelta(seconds=1)
    assert await lane.deliverer.db(refused_since(earlier, "reply-1")) is False
    later = lane.clock() + timedelta(seconds=1)
    assert await lane.deliverer.db(refused_since(later, "reply-2")) is True
    assert await lane.deliverer.db(refused_since(later, "reply-2")) is False  # once per text
