"""SMS through the Twilio Messages API fake, once per command: a survey, a 5xx retried, an
answer slower than the notifier's timeout (looked up, not sent again), a staff reply over
Twilio's 1,600-character limit (in parts) and refused credentials (waited out, not dropped)."""

from __future__ import annotations

import base64
import uuid

from faststream.kafka import KafkaBroker

from services.notifier.settings import NotifierSettings
from services.notifier.sms_parts import SMS_BODY_LIMIT, body_size
from shared.events import Channel, NotificationKind, StaffReplyContext

from ..notifier_adapters.notifier_fakes import CREATED, FakeTwilio
from .conftest import Configure
from .notifier_env import SURVEY_URL, SmtpRelay, command, eventually, metric, running, send, settled

SID, TOKEN, FROM = "AC" + "1" * 32, "test-twilio-token", "+18175550100"
PATRON = "+18175550123"


async def _sms_settings(
    configure: Configure, twilio: FakeTwilio, **extra: object
) -> NotifierSettings:
    return await configure(
        sms_api_base_url=twilio.base_url,
        twilio_account_sid=SID,
        twilio_auth_token=TOKEN,
        sms_from=FROM,
        **extra,
    )


async def test_survey_sms_is_sent_once(
    configure: Configure, twilio: FakeTwilio, relay: SmtpRelay, producer: KafkaBroker
) -> None:
    settings = await _sms_settings(configure, twilio)
    cmd = command(
        NotificationKind.SURVEY,
        channel=Channel.SMS,
        recipient=PATRON,
        context={"patron_name": "Ana"},
    )
    async with running(settings) as client:
        await send(producer, cmd)
        await send(producer, cmd)  # redelivered: still one SMS
        await eventually(lambda: twilio.requests, "the SMS request")
        await settled(client, sent=1)
    [request] = twilio.requests
    assert request["account_sid"] == SID and request["idempotency"] == cmd.idempotency_key
    assert request["form"]["To"] == PATRON and request["form"]["From"] == FROM
    assert SURVEY_URL in request["form"]["Body"]
    basic = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert request["authorization"] == f"Basic {basic}"
    assert relay.handler.messages == []


async def test_a_500_from_the_api_is_retried_into_one_sms(
    configure: Configure, twilio: FakeTwilio, producer: KafkaBroker
) -> None:
    settings = await _sms_settings(configure, twilio)
    twilio.respond_next(500, {"code": 20500, "message": "Internal Server Error"})
    labels = {"kind": "survey", "channel": "sms"}
    retries = metric("refdesk_notification_retries_total", **labels)
    cmd = command(NotificationKind.SURVEY, channel=Channel.SMS, recipient=PATRON, context={})
    async with running(settings) as client:
        await send(producer, cmd)
        await settled(client, sent=1)
    assert len(twilio.requests) == 2  # the failed attempt and the one that was accepted
    assert {r["idempotency"] for r in twilio.requests} == {cmd.idempotency_key}
    assert metric("refdesk_notification_retries_total", **labels) - retries == 1


async def test_an_answer_slower_than_the_timeout_is_looked_up_not_sent_again(
    configure: Configure, twilio: FakeTwilio, producer: KafkaBroker
) -> None:
    """The audit's repro, scaled down: Twilio creates the text and answers 201 after the
    notifier's HTTP timeout; the retry finds it in the Messages list instead of texting again."""
    settings = await _sms_settings(configure, twilio, smtp_timeout_s=0.5)
    twilio.respond_next(201, CREATED, delay=1.5)
    found = metric("refdesk_sms_lookups_total", result="found")
    cmd = command(NotificationKind.SURVEY, channel=Channel.SMS, recipient=PATRON)
    async with running(settings) as client:
        await send(producer, cmd)
        await settled(client, sent=1)
    assert len(twilio.created) == 1, "the patron got the survey twice"
    assert len(twilio.requests) == 1 and len(twilio.lookups) == 1
    assert metric("refdesk_sms_lookups_total", result="found") - found == 1


async def test_without_a_list_endpoint_a_slow_answer_is_sent_again_rather_than_lost(
    configure: Configure, twilio: FakeTwilio, producer: KafkaBroker
) -> None:
    settings = await _sms_settings(configure, twilio, smtp_timeout_s=0.5)
    twilio.listing = False  # the list endpoint answers 404
    twilio.respond_next(201, CREATED, delay=1.5)
    cmd = command(NotificationKind.SURVEY, channel=Channel.SMS, recipient=PATRON)
    async with running(settings) as client:
        await send(producer, cmd)
        await settled(client, sent=1)
    assert len(twilio.created) == 2 and len(twilio.lookups) == 1


async def test_a_staff_reply_over_twilios_limit_arrives_in_parts(
    configure: Configure, twilio: FakeTwilio, producer: KafkaBroker
) -> None:
    """The audit's 1,700-character reply: Twilio would refuse it whole (21617)."""
    settings = await _sms_settings(configure, twilio)
    text = ("Hi! Here is what you need to know about renewing and returning items. " * 25)[:1700]
    context = StaffReplyContext(reply_id=str(uuid.uuid4()), staff_id="lib1", text=text)
    cmd = command(
        NotificationKind.STAFF_REPLY,
        channel=Channel.SMS,
        recipient=PATRON,
        context=context.model_dump(mode="json"),
    )
    async with running(settings) as client:
        await send(producer, cmd)
        await send(producer, cmd)  # redelivered: still each part once
        await settled(client, sent=1)
    bodies = twilio.bodies_to(PATRON)
    assert len(bodies) == 2 and " ".join(bodies) == text.strip()
    assert all(body_size(b) <= SMS_BODY_LIMIT for b in bodies)


async def test_refused_credentials_hold_the_sms_until_the_token_works(
    configure: Configure, twilio: FakeTwilio, producer: KafkaBroker
) -> None:
    """A 401 / 20003 (a rotated token) is not a reason to drop the text: with one attempt
    allowed, three refusals later it still goes out."""
    settings = await _sms_settings(configure, twilio, max_attempts=1, retry_for_h=0)
    for _ in range(3):
        twilio.respond_next(401, {"code": 20003, "message": "Authenticate", "status": 401})
    refused = metric("refdesk_notification_auth_failures_total", channel="sms")
    cmd = command(NotificationKind.SURVEY, channel=Channel.SMS, recipient=PATRON)
    async with running(settings) as client:
        await send(producer, cmd)
        await settled(client, sent=1, dead=0)
    assert len(twilio.requests) == 4 and len(twilio.created) == 1
    assert metric("refdesk_notification_auth_failures_total", channel="sms") - refused == 3
