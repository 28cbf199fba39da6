"""The notifier through outages: the relay down for a while, and a restart mid-batch.

In the fault suite (`make test-faults`): each test runs a notifier through minutes of outage
or 200 deliveries across a restart."""

from __future__ import annotations

from faststream.kafka import KafkaBroker

from services.notifier.messages import make_message_id
from tests.integration.notifier.conftest import Configure
from tests.integration.notifier.notifier_env import (
    SmtpRelay,
    command,
    eventually,
    leased_pending,
    metric,
    running,
    send,
    settled,
    summary,
)


async def test_relay_down_for_a_while_then_everything_is_delivered_once(
    configure: Configure, relay: SmtpRelay, producer: KafkaBroker
) -> None:
    settings = await configure(max_attempts=1000)  # the outage must not exhaust the retries
    commands = [command() for _ in range(5)]
    labels = {"kind": "survey", "channel": "email"}
    retries = metric("refdesk_notification_retries_total", **labels)
    async with running(settings) as client:
        relay.stop()
        for cmd in commands:
            await send(producer, cmd)
        # Down "for a while": until every command has failed (and been rescheduled) twice.
        await eventually(
            lambda: (
                metric("refdesk_notification_retries_total", **labels) - retries
                >= 2 * len(commands)
            ),
            "two failed attempts per command",
        )
        assert (await summary(client))["pending"] == len(commands)
        relay.start()  # a new server on the same port
        await settled(client, sent=len(commands))
    assert relay.handler.count_ids() == {
        make_message_id(cmd.idempotency_key, settings.message_id_domain): 1 for cmd in commands
    }


async def test_restart_mid_batch_delivers_each_of_200_exactly_once(
    configure: Configure, relay: SmtpRelay, producer: KafkaBroker
) -> None:
    settings = await configure()
    commands = [command() for _ in range(200)]
    wanted = {make_message_id(cmd.idempotency_key, settings.message_id_domain) for cmd in commands}
    relay.handler.pause_s = 0.02  # so the batch is still in flight when the first instance stops
    for cmd in commands:
        await send(producer, cmd)

    async with running(settings):
        await eventually(lambda: len(relay.handler.messages) >= 30, "the batch under way")
    stopped_at = len(relay.handler.messages)
    assert stopped_at < len(commands), "the first instance finished the batch before it stopped"
    # A graceful stop finishes the message in hand: nothing is left leased to a gone worker.
    assert await leased_pending(settings.db_url("notifier")) == 0

    relay.handler.pause_s = 0
    async with running(settings) as client:  # same database, same consumer group
        await settled(client, sent=len(commands), timeout=180)
    counts = relay.handler.count_ids()
    assert set(counts) == wanted
    assert [mid for mid, n in counts.items() if n != 1] == []
