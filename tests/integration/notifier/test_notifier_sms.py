"""Survey SMS through the Twilio Messages API fake, once per command."""

from __future__ import annotations

import base64

from faststream.kafka import KafkaBroker

from services.notifier.settings import NotifierSettings
from shared.events import Channel, NotificationKind

from ..notifier_adapters.notifier_fakes import FakeTwilio
from .conftest import Configure
from .notifier_env import SURVEY_URL, SmtpRelay, command, eventually, metric, running, send, settled

SID, TOKEN, FROM = "AC" + "1" * 32, "test-twilio-token", "+18175550100"
PATRON = "+18175550123"


async def _sms_settings(configure: Configure, twilio: FakeTwilio) -> NotifierSettings:
    return await configure(
        sms_api_base_url=twilio.base_url,
        twilio_account_sid=SID,
        twilio_auth_token=TOKEN,
        sms_from=FROM,
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
