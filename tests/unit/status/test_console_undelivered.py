"""What never got through, said where the desk looks (HTTP, no browser): a staff reply the
notifier gave up on, the carrier did not deliver or that bounced flags its queue row "Reply
not delivered" until someone replies again; a CARE Team alert refused for good flags the
crisis "CARE Team not alerted", and the conversation says to file the report by hand, as it
does while the alert is still not out minutes after it was asked for."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import console_scenes as scene
import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from status_fakes import T0, Clock, bearer

from services.status.handlers import Assigning, apply, apply_batch
from services.status.models import Conversation
from services.status.sweep import flag_unsent_care_alerts
from shared.events import (
    Channel,
    DeliveryState,
    NotificationDelivered,
    NotificationKind,
    NotificationRequested,
    SmsStatusReported,
    StaffReplyContext,
)

CARE_REPORT = "https://cm.maxient.com/reportingform.php?TarrantCCD"


async def sign_in(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/dashboard/login", data={"staff_id": "mgarcia", "token": "dev-mgarcia-token"}
    )
    assert answer.status_code == 303


async def api_row(client: httpx.AsyncClient, cid: str) -> dict[str, Any]:
    answer = await client.get(f"/conversations/{cid}", headers=bearer("mgarcia"))
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def queue_row(client: httpx.AsyncClient, cid: str) -> str:
    """The queue row's HTML in the console."""
    page = (await client.get("/dashboard/fragments/queue")).text
    start = page.index(f'data-conversation-id="{cid}"')
    return page[start : page.index("</tr>", start)]


def reply(
    cid: str, n: int, *, minutes: float, channel: Channel = Channel.SMS
) -> NotificationRequested:
    context = StaffReplyContext(reply_id=f"reply-{cid}-{n}", text="On it.", staff_id="mgarcia")
    return NotificationRequested(
        idempotency_key=f"reply-{cid}-{n}",
        kind=NotificationKind.STAFF_REPLY,
        channel=channel,
        recipient="+18175550142",
        conversation_id=cid,
        requested_at=T0 + timedelta(minutes=minutes),
        context=context.model_dump(),
    )


def outcome(
    asked: NotificationRequested, state: DeliveryState, *, message_id: str | None = None
) -> NotificationDelivered:
    return NotificationDelivered(
        idempotency_key=asked.idempotency_key,
        conversation_id=asked.conversation_id,
        kind=asked.kind,
        channel=asked.channel,
        state=state,
        reason="rejected 554" if state is DeliveryState.FAILED else None,
        text=None if state is DeliveryState.FAILED else "On it.",
        message_id=message_id,
        at=asked.requested_at + timedelta(seconds=2),
    )


async def given(sessions: async_sessionmaker[AsyncSession], *events: Any) -> None:
    await scene._apply(sessions, *events)


async def test_a_reply_that_never_reached_the_patron_flags_its_row_until_someone_replies(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    """The row of a patron whose answer Twilio refused went back to the waiting time with no
    word of why: the librarian who had answered read it as a new message."""
    await scene.reply_refused(sessions)
    await sign_in(client)
    row = await api_row(client, scene.SMS)
    assert (row["reply_failed"], row["answered"], row["waiting"]) == (True, False, "12 min")
    html = await queue_row(client, scene.SMS)
    assert "Reply not delivered" in html and "flag-unsent" in html
    await given(sessions, reply(scene.SMS, 2, minutes=-1))  # answered again, by another way
    row = await api_row(client, scene.SMS)
    assert (row["reply_failed"], row["answered"]) == (False, True)
    assert "Reply not delivered" not in await queue_row(client, scene.SMS)


async def test_an_older_reply_failing_after_a_newer_one_was_written_flags_nothing(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await scene.sms(sessions)
    first, second = reply(scene.SMS, 1, minutes=-10), reply(scene.SMS, 2, minutes=-5)
    await given(sessions, first, second, outcome(second, DeliveryState.SENT))
    await given(sessions, outcome(first, DeliveryState.FAILED))
    row = await api_row(client, scene.SMS)
    assert (row["reply_failed"], row["answered"]) == (False, True)


async def test_a_reply_the_carrier_did_not_deliver_flags_its_row(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await scene.sms(sessions)
    asked = reply(scene.SMS, 1, minutes=-10)
    sid = "SM" + "c" * 32
    await given(sessions, asked, outcome(asked, DeliveryState.SENT, message_id=sid))
    assert (await api_row(client, scene.SMS))["reply_failed"] is False
    report = SmsStatusReported(
        provider_id=sid,
        status="undelivered",
        error_code=30003,
        reported_at=T0 - timedelta(minutes=9),
    )
    await given(sessions, report)
    row = await api_row(client, scene.SMS)
    assert (row["reply_failed"], row["answered"]) == (True, False)


async def test_a_care_team_alert_refused_for_good_is_said_on_the_row_and_in_the_conversation(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A CARE Team alert the relay refused (a 5xx is final in SMTP) was one timeline line
    reading "CARE Team alerted · Not delivered", while the crisis sat at the top of the queue as
    if the team knew."""
    await scene.care_alert_not_out(sessions, reason="rejected 554 5.7.1")
    await sign_in(client)
    assert (await api_row(client, scene.CRISIS))["care_alert_failed"] is True
    assert "CARE Team not alerted" in await queue_row(client, scene.CRISIS)
    page = (await client.get(f"/dashboard/c/{scene.CRISIS}")).text
    notice = page[page.index('class="banner banner-crisis banner-care-alert"') :]
    notice = notice[: notice.index("</section>")]
    assert "The CARE Team was not alerted" in notice
    assert "refused by the receiving mail system" in notice
    assert f'href="{CARE_REPORT}"' in notice
    line = page[page.index(f'data-line-id="{scene.CARE_ALERT_KEY}"') :]
    line = line[: line.index("</li>")]
    assert "The CARE Team&#39;s alert email" in line and "CARE Team alerted" not in line
    assert "Not delivered: refused by the receiving mail system" in line


async def test_a_care_team_alert_still_not_out_minutes_later_is_said_in_the_conversation(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    """The relay down: the notifier keeps trying the alert for hours and says nothing until it
    gives up. Three minutes on, the conversation says to file the report by hand."""
    await scene.care_alert_not_out(sessions)
    await sign_in(client)
    clock.now = T0 - timedelta(minutes=4)  # asked for 1.9 minutes ago: nothing said yet
    page = (await client.get(f"/dashboard/c/{scene.CRISIS}")).text
    assert "banner-care-alert" not in page
    # but its line does not say the team was alerted before the relay took the email (an
    # outside review read "CARE Team alerted" all through a relay outage)
    assert "The CARE Team&#39;s alert email is being sent" in page
    assert "CARE Team alerted" not in page
    clock.now = T0  # 5.9 minutes
    page = (await client.get(f"/dashboard/c/{scene.CRISIS}")).text
    notice = page[page.index('class="banner banner-crisis banner-care-alert"') :]
    assert "The CARE Team&#39;s alert has not gone out yet" in notice[: notice.index("</section>")]
    assert f'href="{CARE_REPORT}"' in notice[: notice.index("</section>")]
    # the alert is not refused (still tried): the row flags nothing yet
    assert (await api_row(client, scene.CRISIS))["care_alert_failed"] is False
    # it goes out: nothing said any more
    await given(sessions, scene.care_alert_outcome(DeliveryState.SENT))
    page = (await client.get(f"/dashboard/c/{scene.CRISIS}")).text
    assert "banner-care-alert" not in page
    assert "CARE Team alerted" in page


async def test_a_bounced_care_team_alert_flags_the_crisis(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await scene.care_alert_bounced(sessions)
    await sign_in(client)
    assert (await api_row(client, scene.CRISIS))["care_alert_failed"] is True
    page = (await client.get(f"/dashboard/c/{scene.CRISIS}")).text
    notice = page[page.index('class="banner banner-crisis banner-care-alert"') :]
    assert "the address does not exist" in notice[: notice.index("</section>")]


async def test_a_crisis_whose_alert_went_out_says_nothing_of_it(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await scene.crisis(sessions)
    alert = NotificationRequested(
        idempotency_key=scene.CARE_ALERT_KEY,
        kind=NotificationKind.CRISIS_ALERT,
        channel=Channel.EMAIL,
        recipient="care.team@tccd.edu",
        conversation_id=scene.CRISIS,
        requested_at=T0 - timedelta(minutes=5.9),
    )
    async with sessions() as session:
        for n, event in enumerate([alert, outcome(alert, DeliveryState.SENT)]):
            await apply(session, event_id=f"sent-{n}", data=event, assigning=Assigning())
        await session.commit()
    await sign_in(client)
    assert (await api_row(client, scene.CRISIS))["care_alert_failed"] is False
    page = (await client.get(f"/dashboard/c/{scene.CRISIS}")).text
    assert "banner-care-alert" not in page and "CARE Team alerted" in page
    assert "CARE Team not alerted" not in await queue_row(client, scene.CRISIS)


async def sweep(sessions: async_sessionmaker[AsyncSession], *, at: timedelta) -> int:
    async with sessions() as session:
        count = await flag_unsent_care_alerts(session=session, now=T0 + at)
        await session.commit()
    return count


def alert_outcome(state: DeliveryState) -> NotificationDelivered:
    failed = state is DeliveryState.FAILED
    return scene.care_alert_outcome(state, reason="rejected 554" if failed else None)


async def test_a_care_team_alert_still_not_out_minutes_later_flags_the_crisis_row(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Only the open conversation said the alert had not gone out: a librarian not in it saw
    the crisis's row as handled. The sweep flags the row three minutes on, the alert's going
    out clears it."""
    await scene.care_alert_not_out(sessions)  # asked for at T0 - 5.9 min
    await sign_in(client)
    assert await sweep(sessions, at=timedelta(minutes=-3)) == 0  # 2.9 minutes: not yet
    assert (await api_row(client, scene.CRISIS))["care_alert_unsent"] is False
    assert await sweep(sessions, at=timedelta(minutes=-2.8)) == 1  # 3.1 minutes
    assert (await api_row(client, scene.CRISIS))["care_alert_unsent"] is True
    html = await queue_row(client, scene.CRISIS)
    assert "CARE Team alert not sent yet" in html and "file the CARE Team incident report" in html
    assert await sweep(sessions, at=timedelta(0)) == 0  # flagged once
    await given(sessions, alert_outcome(DeliveryState.SENT))
    assert (await api_row(client, scene.CRISIS))["care_alert_unsent"] is False
    assert "CARE Team alert not sent yet" not in await queue_row(client, scene.CRISIS)
    assert await sweep(sessions, at=timedelta(minutes=1)) == 0  # nothing to flag again


async def test_a_care_team_alert_refused_after_it_was_flagged_late_says_not_alerted(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await scene.care_alert_not_out(sessions)
    await sweep(sessions, at=timedelta(0))
    await given(sessions, alert_outcome(DeliveryState.FAILED))
    row = await api_row(client, scene.CRISIS)
    assert (row["care_alert_unsent"], row["care_alert_failed"]) == (False, True)


async def test_a_flag_left_by_an_outcome_applied_meanwhile_is_cleared_by_the_next_sweep(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The outcome applied between the sweep's read and its write (another replica's consumer)
    does not clear a flag it did not see: the next sweep does."""
    await scene.care_alert_not_out(sessions)
    await given(sessions, alert_outcome(DeliveryState.SENT))
    async with sessions() as session:  # the flag as a sweep that read before the outcome wrote it
        conv = await session.get(Conversation, scene.CRISIS)
        assert conv is not None
        conv.care_alert_unsent = scene.CARE_ALERT_KEY
        await session.commit()
    assert (await api_row(client, scene.CRISIS))["care_alert_unsent"] is True
    assert await sweep(sessions, at=timedelta(0)) == 1
    assert (await api_row(client, scene.CRISIS))["care_alert_unsent"] is False


async def test_a_refused_care_team_alert_flags_a_crisis_whose_conversation_came_after_it(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The alert's outcome applied before the conversation existed (events of several topics
    in any order: the notifier's outcome in the same poll batch as, or a batch before, the
    patron's message and the router's decision) had found no row to flag, and the crisis sat
    at the top of the queue as if the CARE Team knew (an outside probe, one crisis of 8)."""
    at = T0 - timedelta(minutes=5.9)
    refused = scene.care_alert_outcome(DeliveryState.FAILED, "rejected 554 5.7.1")
    arrived = scene.message(
        scene.CRISIS,
        Channel.CHAT,
        "i dont want to be here anymore. i have been saving up pills",
        minutes_ago=6,
        contact="chat-visitor-77",
    )
    decided = scene.routed(scene.CRISIS, Channel.CHAT, minutes_ago=6, crisis=True)
    async with sessions() as session:  # one poll batch, the outcome first
        items = [("o-1", refused), ("a-1", scene.care_alert_asked(at)), ("m-1", arrived)]
        await apply_batch(session, [*items, ("r-1", decided)], assigning=Assigning())
        await session.commit()
    assert (await api_row(client, scene.CRISIS))["care_alert_failed"] is True
    # in another batch, before: the same
    other = scene.CRISIS + "-2"
    async with sessions() as session:
        await apply_batch(session, [("o-2", moved(refused, other))], assigning=Assigning())
        await session.commit()
    assert await api_status(client, other) == 404
    async with sessions() as session:
        items = [("m-2", moved(arrived, other)), ("r-2", moved(decided, other))]
        await apply_batch(session, items, assigning=Assigning())
        await session.commit()
    assert (await api_row(client, other))["care_alert_failed"] is True
    # an alert that went out is no reason for the flag
    sent = scene.CRISIS + "-3"
    ok = moved(refused, sent).model_copy(update={"state": DeliveryState.SENT, "reason": None})
    async with sessions() as session:
        items = [("o-3", ok), ("m-3", moved(arrived, sent)), ("r-3", moved(decided, sent))]
        await apply_batch(session, items, assigning=Assigning())
        await session.commit()
    assert (await api_row(client, sent))["care_alert_failed"] is False


def moved(event: Any, cid: str) -> Any:
    """The same event in another conversation, under ids of its own."""
    ids = {"conversation_id": cid}
    for field in ("interaction_id", "decision_id", "idempotency_key"):
        if hasattr(event, field):
            ids[field] = f"{getattr(event, field)}-{cid}"
    return event.model_copy(update=ids)


async def api_status(client: httpx.AsyncClient, cid: str) -> int:
    return (await client.get(f"/conversations/{cid}", headers=bearer("mgarcia"))).status_code


async def test_a_reply_into_a_chat_that_had_ended_says_so_in_words(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The chat platform answers 410 for a chat that is over: the line says the patron did
    not see the reply, not "rejected 410", and the row flags it."""
    await scene.chats(sessions)
    asked = reply(scene.CHAT, 1, minutes=-2, channel=Channel.CHAT)
    refused = outcome(asked, DeliveryState.FAILED).model_copy(update={"reason": "rejected 410"})
    await given(sessions, asked, refused)
    await sign_in(client)
    assert (await api_row(client, scene.CHAT))["reply_failed"] is True
    page = (await client.get(f"/dashboard/c/{scene.CHAT}")).text
    line = page[page.index(f'data-line-id="{asked.idempotency_key}"') :]
    line = line[: line.index("</li>")]
    assert "Not delivered: the chat had ended, so the patron did not see it" in line
    assert "rejected 410" not in page
