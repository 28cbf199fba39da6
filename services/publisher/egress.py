"""Where outbound webhooks may go: public addresses only.

A subscription URL is checked when it is saved and again before every delivery: https (http in
development only), no credentials, and every address its host resolves to must be public
(not loopback, private, link-local, multicast, reserved, unspecified or IPv4-mapped). The
delivery then connects to the address that was checked, naming the host in the Host header
and in TLS (SNI and certificate check), so a DNS answer that changes between the check and the
connection cannot point it inside the network. Redirects are never followed (app.py).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from services.publisher.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]


class Refused(Exception):
    """A URL or address webhooks may not go to; `reason` is short and names no remote text."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for host (TCP)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


_PROTOCOL_ASSIGNMENTS = ipaddress.ip_network("192.0.0.0/24")


def address_refusal(ip: IPAddress, *, allow_loopback: bool = False) -> str | None:
    """Why webhooks may not go to this address, or None if they may."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return "IPv4-mapped address"
        embedded = ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None and address_refusal(embedded) is not None:
            return "tunnelled non-public address"
    if ip.is_loopback:
        return None if allow_loopback else "loopback address"
    for reason, flagged in (
        ("unspecified address", ip.is_unspecified),
        ("link-local address", ip.is_link_local),
        # fec0::/10, deprecated (RFC 3879) but still routed inside some sites
        ("site-local address", isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local),
        ("multicast address", ip.is_multicast),
        ("reserved address", ip.is_reserved),
        ("private address", ip.is_private),
        ("non-public address", not ip.is_global),
        # IETF protocol assignments (RFC 6890): Python 3.11 calls 192.0.0.8 and 192.0.0.9 global
        ("non-public address", ip in _PROTOCOL_ASSIGNMENTS),
    ):
        if flagged:
            return reason
    return None


def literal_address(host: str) -> list[IPAddress]:
    """The address a host written as an IP stands for, in any form the C library accepts
    ("2130706433", "0x7f.1" and "127.1" are 127.0.0.1); [] for a name."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        return [ipaddress.IPv4Address(socket.inet_aton(host))]
    except OSError:
        return []


@dataclass(frozen=True)
class Target:
    """Where one delivery connects: the checked address, and the host it stands for."""

    url: str
    host: str
    """The Host header (with a non-default port)."""
    sni: str | None
    """The name TLS sends and verifies the certificate against (https only)."""


@dataclass(frozen=True)
class Egress:
    """The rule for webhook URLs, and the resolver it checks them with."""

    allow_http: bool = False
    allow_loopback: bool = False
    resolver: Resolver = system_resolver

    def parse(self, url: str) -> httpx.URL:
        """The URL if its form is allowed (scheme, no credentials, a host); Refused otherwise."""
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, ValueError) as exc:
            raise Refused("not a URL") from exc
        if parsed.scheme != "https" and not (parsed.scheme == "http" and self.allow_http):
            raise Refused("url must be https://" + (" or http://" if self.allow_http else ""))
        if parsed.userinfo:
            raise Refused("credentials in the url are not allowed")
        if not parsed.host:
            raise Refused("url has no host")
        return parsed

    async def addresses(self, parsed: httpx.URL) -> list[IPAddress]:
        """Every address the URL's host stands for, each allowed; Refused otherwise."""
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        found = literal_address(parsed.host)
        if not found:
            try:
                raw = await self.resolver(parsed.host, port)
            except (OSError, UnicodeError) as exc:
                raise Refused("host does not resolve") from exc
            found = [ipaddress.ip_address(a.split("%", 1)[0]) for a in raw]
        if not found:
            raise Refused("host does not resolve")
        for ip in found:
            reason = address_refusal(ip, allow_loopback=self.allow_loopback)
            if reason is not None:
                raise Refused(f"{reason} not allowed")
        return found

    async def check(self, url: str) -> str:
        """A URL a subscription may be saved with; InvalidInput (422) otherwise."""
        try:
            await self.addresses(self.parse(url))
        except Refused as exc:
            raise InvalidInput(f"url refused: {exc.reason}") from exc
        return url

    async def target(self, url: str) -> Target:
        """Where to connect for one delivery (the first allowed address); Refused otherwise."""
        parsed = self.parse(url)
        ip = (await self.addresses(parsed))[0]
        host = parsed.host if parsed.port is None else f"{parsed.host}:{parsed.port}"
        return Target(
            url=str(parsed.copy_with(host=str(ip))),
            host=host,
            sni=parsed.host if parsed.scheme == "https" else None,
        )


def failure_class(exc: BaseException) -> str:
    """A short class of a delivery's transport failure, never the error's own text."""
    if isinstance(exc, Refused):
        return "blocked address"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        cause: BaseException | None = exc
        while cause is not None:
            if isinstance(cause, ConnectionRefusedError):
                return "refused"
            if isinstance(cause, ssl.SSLError):
                return "tls"
            cause = cause.__cause__ or cause.__context__
        return "connect failed"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.LocalProtocolError):
        return "protocol error"
    return "network error"


def status_class(status: int) -> str:
    """A short class of a non-2xx answer (its body is never read)."""
    return f"http {status // 100}xx"
