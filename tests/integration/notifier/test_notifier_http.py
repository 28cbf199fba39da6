"""The notifier's HTTP surface while it runs: the ledger summary, metrics and probes."""

from __future__ import annotations

import httpx
from faststream.kafka import KafkaBroker
from prometheus_client.parser import text_string_to_metric_families

from services.notifier.messages import make_message_id

from .conftest import Configure
from .notifier_env import SmtpRelay, command, eventually, running, send, settled, summary

OLDEST = "refdesk_notification_oldest_pending_age_seconds"


async def scrape(client: httpx.AsyncClient) -> dict[str, list[tuple[dict[str, str], float]]]:
    """GET /metrics, parsed: sample name -> [(labels, value)]."""
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


async def test_ledger_summary_metrics_and_probes(
    configure: Configure, relay: SmtpRelay, producer: KafkaBroker
) -> None:
    settings = await configure(max_attempts=1000)  # the outage below must not exhaust retries
    cmd = command()
    async with running(settings) as client:
        assert await summary(client) == {"pending": 0, "sent": 0, "dead": 0}
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        checks = ready.json()["checks"]
        assert checks["kafka"] is True and checks["database"] is True

        relay.stop()
        await send(producer, cmd)

        async def _waiting() -> bool:
            pending = (await summary(client))["pending"]
            return pending == 1 and (await scrape(client))[OLDEST][0][1] > 0

        await eventually(_waiting, "a pending notification and an oldest-pending age above 0")
        relay.start()
        await settled(client, sent=1)

        async def _drained() -> bool:
            return (await scrape(client))[OLDEST][0][1] == 0

        await eventually(_drained, "the oldest-pending age back to 0")
        samples = await scrape(client)

    sent = {
        tuple(sorted(labels.items())): value
        for labels, value in samples["refdesk_notifications_sent_total"]
    }
    assert sent[(("channel", "email"), ("kind", "survey"))] >= 1
    assert any(
        labels == {"kind": "survey", "channel": "email", "reason": "transient"}
        for labels, _ in samples["refdesk_notification_failures_total"]
    )
    assert "refdesk_notification_send_duration_seconds_count" in samples
    consumed = {
        (labels["topic"], labels["outcome"])
        for labels, _ in samples["refdesk_events_consumed_total"]
    }
    assert ("refdesk.notifications", "processed") in consumed
    message_id = make_message_id(cmd.idempotency_key, settings.message_id_domain)
    assert relay.handler.count_ids() == {message_id: 1}
