"""SmtpSender's session pool against a real aiosmtpd server: sessions are reused, bounded,
closed when idle, replaced after an error, and a session the relay dropped is not a failure."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from services.notifier.email_sender import SmtpSender, SmtpSettings
from services.notifier.errors import TransientSendError
from tests.eventually import eventually

from .notifier_fakes import SmtpServer
from .test_notifier_smtp_sender import _message


def _sender(port: int, **pool: float) -> SmtpSender:
    return SmtpSender(SmtpSettings(host="127.0.0.1", port=port, tls="none", timeout=5), **pool)


def _peers(server: SmtpServer) -> list[object]:
    return [m.peer for m in server.handler.messages]


async def test_successive_messages_share_one_session(smtp_plain: SmtpServer) -> None:
    sender = _sender(smtp_plain.port, max_sessions=4)
    for n in range(5):
        await sender.send(_message(key=f"n-{n}"))
    assert len(_peers(smtp_plain)) == 5 and len(set(_peers(smtp_plain))) == 1
    await sender.close()
    await eventually(lambda: smtp_plain.handler.quits == 1, "QUIT on close")


async def test_concurrent_messages_use_at_most_max_sessions(smtp_plain: SmtpServer) -> None:
    sender = _sender(smtp_plain.port, max_sessions=3)
    await asyncio.gather(*(sender.send(_message(key=f"n-{n}")) for n in range(12)))
    assert len(smtp_plain.handler.messages) == 12
    assert 1 <= len(set(_peers(smtp_plain))) <= 3
    await sender.close()


async def test_a_failure_replaces_the_session(smtp_plain: SmtpServer) -> None:
    sender = _sender(smtp_plain.port)
    await sender.send(_message(key="n-1"))
    smtp_plain.handler.reject_next("451 4.3.0 Try again later")
    with pytest.raises(TransientSendError):  # classified as before, on a reused session too
        await sender.send(_message(key="n-2"))
    await sender.send(_message(key="n-3"))
    first, third = _peers(smtp_plain)
    assert first != third
    await sender.close()


async def test_an_idle_session_is_closed_and_the_next_message_opens_another(
    smtp_plain: SmtpServer,
) -> None:
    sender = _sender(smtp_plain.port, idle_timeout_s=0.2)
    await sender.send(_message(key="n-1"))
    await eventually(lambda: smtp_plain.handler.quits == 1, "QUIT after the idle timeout")
    await sender.send(_message(key="n-2"))
    first, second = _peers(smtp_plain)
    assert first != second
    await sender.close()


async def test_a_session_the_relay_closed_while_idle_is_not_a_failure(
    start_smtp: Callable[..., SmtpServer],
) -> None:
    server = start_smtp(timeout=0.3)  # aiosmtpd hangs up on sessions idle for 0.3 s
    sender = _sender(server.port)
    await sender.send(_message(key="n-1"))
    await asyncio.sleep(1.5)  # the relay closes the idle session meanwhile
    await sender.send(_message(key="n-2"))
    first, second = _peers(server)
    assert first != second
    await sender.close()
