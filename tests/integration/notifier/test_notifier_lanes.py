"""Delivery lanes against a real SMTP server: several emails in flight per lane, one at a time
per conversation and in order, SMTP sessions reused (and replaced when the relay drops them),
a failure retrying only its own entry, and two notifier replicas sharing one ledger."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

from faststream.kafka import KafkaBroker

from services.notifier.messages import make_message_id
from shared.events import NotificationRequested

from .conftest import Configure
from .notifier_env import (
    SmtpRelay,
    attempts,
    command,
    metric,
    preload,
    running,
    send,
    settled,
)

LABELS = {"kind": "survey", "channel": "email"}


def each_once(relay: SmtpRelay, commands: list[NotificationRequested], domain: str) -> None:
    """Every command's email arrived exactly once, and nothing else did."""
    assert relay.handler.count_ids() == {
        make_message_id(cmd.idempotency_key, domain): 1 for cmd in commands
    }


def in_conversation(conversation_id: str, recipient: str) -> NotificationRequested:
    return command(recipient=recipient).model_copy(update={"conversation_id": conversation_id})


async def test_a_lane_sends_several_at_once_but_a_conversation_one_by_one_in_order(
    configure: Configure, relay: SmtpRelay
) -> None:
    settings = await configure()
    conversation = f"conv-{uuid.uuid4().hex[:12]}"
    ordered = [
        in_conversation(conversation, f"{n}@my.tccd.edu") for n in ("first", "second", "third")
    ]
    others = [command(recipient=f"patron{i}@my.tccd.edu") for i in range(20)]
    relay.handler.pause_s = 0.1
    # Were the conversation's later emails let through beside the first, they would overtake it.
    relay.handler.pause_for["first@my.tccd.edu"] = 0.6
    await preload(settings.db_url("notifier"), [*ordered, *others])

    async with running(settings) as client:
        await settled(client, sent=len(ordered) + len(others))

    each_once(relay, [*ordered, *others], settings.message_id_domain)
    assert relay.handler.most_in_data > 1, "the lane never had two emails in flight"
    recipients = [cmd.recipient for cmd in ordered]
    seen = [step for step in relay.handler.timeline if step[1] in recipients]
    assert seen == [(step, r) for r in recipients for step in ("begin", "end")]


async def test_smtp_sessions_are_reused_for_successive_emails(
    configure: Configure, relay: SmtpRelay
) -> None:
    settings = await configure()
    commands = [command() for _ in range(30)]
    await preload(settings.db_url("notifier"), commands)
    async with running(settings) as client:
        await settled(client, sent=len(commands))
    each_once(relay, commands, settings.message_id_domain)
    assert 1 <= len(relay.handler.sessions) <= settings.notifier_lane_concurrency


async def test_a_session_the_relay_closed_while_idle_costs_no_failure(
    configure: Configure, producer: KafkaBroker
) -> None:
    relay = SmtpRelay(timeout=0.3)  # aiosmtpd hangs up on a session idle for 0.3 s
    relay.start()
    try:
        settings = await configure(smtp_port=relay.port)
        first, second = command(), command()
        failures = metric("refdesk_notification_failures_total", reason="transient", **LABELS)
        retries = metric("refdesk_notification_retries_total", **LABELS)
        async with running(settings) as client:
            await send(producer, first)
            await settled(client, sent=1)
            await asyncio.sleep(2)  # the relay closes the idle session meanwhile
            await send(producer, second)
            await settled(client, sent=2)
        each_once(relay, [first, second], settings.message_id_domain)
        assert len(relay.handler.sessions) == 2
        assert (
            metric("refdesk_notification_failures_total", reason="transient", **LABELS) == failures
        )
        assert metric("refdesk_notification_retries_total", **LABELS) == retries
    finally:
        relay.stop()


async def test_a_session_dropped_as_it_is_reused_is_replaced_without_a_retry(
    configure: Configure, relay: SmtpRelay, producer: KafkaBroker
) -> None:
    settings = await configure()
    relay.handler.drop_reused = True
    first, second = command(), command()
    failures = metric("refdesk_notification_failures_total", reason="transient", **LABELS)
    retries = metric("refdesk_notification_retries_total", **LABELS)
    async with running(settings) as client:
        await send(producer, first)
        await settled(client, sent=1)
        await send(producer, second)  # on the idle session, which the relay drops at MAIL
        await settled(client, sent=2)
    assert relay.handler.dropped == 1, "the second email did not reuse the first one's session"
    each_once(relay, [first, second], settings.message_id_domain)
    assert len(relay.handler.sessions) == 2
    assert metric("refdesk_notification_failures_total", reason="transient", **LABELS) == failures
    assert metric("refdesk_notification_retries_total", **LABELS) == retries
    assert (await attempts(settings.db_url("notifier")))[second.idempotency_key] == 1


async def test_a_transient_failure_among_many_retries_only_that_entry(
    configure: Configure, relay: SmtpRelay
) -> None:
    settings = await configure()
    commands = [command(recipient=f"patron{i}@my.tccd.edu") for i in range(16)]
    flaky = commands[5]
    relay.handler.replies_for[flaky.recipient] = ["451 4.3.0 Try again later"]
    failures = metric("refdesk_notification_failures_total", reason="transient", **LABELS)
    retries = metric("refdesk_notification_retries_total", **LABELS)
    await preload(settings.db_url("notifier"), commands)
    async with running(settings) as client:
        await settled(client, sent=len(commands))
    each_once(relay, commands, settings.message_id_domain)
    assert relay.handler.replies_for[flaky.recipient] == []
    assert (
        metric("refdesk_notification_failures_total", reason="transient", **LABELS) - failures == 1
    )
    assert metric("refdesk_notification_retries_total", **LABELS) - retries == 1
    tries = await attempts(settings.db_url("notifier"))
    assert {cmd.idempotency_key: tries[cmd.idempotency_key] for cmd in commands} == {
        cmd.idempotency_key: 2 if cmd is flaky else 1 for cmd in commands
    }


async def test_two_replicas_on_one_ledger_never_send_the_same_entry(
    configure: Configure, relay: SmtpRelay
) -> None:
    first = await configure(mail_from="Replica A <replica.a@tccd.edu>")
    second = await configure(mail_from="Replica B <replica.b@tccd.edu>")
    assert first.db_url("notifier") == second.db_url("notifier")
    commands = [command() for _ in range(120)]
    relay.handler.pause_s = 0.05  # so that both replicas are at work at once
    async with running(first) as client, running(second):
        await preload(first.db_url("notifier"), commands)  # both lanes find them on their poll
        await settled(client, sent=len(commands), timeout=120)
    each_once(relay, commands, first.message_id_domain)
    senders = Counter(m["From"].addresses[0].addr_spec for m in relay.handler.messages)
    assert set(senders) == {"replica.a@tccd.edu", "replica.b@tccd.edu"}, senders
