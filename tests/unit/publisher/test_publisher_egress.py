"""Where webhooks may go (issue 13, finding 1): public addresses only, checked at every delivery,
connected to as checked, and only a short failure class in the delivery log."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select

from services.publisher import deliveries, subscriptions
from services.publisher.egress import Egress, Refused, address_refusal, failure_class
from services.publisher.errors import InvalidInput
from services.publisher.settings import PublisherSettings
from services.publisher.tables import Delivery
from services.publisher.webhooks import WebhookWorker
from shared.db import create_engine, migrate, session_factory
from shared.events import AnyEvent, PublicDepartmentPresence, new_event
from tests.fakes import secret_like

PUBLIC = "93.184.216.34"
T = datetime(2025, 12, 1, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("address", "refusal"),
    [
        ("93.184.216.34", None),
        ("2606:2800:220:1:248:1893:25c8:1946", None),
        ("127.0.0.1", "loopback address"),
        ("::1", "loopback address"),
        ("10.0.0.1", "private address"),
        ("172.16.5.4", "private address"),
        ("192.168.1.1", "private address"),
        ("fd00::1", "private address"),
        ("169.254.169.254", "link-local address"),
        ("fe80::1", "link-local address"),
        ("224.0.0.1", "multicast address"),
        ("ff02::1", "multicast address"),
        ("0.0.0.0", "unspecified address"),
        ("::", "unspecified address"),
        ("240.0.0.1", "reserved address"),
        ("100.64.0.1", "non-public address"),  # carrier-grade NAT
        # IETF protocol assignments: Python 3.11's ipaddress calls these two global
        ("192.0.0.8", "non-public address"),
        ("192.0.0.9", "non-public address"),
        ("::ffff:127.0.0.1", "IPv4-mapped address"),
        ("::ffff:93.184.216.34", "IPv4-mapped address"),
        ("2002:7f00:1::", "tunnelled non-public address"),  # 6to4 of 127.0.0.1
    ],
)
def test_only_public_addresses_are_allowed(address: str, refusal: str | None) -> None:
    assert address_refusal(ipaddress.ip_address(address)) == refusal


def test_loopback_only_when_development_allows_it() -> None:
    assert address_refusal(ipaddress.ip_address("127.0.0.1"), allow_loopback=True) is None
    assert address_refusal(ipaddress.ip_address("10.0.0.1"), allow_loopback=True)


class FlippingDns:
    """A resolver whose answers change between calls (DNS rebinding)."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls += 1
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "https"),
        ("gopher://example.com/", "https"),
        ("http://hooks.example.com/", "https"),  # production: https only
        ("https://user:pass@hooks.example.com/", "credentials"),
        ("https://2130706433/", "loopback"),
        ("https://017700000001/", "loopback"),
        ("https://127.1/", "loopback"),
        ("https:///nohost", "host"),
    ],
)
async def test_registration_refuses(url: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason):
        await Egress(resolver=FlippingDns([PUBLIC])).check(url)


async def test_a_name_is_refused_if_any_of_its_addresses_is_internal() -> None:
    egress = Egress(resolver=FlippingDns([PUBLIC, "10.0.0.7"]))
    with pytest.raises(InvalidInput, match="private"):
        await egress.check("https://hooks.example.com/x")


async def test_unresolvable_hosts_are_refused() -> None:
    async def nxdomain(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(InvalidInput, match="does not resolve"):
        await Egress(resolver=nxdomain).check("https://nowhere.example.com/")


async def test_delivery_connects_to_the_address_it_checked() -> None:
    target = await Egress(resolver=FlippingDns([PUBLIC])).target(
        "https://hooks.example.com:8443/in?x=1"
    )
    assert target.url == f"https://{PUBLIC}:8443/in?x=1"
    assert (target.host, target.sni) == ("hooks.example.com:8443", "hooks.example.com")


async def test_a_name_that_rebinds_to_an_internal_address_is_refused_at_delivery() -> None:
    dns = FlippingDns([PUBLIC], ["169.254.169.254"])
    egress = Egress(resolver=dns)
    await egress.check("https://rebind.example.com/")
    with pytest.raises(Refused, match="link-local"):
        await egress.target("https://rebind.example.com/")
    assert dns.calls == 2


def test_failure_classes_never_carry_the_errors_text() -> None:
    request = httpx.Request("POST", "https://93.184.216.34/")
    refused = httpx.ConnectError("[Errno 111] Connection refused to 10.0.0.1:8084")
    refused.__cause__ = ConnectionRefusedError(111, "Connection refused")
    tls = httpx.ConnectError("certificate verify failed for internal.example")
    tls.__cause__ = ssl.SSLCertVerificationError("certificate verify failed")
    cases = [
        (httpx.ConnectTimeout("timed out", request=request), "timeout"),
        (httpx.ReadTimeout("timed out", request=request), "timeout"),
        (refused, "refused"),
        (tls, "tls"),
        (httpx.ConnectError("Name or service not known"), "connect failed"),
        (
            httpx.RemoteProtocolError("illegal status line: b'SSH-2.0-OpenSSH_9.6'"),
            "protocol error",
        ),
        (Refused("loopback address not allowed"), "blocked address"),
    ]
    assert [failure_class(exc) for exc, _ in cases] == [c for _, c in cases]


@pytest.fixture
async def worker(database_url: str) -> AsyncIterator[tuple[WebhookWorker, list[httpx.Request]]]:
    """A worker on a real database whose HTTP goes to a fake receiver."""
    engine = create_engine(database_url)
    await migrate(engine, "publisher")
    seen: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.headers["host"] == "down.example.com":
            return httpx.Response(500, text="Traceback: db password=hunter2 at 10.0.0.5:5432")
        if request.headers["host"] == "closed.example.com":
            error = httpx.ConnectError("[Errno 111] Connect call failed ('10.0.0.1', 22)")
            error.__cause__ = ConnectionRefusedError(111, "refused")
            raise error
        return httpx.Response(204)

    dns = {"internal.example.com": ["127.0.0.1"]}

    async def resolver(host: str, port: int) -> list[str]:
        return dns.get(host, [PUBLIC])

    settings = PublisherSettings(
        env="production", public_hash_key=secret_like("hash"), admin_token=secret_like("admin")
    )
    http = httpx.AsyncClient(transport=httpx.MockTransport(receiver))
    yield (
        WebhookWorker(
            settings=settings,
            sessions=session_factory(engine),
            http=http,
            egress=Egress(resolver=resolver),
            clock=lambda: T,
        ),
        seen,
    )
    await http.aclose()
    await engine.dispose()


async def _deliver(worker: WebhookWorker, url: str) -> Delivery:
    async with worker.sessions() as session:
        sub = await subscriptions.create(
            session=session, url=url, now=T, egress=Egress(resolver=_public)
        )
        data = PublicDepartmentPresence(department="tutoring", online=1, changed_at=T)
        payload = new_event(data, source="unit").model_dump_json()
        event = AnyEvent.model_validate_json(payload)
        await deliveries.enqueue(session, sub=sub, event=event, payload=payload, now=T)
        await session.commit()
    await worker.drain()
    async with worker.sessions() as session:
        return (await session.execute(select(Delivery))).scalars().one()


async def _public(host: str, port: int) -> list[str]:
    return [PUBLIC]


async def test_a_delivery_goes_to_the_checked_address_named_in_host(
    worker: tuple[WebhookWorker, list[httpx.Request]],
) -> None:
    wk, seen = worker
    row = await _deliver(wk, "https://hooks.example.com/in")
    assert row.state == deliveries.DELIVERED
    assert str(seen[0].url) == f"https://{PUBLIC}/in"
    assert seen[0].headers["host"] == "hooks.example.com"
    assert seen[0].extensions["sni_hostname"] == "hooks.example.com"


@pytest.mark.parametrize(
    ("url", "status", "error", "sent"),
    [
        ("https://down.example.com/", 500, "http 5xx", True),
        ("https://closed.example.com/", None, "refused", True),
        # registered while public, resolves to loopback now: never connected to
        ("https://internal.example.com/", None, "blocked address", False),
    ],
)
async def test_the_delivery_log_shows_a_class_never_the_remote_text(
    worker: tuple[WebhookWorker, list[httpx.Request]],
    url: str,
    status: int | None,
    error: str,
    sent: bool,
) -> None:
    wk, seen = worker
    row = await _deliver(wk, url)
    assert (row.state, row.last_status, row.last_error) == (deliveries.PENDING, status, error)
    assert bool(seen) is sent
