"""The relay over STARTTLS: REFDESK_SMTP_CA_FILE and REFDESK_SMTP_VALIDATE_CERTS take effect."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from faststream.kafka import KafkaBroker

from services.notifier.messages import make_message_id
from tests.servers import self_signed

from .conftest import Configure
from .notifier_env import SmtpRelay, command, dead_letters, running, send, settled


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl CLI): (cert, key)."""
    return self_signed(tmp_path_factory.mktemp("notifier-tls"))


@pytest.fixture
def tls_relay(certificate: tuple[Path, Path]) -> Iterator[SmtpRelay]:
    """A relay that requires STARTTLS with the self-signed certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    server = SmtpRelay(tls_context=context, require_starttls=True)
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize("trust", ["ca_file", "no_validation"])
async def test_starttls_relay_is_trusted_as_configured(
    configure: Configure,
    tls_relay: SmtpRelay,
    producer: KafkaBroker,
    certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    trust: str,
) -> None:
    if trust == "ca_file":
        monkeypatch.setenv("REFDESK_SMTP_CA_FILE", str(certificate[0]))
    else:
        monkeypatch.setenv("REFDESK_SMTP_VALIDATE_CERTS", "false")
    settings = await configure(smtp_port=tls_relay.port, smtp_tls="starttls")
    cmd = command()
    async with running(settings) as client:
        await send(producer, cmd)
        await settled(client, sent=1)
    message_id = make_message_id(cmd.idempotency_key, settings.message_id_domain)
    assert len(tls_relay.handler.with_id(message_id)) == 1


async def test_untrusted_relay_certificate_is_not_used(
    configure: Configure, tls_relay: SmtpRelay, producer: KafkaBroker, kafka_bootstrap: str
) -> None:
    settings = await configure(
        smtp_port=tls_relay.port, smtp_tls="starttls", max_attempts=2, retry_for_h=0
    )
    assert settings.smtp_validate_certs and settings.smtp_ca_file is None  # the defaults
    cmd = command()
    async with running(settings) as client:
        await send(producer, cmd)
        await settled(client, sent=0, dead=1)
    [letter] = await dead_letters(kafka_bootstrap, settings.notifier_group, count=1)
    assert letter["data"]["reason"].startswith("retries exhausted after 2")
    assert tls_relay.handler.messages == []
