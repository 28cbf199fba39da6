"""The Deliverer through fakes of its ports (senders, publisher, clock) over a real SQLite
ledger: a reply goes out once, its outcome is announced once, an outcome lost in a crash is
announced after its lease, and a failure is announced with a short reason."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from deliverer_fakes import LEASE_S, Clock, Crash, FakeEmail, FakePublisher, FakeTexts, drain
from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from services.notifier import ledger_outcomes, ledger_work, tables
from services.notifier.delivery import Deliverer
from services.notifier.errors import (
    PermanentSendError,
    SettingsRefused,
    TransientSendError,
    Unconfirmed,
)
from services.notifier.messages import make_message_id
from services.notifier.outcomes import announcement_id
from services.notifier.outgoing import Adapters
from services.notifier.settings import NotifierSettings
from shared.db import create_engine
from shared.events import (
    Channel,
    DeadLetter,
    DeliveryState,
    NotificationDelivered,
    NotificationKind,
    NotificationRequested,
    Priority,
    StaffReplyContext,
)
from shared.syncdb import UnitRunner
from shared.topics import DELIVERIES, NOTIFICATIONS

PATRON_ID = "CAF=patron-1@mail.gmail.com"


@dataclass
class Desk:
    """A Deliverer and its fakes; `restart()` is a new process on the same ledger."""

    settings: NotifierSettings
    url: str
    clock: Clock = field(default_factory=Clock)
    email: FakeEmail = field(default_factory=FakeEmail)
    sms: FakeTexts = field(default_factory=FakeTexts)
    chat: FakeTexts = field(default_factory=FakeTexts)
    publisher: FakePublisher = field(default_factory=FakePublisher)
    deliverer: Deliverer = field(init=False)

    def __post_init__(self) -> None:
        self.deliverer = self._start()

    def _start(self) -> Deliverer:
        return Deliverer(
            settings=self.settings,
            adapters=Adapters(email=self.email, sms=self.sms, chat=self.chat),
            publisher=self.publisher,
            db=UnitRunner(create_engine(self.url), name="test-ledger"),
            clock=self.clock,
        )

    def restart(self) -> Deliverer:
        self.publisher = FakePublisher()
        self.deliverer = self._start()
        return self.deliverer

    async def drain(self, channel: Channel = Channel.EMAIL) -> None:
        """Deliver everything due on the lane, one claim after another."""
        await drain(self.deliverer, channel)

    def outcomes(self) -> list[NotificationDelivered]:
        events = self.publisher.on(DELIVERIES.name)
        found = [e for e in events if isinstance(e, NotificationDelivered)]
        assert len(found) == len(events)
        return found


@pytest.fixture
async def desk(tmp_path: Path, ledger_url: str) -> AsyncIterator[Desk]:
    settings = NotifierSettings(
        run_dir=tmp_path,
        lease_s=LEASE_S,
        max_attempts=2,
        retry_for_h=0,
        backoff_base_s=1,
        backoff_max_s=5,
        message_id_domain="refdesk.tccd.edu",
    )
    made = Desk(settings, ledger_url)
    yield made
    await made.deliverer.close()


def reply(channel: Channel = Channel.EMAIL, **context: Any) -> NotificationRequested:
    values: dict[str, Any] = {
        "reply_id": "r-1",
        "staff_id": "jdoe",
        "text": "Hi Ana, the book is on hold for you at NW until Friday.",
        "subject": "Re: Lost library book",
        "in_reply_to": PATRON_ID,
        "references": [PATRON_ID],
    } | context
    return NotificationRequested(
        idempotency_key=f"reply-{channel.value}-1",
        kind=NotificationKind.STAFF_REPLY,
        channel=channel,
        recipient={
            Channel.EMAIL: "ana.gomez@my.tccd.edu",
            Channel.SMS: "+18175550123",
            Channel.CHAT: "chat-77",
        }[channel],
        conversation_id="conv-1",
        context=StaffReplyContext.model_validate(values).model_dump(mode="json"),
        requested_at=datetime(2026, 12, 1, 14, 0, tzinfo=UTC),
    )


async def test_a_reply_is_sent_once_under_a_duplicated_command(desk: Desk) -> None:
    cmd = reply()
    assert await desk.deliverer.record([cmd, cmd]) == {Channel.EMAIL}
    assert await desk.deliverer.record([cmd]) == set()  # a second tab, a retry: same key
    await desk.drain()
    await desk.drain()
    [mail] = desk.email.sent
    assert mail["Subject"] == "Re: Lost library book"
    assert mail["In-Reply-To"] == f"<{PATRON_ID}>" and mail["References"] == f"<{PATRON_ID}>"
    [outcome] = desk.outcomes()
    assert outcome.state is DeliveryState.SENT and outcome.reason is None
    assert outcome.idempotency_key == cmd.idempotency_key and outcome.attempts == 1
    assert outcome.text is not None and outcome.text.startswith(cmd.context["text"])
    assert outcome.subject == "Re: Lost library book"
    assert outcome.message_id == make_message_id(cmd.idempotency_key, "refdesk.tccd.edu")
    assert outcome.at == desk.clock.now
    [(_, _, key, event_id)] = desk.publisher.published
    assert key == "conv-1" and event_id == announcement_id(cmd.idempotency_key)


async def test_an_announced_outcome_is_never_announced_again(desk: Desk) -> None:
    await desk.deliverer.record([reply()])
    await desk.drain()
    desk.clock.advance(LEASE_S * 3)
    assert await desk.deliverer.announcer.announce_lost(Channel.EMAIL) == 0
    assert len(desk.outcomes()) == 1


async def _announced(desk: Desk, key: str) -> bool:
    query = select(tables.ledger.c.outcome_published).where(tables.ledger.c.idempotency_key == key)
    return bool(await desk.deliverer.db(lambda conn: conn.scalar(query)))


async def test_the_announced_flag_rides_on_the_next_unit_of_ledger_work(desk: Desk) -> None:
    first = reply()
    await desk.deliverer.record([first])
    await desk.drain()
    assert len(desk.outcomes()) == 1 and not await _announced(desk, first.idempotency_key)
    await desk.deliverer.record([reply(Channel.CHAT)])  # the next unit writes it
    assert await _announced(desk, first.idempotency_key)


async def test_a_flag_lost_in_a_crash_announces_the_same_outcome_again(desk: Desk) -> None:
    cmd = reply()
    await desk.deliverer.record([cmd])
    await desk.drain()  # sent and announced; the process dies before its next unit of work
    [(_, _, _, event_id)] = desk.publisher.published
    restarted = desk.restart()
    desk.clock.advance(LEASE_S + 1)
    assert await restarted.announcer.announce_lost(Channel.EMAIL) == 1
    # its flag went with this unit
    assert await restarted.announcer.announce_lost(Channel.EMAIL) == 0
    [again] = desk.outcomes()
    assert desk.publisher.published[0][3] == event_id == announcement_id(cmd.idempotency_key)
    assert again.state is DeliveryState.SENT and len(desk.email.sent) == 1


async def test_an_outcome_lost_in_a_crash_is_announced_after_its_lease(desk: Desk) -> None:
    cmd = reply()
    await desk.deliverer.record([cmd])
    desk.publisher.dies_on.add(DELIVERIES.name)  # sent and recorded; dies while announcing
    with pytest.raises(Crash):
        await desk.drain()
    await desk.deliverer.close()
    restarted = desk.restart()
    # the dead worker's lease holds
    assert await restarted.announcer.announce_lost(Channel.EMAIL) == 0
    desk.clock.advance(LEASE_S + 1)
    assert await restarted.announcer.announce_lost(Channel.EMAIL) == 1
    assert await restarted.announcer.announce_lost(Channel.EMAIL) == 0
    await desk.drain()
    [outcome] = desk.outcomes()
    assert outcome.state is DeliveryState.SENT and outcome.subject == "Re: Lost library book"
    assert outcome.at == datetime(2026, 12, 1, 14, 0, tzinfo=UTC)  # when it was sent
    assert desk.publisher.published[0][3] == announcement_id(cmd.idempotency_key)
    assert len(desk.email.sent) == 1  # the reply itself was not sent again


async def test_a_broker_outage_at_announce_time_delays_the_outcome(desk: Desk) -> None:
    await desk.deliverer.record([reply()])
    desk.publisher.down.add(DELIVERIES.name)
    await desk.drain()  # the delivery itself completes
    assert desk.outcomes() == []
    desk.publisher.down.clear()
    desk.clock.advance(LEASE_S + 1)
    assert await desk.deliverer.announcer.announce_lost(Channel.EMAIL) == 1
    assert [o.state for o in desk.outcomes()] == [DeliveryState.SENT]


async def test_a_rejected_reply_is_announced_failed_with_a_short_reason(desk: Desk) -> None:
    cmd = reply()
    desk.email.failures.append(PermanentSendError("smtp SMTPDataError", code=550))
    await desk.deliverer.record([cmd])
    await desk.drain()
    [outcome] = desk.outcomes()
    assert outcome.state is DeliveryState.FAILED and outcome.reason == "rejected 550"
    assert outcome.text is not None and "the book is on hold" in outcome.text  # what failed
    [letter] = desk.publisher.on(NOTIFICATIONS.dlq_name)
    assert isinstance(letter, DeadLetter) and "550" in letter.reason
    assert desk.email.sent == []


async def test_a_crisis_alert_the_relay_refused_counts_as_a_crisis_failure(desk: Desk) -> None:
    """A CARE Team alert refused with a 5xx was dead-lettered without counting in
    refdesk_crisis_notification_failures_total, so RefdeskCrisisNotificationFailing never paged
    for it (only a failure to be retried counted)."""
    alert = NotificationRequested(
        idempotency_key="care-alert-1",
        kind=NotificationKind.CRISIS_ALERT,
        channel=Channel.EMAIL,
        recipient="care.team@tccd.edu",
        conversation_id="conv-1",
        priority=Priority.URGENT,
        context={
            "conversation_ref": "conv-1",
            "channel": "chat",
            "care_report_url": "https://cm.maxient.com/reportingform.php?TarrantCCD",
        },
        requested_at=datetime(2026, 12, 1, 14, 0, tzinfo=UTC),
    )
    before = REGISTRY.get_sample_value("refdesk_crisis_notification_failures_total") or 0.0
    desk.email.failures.append(PermanentSendError("smtp SMTPDataError", code=554))
    await desk.deliverer.record([alert])
    await desk.drain()
    [outcome] = desk.outcomes()
    assert (outcome.state, outcome.reason) == (DeliveryState.FAILED, "rejected 554")
    after = REGISTRY.get_sample_value("refdesk_crisis_notification_failures_total")
    assert after == before + 1


async def test_retries_exhausted_is_a_failed_outcome(desk: Desk) -> None:
    cmd = reply(Channel.SMS)
    desk.sms.failures.extend([TransientSendError("twilio http 503", code=503)] * 2)
    await desk.deliverer.record([cmd])
    await desk.drain(Channel.SMS)
    assert desk.outcomes() == []  # one failure: a retry is scheduled, nothing is final
    desk.clock.advance(desk.settings.backoff_max_s + 1)
    await desk.drain(Channel.SMS)
    [outcome] = desk.outcomes()
    assert outcome.state is DeliveryState.FAILED
    assert outcome.reason == "retries exhausted 503" and outcome.attempts == 2
    assert "+1817" not in (outcome.reason or "")


async def test_an_invalid_reply_fails_without_sending(desk: Desk) -> None:
    cmd = reply().model_copy(update={"context": {"reply_id": "r-1", "staff_id": "jdoe"}})
    await desk.deliverer.record([cmd])
    await desk.drain()
    [outcome] = desk.outcomes()
    assert outcome.state is DeliveryState.FAILED and outcome.reason == "invalid context"
    assert outcome.text is None and desk.email.sent == []


@pytest.mark.parametrize(
    ("text", "segments"), [("Your book is ready at NW.", 1), ("Su libro está listo " * 4, 2)]
)
async def test_an_sms_reply_is_the_text_with_its_segments(
    desk: Desk, text: str, segments: int
) -> None:
    cmd = reply(Channel.SMS, text=text)
    await desk.deliverer.record([cmd])
    await desk.drain(Channel.SMS)
    [(to, body, key)] = desk.sms.sent
    assert (to, body, key) == ("+18175550123", text.strip(), cmd.idempotency_key)
    [outcome] = desk.outcomes()
    assert outcome.segments == segments and outcome.text == text.strip()
    assert outcome.message_id is not None and outcome.message_id.startswith("SM")
    assert outcome.subject is None


async def test_a_chat_reply_goes_to_the_chat_adapter(desk: Desk) -> None:
    cmd = reply(Channel.CHAT)
    await desk.deliverer.record([cmd])
    await desk.drain(Channel.CHAT)
    assert desk.chat.sent == [("chat-77", cmd.context["text"], cmd.idempotency_key)]
    assert [o.state for o in desk.outcomes()] == [DeliveryState.SENT]


def lost_connection(*, invalidated: bool) -> DBAPIError:
    return DBAPIError(
        "UPDATE send_ledger",
        {},
        Exception("server closed the connection"),
        connection_invalidated=invalidated,
    )


async def test_outcomes_whose_connection_was_lost_are_written_on_a_new_one(
    desk: Desk, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL restarted between the relay's answer and the outcome's write: the reply went
    out, so the write is tried again instead of leaving the row to be sent again."""
    apply, failures = ledger_outcomes.apply_outcomes, [lost_connection(invalidated=True)]

    def flaky(conn: Any, outcomes: Any, **kw: Any) -> None:
        if failures:
            raise failures.pop()
        apply(conn, outcomes, **kw)

    monkeypatch.setattr(ledger_outcomes, "apply_outcomes", flaky)
    monkeypatch.setattr(ledger_work, "OUTCOME_RETRY_PAUSE_S", 0.0)
    cmd = reply()
    await desk.deliverer.record([cmd])
    with caplog.at_level(logging.WARNING, logger="services.notifier.ledger_work"):
        await desk.drain()
    assert "the ledger's connection was lost writing outcomes; trying again" in caplog.text
    [outcome] = desk.outcomes()
    assert outcome.state is DeliveryState.SENT
    desk.clock.advance(LEASE_S * 3)
    await desk.drain()
    assert await desk.deliverer.announcer.announce_lost(Channel.EMAIL) == 0
    assert len(desk.email.sent) == 1, "the reply was sent again"


async def test_any_other_database_error_writing_outcomes_is_not_retried(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def refused(conn: Any, outcomes: Any, **kw: Any) -> None:
        calls.append(len(outcomes))
        raise lost_connection(invalidated=False)

    monkeypatch.setattr(ledger_outcomes, "apply_outcomes", refused)
    await desk.deliverer.record([reply()])
    with pytest.raises(DBAPIError):
        await desk.drain()
    assert calls == [1]


async def test_a_relay_outage_past_the_attempts_waits_for_the_relay_not_dead_letters(
    tmp_path: Path, ledger_url: str
) -> None:
    """A relay down for more than about six minutes dead-lettered every email of the outage,
    staff replies included, and none went out when it came back (an outside probe). Past its
    attempts a notification is retried every patient interval until REFDESK_RETRY_FOR_H has
    passed since it was asked for; then it fails as before."""
    settings = NotifierSettings(
        run_dir=tmp_path,
        lease_s=LEASE_S,
        max_attempts=2,
        retry_for_h=2,
        patient_backoff_s=300,
        backoff_base_s=1,
        backoff_max_s=5,
    )
    desk = Desk(settings, ledger_url)
    try:
        cmd = reply()
        desk.clock.now = cmd.requested_at
        desk.email.failures.extend([TransientSendError("smtp connection failed")] * 4)
        await desk.deliverer.record([cmd])
        for wait in (0, settings.backoff_max_s + 1, 301, 301):  # attempts 1-4: all refused
            desk.clock.advance(wait)
            await desk.drain()
            assert desk.outcomes() == [] and desk.email.sent == []
        desk.clock.advance(301)  # the relay is back
        await desk.drain()
        [outcome] = desk.outcomes()
        assert outcome.state is DeliveryState.SENT and outcome.attempts == 5
        assert len(desk.email.sent) == 1

        # a notification still failing REFDESK_RETRY_FOR_H after it was asked for is given up
        late = reply().model_copy(update={"idempotency_key": "reply-email-2"})
        late = late.model_copy(update={"requested_at": desk.clock.now})
        desk.email.failures.extend([TransientSendError("smtp connection failed")] * 100)
        await desk.deliverer.record([late])
        await desk.drain()
        desk.clock.advance(settings.backoff_max_s + 1)
        await desk.drain()  # attempts used up, not yet two hours: waits
        assert len(desk.outcomes()) == 1
        desk.clock.advance(2 * 3600)
        await desk.drain()
        failed = desk.outcomes()[-1]
        assert failed.idempotency_key == "reply-email-2"
        assert failed.state is DeliveryState.FAILED and failed.reason is not None
        assert failed.reason.startswith("retries exhausted")
    finally:
        await desk.deliverer.close()


async def test_an_email_the_relay_takes_without_confirming_is_resent_slowly_and_a_few_times(
    desk: Desk,
) -> None:
    """A relay that answered the end of every message after 45 s (its timeout 40 s) got a new
    copy at every retry, every 40 s and with no end: one staff reply reached the patron six
    times (an outside probe). Each resend is another copy in the patron's inbox: it waits at
    least REFDESK_SMTP_UNCONFIRMED_WAIT_S, and after REFDESK_SMTP_UNCONFIRMED_COPIES the email is
    given up, said as possibly arrived."""
    cmd = reply()
    lost = [Unconfirmed("the relay did not confirm the message: SMTPReadTimeoutError")]
    desk.email.failures.extend(lost * desk.settings.smtp_unconfirmed_copies)
    await desk.deliverer.record([cmd])
    for copy in range(1, desk.settings.smtp_unconfirmed_copies):
        await desk.drain()
        assert desk.outcomes() == []  # not final: it may come back confirmed
        desk.clock.advance(desk.settings.backoff_max_s + 1)  # a normal retry's wait: not yet
        await desk.drain()
        assert len(desk.email.failures) == desk.settings.smtp_unconfirmed_copies - copy
        desk.clock.advance(desk.settings.smtp_unconfirmed_wait_s * 1.2)
    await desk.drain()
    [outcome] = desk.outcomes()
    assert (outcome.state, outcome.reason) == (DeliveryState.FAILED, "unconfirmed")
    assert desk.email.failures == [] and desk.email.sent == []


async def test_a_confirmed_resend_after_an_unconfirmed_copy_is_sent(desk: Desk) -> None:
    cmd = reply()
    desk.email.failures.append(Unconfirmed("the relay did not confirm the message: timeout"))
    await desk.deliverer.record([cmd])
    await desk.drain()
    desk.clock.advance(desk.settings.smtp_unconfirmed_wait_s * 1.2)
    await desk.drain()
    [outcome] = desk.outcomes()
    assert outcome.state is DeliveryState.SENT and len(desk.email.sent) == 1


async def test_a_relay_without_the_starttls_the_settings_require_keeps_the_mail_waiting(
    desk: Desk,
) -> None:
    """A relay that stopped offering STARTTLS (one that could not load its certificate) had
    every email, CARE Team alerts included, given up on at its first attempt: like refused
    credentials, it is an operator's fix, and the mail waits for it."""
    cmd = reply()
    desk.email.failures.extend(
        [SettingsRefused("smtp settings do not match the server: no STARTTLS")] * 3
    )
    await desk.deliverer.record([cmd])
    for _ in range(3):
        await desk.drain()
        desk.clock.advance(desk.settings.backoff_max_s + 1)
    assert desk.outcomes() == [] and desk.publisher.on(NOTIFICATIONS.dlq_name) == []
    await desk.drain()
    [outcome] = desk.outcomes()
    assert outcome.state is DeliveryState.SENT
