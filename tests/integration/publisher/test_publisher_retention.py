"""Raw topics with patron data keep a short retention on the broker; the public one a year."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from shared.kafka import ensure_topics
from shared.settings import CommonSettings
from shared.topics import DAY_MS, INTERACTIONS, NOTIFICATIONS, PRESENCE, PUBLIC, ROUTING


async def broker_config(bootstrap: str, topic: str) -> dict[str, str]:
    """A topic's configuration as the broker reports it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    [(error, _message, _type, name, entries)] = response.resources
    assert error == 0 and name == topic
    return {entry[0]: entry[1] for entry in entries}


async def test_raw_topics_keep_the_configured_short_retention(kafka_bootstrap: str) -> None:
    settings = CommonSettings(kafka_bootstrap=kafka_bootstrap, topic_partitions=1)
    await ensure_topics(settings)
    for topic in (INTERACTIONS, ROUTING):
        config = await broker_config(kafka_bootstrap, topic.name)
        assert int(config["retention.ms"]) == settings.raw_retention_days * DAY_MS
        assert int(config["retention.ms"]) <= 30 * DAY_MS
        assert config["cleanup.policy"] == "delete"
        assert int(config["segment.ms"]) == DAY_MS  # deleted a day after retention at most
    public = await broker_config(kafka_bootstrap, PUBLIC.name)
    assert int(public["retention.ms"]) == 365 * DAY_MS


async def test_dead_letters_keep_thirty_days(kafka_bootstrap: str) -> None:
    """Every DLQ but presence's kept its topic's 7 days (the docs said 30): a letter that
    failed the week before a break was gone before anyone could replay it."""
    await ensure_topics(CommonSettings(kafka_bootstrap=kafka_bootstrap, topic_partitions=1))
    for topic in (INTERACTIONS, ROUTING, NOTIFICATIONS, PRESENCE):
        config = await broker_config(kafka_bootstrap, topic.dlq_name)
        assert int(config["retention.ms"]) == 30 * DAY_MS, topic.dlq_name
        assert config["cleanup.policy"] == "delete"
        assert int(config["segment.ms"]) == DAY_MS, topic.dlq_name


async def test_what_an_operator_set_on_a_topic_survives_a_restart(kafka_bootstrap: str) -> None:
    """A size cap an operator put on a dead-letter topic (during a poison storm) was wiped by
    the next service start: AlterConfigs replaces a topic's whole dynamic configuration (an
    outside review). refdesk's own settings are still applied."""
    settings = CommonSettings(kafka_bootstrap=kafka_bootstrap, topic_partitions=1)
    await ensure_topics(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        config = await broker_config(kafka_bootstrap, INTERACTIONS.dlq_name)
        capped = {**config, "retention.bytes": "104857600", "retention.ms": str(DAY_MS)}
        wanted = {k: capped[k] for k in ("retention.bytes", "retention.ms", "cleanup.policy")}
        await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, INTERACTIONS.dlq_name, wanted)]
        )
    finally:
        await admin.close()
    await ensure_topics(settings)  # a service starts
    config = await broker_config(kafka_bootstrap, INTERACTIONS.dlq_name)
    assert config["retention.bytes"] == "104857600"
    assert int(config["retention.ms"]) == 30 * DAY_MS  # refdesk's own, put back
