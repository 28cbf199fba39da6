"""SmtpSender against a real aiosmtpd server: delivery, reply-code classification, TLS and AUTH."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable

import pytest

from services.notifier.email_sender import SmtpSender, SmtpSettings
from services.notifier.errors import (
    AuthenticationFailed,
    PermanentSendError,
    SettingsRefused,
    TransientSendError,
    Unconfirmed,
)
from services.notifier.messages import compose_email
from services.notifier.mime import Email
from services.notifier.outcomes import reason_class
from shared.events import NotificationKind

from .notifier_fakes import PASSWORD, USER, SmtpServer, TlsFiles, free_port


def _message(to: str | list[str] = "patron@example.edu", key: str = "n-1") -> Email:
    return compose_email(
        NotificationKind.SURVEY,
        {"survey_url": "https://libanswers.tccd.edu/survey"},
        to=to,
        mail_from="Ask Desk <askdesk@tccd.edu>",
        idempotency_key=key,
        conversation_id="c-42",
    )


def _plain(port: int) -> SmtpSender:
    return SmtpSender(SmtpSettings(host="127.0.0.1", port=port, tls="none", timeout=5))


async def test_delivers_multipart_message(smtp_plain: SmtpServer) -> None:
    msg = _message()
    await _plain(smtp_plain.port).send(msg)
    [received] = smtp_plain.handler.messages
    assert received.mail_from == "askdesk@tccd.edu" and received.rcpt_tos == ["patron@example.edu"]
    parsed = email.message_from_bytes(received.content, policy=email.policy.default)
    assert parsed["Message-ID"] == msg.message_id
    assert parsed["Subject"].endswith("[refdesk #c-42]")
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed["Date"]  # the sender adds one when the builder was not given a date


@pytest.mark.parametrize("reply", ["421 4.3.2 Service not available", "451 4.3.0 Try again later"])
async def test_4xx_at_data_is_transient(smtp_plain: SmtpServer, reply: str) -> None:
    smtp_plain.handler.reject_next(reply)
    with pytest.raises(TransientSendError):
        await _plain(smtp_plain.port).send(_message())
    assert smtp_plain.handler.messages == []
    await _plain(smtp_plain.port).send(_message())  # the next attempt goes through
    assert len(smtp_plain.handler.messages) == 1


async def test_451_carries_its_code(smtp_plain: SmtpServer) -> None:
    smtp_plain.handler.reject_next("451 4.3.0 Try again later")
    with pytest.raises(TransientSendError) as info:
        await _plain(smtp_plain.port).send(_message())
    assert info.value.code == 451


async def test_550_at_data_is_permanent(smtp_plain: SmtpServer) -> None:
    smtp_plain.handler.reject_next("550 5.7.1 Message rejected")
    with pytest.raises(PermanentSendError) as info:
        await _plain(smtp_plain.port).send(_message())
    assert info.value.code == 550 and info.value.status == "5.7.1"
    assert reason_class(info.value) == "rejected 550 5.7.1"


async def test_552_without_an_enhanced_code_is_permanent_and_says_only_its_code(
    smtp_plain: SmtpServer,
) -> None:
    smtp_plain.handler.reject_next("552 Message size exceeds fixed maximum message size")
    with pytest.raises(PermanentSendError) as info:
        await _plain(smtp_plain.port).send(_message())
    assert (info.value.code, info.value.status) == (552, None)
    assert reason_class(info.value) == "rejected 552"


async def test_refused_recipient_is_permanent(smtp_plain: SmtpServer) -> None:
    smtp_plain.handler.reject_next("550 5.1.1 No such user", at="RCPT")
    with pytest.raises(PermanentSendError) as info:
        await _plain(smtp_plain.port).send(_message())
    assert info.value.code == 550 and info.value.status == "5.1.1"
    assert reason_class(info.value) == "rejected 550 5.1.1"
    assert "patron@example.edu" not in str(info.value)


async def test_deferred_recipient_is_transient(smtp_plain: SmtpServer) -> None:
    smtp_plain.handler.reject_next("450 4.2.1 Mailbox busy", at="RCPT")
    with pytest.raises(TransientSendError) as info:
        await _plain(smtp_plain.port).send(_message())
    assert info.value.code == 450


async def test_one_of_two_recipients_refused_for_good_still_delivers(
    smtp_plain: SmtpServer,
) -> None:
    smtp_plain.handler.reject_next("550 5.1.1 No such user", at="RCPT")
    await _plain(smtp_plain.port).send(_message(["gone@tccd.edu", "care@tccd.edu"]))
    assert smtp_plain.handler.messages[0].rcpt_tos == ["care@tccd.edu"]


async def test_one_of_two_recipients_deferred_is_transient(smtp_plain: SmtpServer) -> None:
    smtp_plain.handler.reject_next("452 4.2.2 Over quota", at="RCPT")
    with pytest.raises(TransientSendError):
        await _plain(smtp_plain.port).send(_message(["full@tccd.edu", "care@tccd.edu"]))


async def test_server_down_is_transient() -> None:
    with pytest.raises(TransientSendError):
        await _plain(free_port()).send(_message())


async def test_silent_server_times_out_as_transient(silent_server: int) -> None:
    with pytest.raises(TransientSendError):
        await SmtpSender(
            SmtpSettings(host="127.0.0.1", port=silent_server, tls="none", timeout=0.5)
        ).send(_message())


async def test_a_relay_slow_to_accept_the_message_is_waited_for_not_sent_again(
    smtp_plain: SmtpServer,
) -> None:
    """A relay that answered the end of the message after 12 s met the 10 s command timeout:
    the email was sent again at every retry, five copies of one acknowledgement (an outside
    probe). The mail transaction has its own, longer timeout."""
    smtp_plain.handler.data_delay_s = 1.5
    sender = SmtpSender(
        SmtpSettings(host="127.0.0.1", port=smtp_plain.port, tls="none", timeout=1, send_timeout=5)
    )
    await sender.send(_message())
    assert len(smtp_plain.handler.messages) == 1
    impatient = SmtpSender(
        SmtpSettings(host="127.0.0.1", port=smtp_plain.port, tls="none", timeout=1, send_timeout=1)
    )
    with pytest.raises(Unconfirmed, match="did not confirm"):  # the relay has it, unconfirmed
        await impatient.send(_message(key="n-2"))
    await sender.close()
    await impatient.close()


async def test_a_relay_that_does_not_offer_the_starttls_required_refuses_the_settings(
    smtp_plain: SmtpServer,
) -> None:
    """Not the message's fault: the mail waits for an operator (`SettingsRefused`) instead of
    every email being given up at its first attempt."""
    sender = SmtpSender(
        SmtpSettings(host="127.0.0.1", port=smtp_plain.port, tls="starttls", timeout=2)
    )
    with pytest.raises(SettingsRefused, match="STARTTLS"):
        await sender.send(_message())
    assert smtp_plain.handler.messages == []
    await sender.close()


async def test_hangup_is_transient(hangup_server: int) -> None:
    with pytest.raises(TransientSendError):
        await _plain(hangup_server).send(_message())


async def test_starttls_with_ca_file_and_login(
    smtp_starttls: SmtpServer, tls_files: TlsFiles
) -> None:
    sender = SmtpSender(
        SmtpSettings(
            host="127.0.0.1",
            port=smtp_starttls.port,
            tls="starttls",
            username=USER,
            password=PASSWORD,
            timeout=5,
            ca_file=str(tls_files.cert),
        )
    )
    await sender.send(_message())
    [received] = smtp_starttls.handler.messages
    assert received.login == USER


async def test_starttls_with_verification_off(smtp_starttls: SmtpServer) -> None:
    sender = SmtpSender(
        SmtpSettings(
            host="127.0.0.1",
            port=smtp_starttls.port,
            tls="starttls",
            username=USER,
            password=PASSWORD,
            timeout=5,
            validate_certs=False,
        )
    )
    await sender.send(_message())
    assert len(smtp_starttls.handler.messages) == 1


async def test_untrusted_certificate_is_refused(smtp_starttls: SmtpServer) -> None:
    sender = SmtpSender(
        SmtpSettings(
            host="127.0.0.1",
            port=smtp_starttls.port,
            tls="starttls",
            username=USER,
            password=PASSWORD,
            timeout=5,
        )
    )
    with pytest.raises(TransientSendError):  # the relay's setup is at fault, not the message
        await sender.send(_message())
    assert smtp_starttls.handler.messages == []


async def test_wrong_password_is_an_authentication_failure(
    smtp_starttls: SmtpServer, tls_files: TlsFiles
) -> None:
    """Retried while an operator fixes the password (the Deliverer), never dead-lettered."""
    sender = SmtpSender(
        SmtpSettings(
            host="127.0.0.1",
            port=smtp_starttls.port,
            tls="starttls",
            username=USER,
            password="wrong",
            timeout=5,
            ca_file=str(tls_files.cert),
        )
    )
    with pytest.raises(AuthenticationFailed) as info:
        await sender.send(_message())
    assert info.value.code == 535 and "wrong" not in str(info.value)
    assert smtp_starttls.handler.messages == []


async def test_missing_login_is_an_authentication_failure(
    smtp_starttls: SmtpServer, tls_files: TlsFiles
) -> None:
    sender = SmtpSender(
        SmtpSettings(
            host="127.0.0.1",
            port=smtp_starttls.port,
            tls="starttls",
            timeout=5,
            ca_file=str(tls_files.cert),
        )
    )
    with pytest.raises(AuthenticationFailed) as info:
        await sender.send(_message())
    assert info.value.code == 530


async def test_implicit_tls_with_login(smtp_implicit_tls: SmtpServer, tls_files: TlsFiles) -> None:
    sender = SmtpSender(
        SmtpSettings(
            host="127.0.0.1",
            port=smtp_implicit_tls.port,
            tls="tls",
            username=USER,
            password=PASSWORD,
            timeout=5,
            ca_file=str(tls_files.cert),
        )
    )
    await sender.send(_message())
    assert smtp_implicit_tls.handler.messages[0].login == USER


async def test_a_non_ascii_address_goes_with_smtputf8(smtp_plain: SmtpServer) -> None:
    server = smtp_plain  # aiosmtpd offers SMTPUTF8 unless told not to
    await _plain(server.port).send(_message("josé@tccd.edu"))
    [received] = server.handler.messages
    assert received.rcpt_tos == ["josé@tccd.edu"] and "SMTPUTF8" in received.mail_options
    assert email.message_from_bytes(received.content, policy=email.policy.default)["To"] == (
        "josé@tccd.edu"
    )


async def test_a_non_ascii_address_is_permanent_where_smtputf8_is_not_offered(
    start_smtp: Callable[..., SmtpServer],
) -> None:
    server = start_smtp(enable_SMTPUTF8=False)
    with pytest.raises(PermanentSendError, match="SMTPUTF8"):
        await _plain(server.port).send(_message("josé@tccd.edu"))
    assert server.handler.messages == []
