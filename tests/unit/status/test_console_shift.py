"""A shift at the desk, played in Chromium against the status app (in-process, fake publisher):
sign in; the overnight email ticket is at the top; read it and reply with edited text; an SMS
arrives without a reload and is answered within the composer's segment count, then closed
with the survey; a chat goes to NW Circulation with its warm hand-off; a crisis blocks every
other action until acknowledged; axe-core finds no serious or critical violation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import console_scenes as scene
import pytest
from console_browser import browser_page, needs_browser, serious_violations, serve, shoot, sign_in
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from status_fakes import Clock, FakePublisher

from services.notifier.segments import sms_segments
from services.status.resources import Resources
from shared.events import (
    Channel,
    ConversationClosed,
    CrisisAcknowledged,
    NotificationKind,
    NotificationRequested,
    RoutingDecided,
)
from shared.topics import DESK, INTERACTIONS, NOTIFICATIONS, ROUTING

pytestmark = [*needs_browser, pytest.mark.timeout(240)]

EMAIL_REPLY = "Hi Alex, yes: a laptop loan renews once online. Sign in to your library account"
EMAIL_EDIT = " and choose Renew. Enjoy spring break!"
# a curly apostrophe: UCS-2, 70 characters a segment
SMS_REPLY = "We\u2019re open until 9 PM tonight. Printing is on the 2nd floor, 10 cents a page."


def commands(publisher: FakePublisher, kind: NotificationKind) -> list[NotificationRequested]:
    return [
        d
        for d in publisher.on(NOTIFICATIONS.name)
        if isinstance(d, NotificationRequested) and d.kind is kind
    ]


async def row(page: Any, cid: str) -> Any:
    return page.locator(f'#queue tbody tr[data-conversation-id="{cid}"]')


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_shift_at_the_desk(
    resources: Resources,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
    clock: Clock,
    tmp_path: Path,
) -> None:
    from playwright.async_api import expect

    await scene.chats(sessions)
    await scene.overnight_email(sessions)
    violations: dict[str, list[dict[str, Any]]] = {}

    async def check(name: str) -> None:
        await shoot(page, tmp_path, f"shift-{name}")
        violations[name] = await serious_violations(page)

    async with serve(resources) as base, browser_page() as page:
        # sign in at the start of the shift and go Online
        await sign_in(page, base)
        await page.click("button.set-status[data-status=Online]")
        await expect(page.locator("#my-status")).to_have_text("Online")

        # the overnight email ticket is at the top, with its preview
        first = page.locator("#queue tbody tr").first
        await expect(first).to_have_attribute("data-conversation-id", scene.EMAIL)
        await expect(first.locator(".flag-overnight")).to_have_text("Overnight")
        await expect(first.locator(".preview")).to_contain_text("I checked out a laptop")
        await check("queue")

        # open it, read it, reply with edited text
        await first.locator("a.open-link").click()
        await expect(page.locator("#conv-title")).to_be_focused()
        patron = page.locator('#transcript li[data-role="patron"]')
        await expect(patron).to_contain_text("Can I renew it online")
        await expect(patron.locator(".attachments")).to_contain_text("loan-receipt.pdf (47 KB)")
        await expect(page.locator('#transcript li[data-role="automated"]')).to_contain_text(
            "After-hours acknowledgement"
        )
        await expect(page.locator("#reply-subject")).to_have_value(f"Re: {scene.EMAIL_SUBJECT}")
        await page.fill("#reply-text", EMAIL_REPLY)
        await page.locator("#reply-text").press("Control+End")
        await page.locator("#reply-text").press_sequentially(EMAIL_EDIT)
        await check("email")
        clock.advance(120)
        await page.click("#send-reply")
        staff = page.locator('#transcript li[data-role="staff"]')
        await expect(staff).to_contain_text("and choose Renew")
        await expect(staff.locator(".delivery")).to_have_text("Queued")
        (reply,) = commands(publisher, NotificationKind.STAFF_REPLY)
        assert reply.channel is Channel.EMAIL and reply.recipient == "alex.rivera@my.tccd.edu"
        assert reply.context["text"] == EMAIL_REPLY + EMAIL_EDIT
        assert reply.context["subject"] == f"Re: {scene.EMAIL_SUBJECT}"
        assert reply.context["in_reply_to"] == scene.EMAIL_MESSAGE_ID
        # replying took it, and the answered ticket went below the patrons still waiting
        answered = page.locator(f'#queue tbody tr[data-conversation-id="{scene.EMAIL}"]')
        await expect(answered.locator(".assignee")).to_have_text("Maria Garcia")
        await expect(page.locator("#queue tbody tr").last).to_have_attribute(
            "data-conversation-id", scene.EMAIL
        )

        # an SMS arrives while the page is open: in the queue without a reload, phone icon
        await page.evaluate("window.sameDocument = true")
        clock.advance(180)
        await scene.sms(sessions, minutes_ago=-5)
        sms_row = await row(page, scene.SMS)
        await expect(sms_row).to_be_visible(timeout=5_000)
        await expect(sms_row.locator(".channel svg.icon-sms")).to_be_attached()
        await expect(sms_row.locator(".channel-label")).to_have_text("SMS")
        assert await page.evaluate("window.sameDocument === true")

        # answer it: the composer counts what the notifier will count
        await sms_row.locator("a.open-link").click()
        await expect(page.locator("#conversation")).to_have_attribute(
            "data-conversation-id", scene.SMS
        )
        await expect(page.locator("#composer")).to_have_attribute("data-channel", "sms")
        await page.fill("#reply-text", SMS_REPLY)
        counter = page.locator("#segment-counter")
        encoding, segments = sms_segments(SMS_REPLY.strip())
        await expect(counter).to_have_attribute("data-segments", str(segments))
        await expect(counter).to_have_attribute("data-encoding", encoding)
        await expect(counter).to_contain_text(f"{encoding}, {segments} segment")
        await expect(page.locator("#segment-warning")).to_have_text(
            "The curly apostrophe \u2019 is outside GSM-7, so each segment holds 70 characters,"
            " not 160."
        )
        await check("sms")
        # one click swaps it for a plain apostrophe: GSM-7, 160 characters a segment
        await page.click("#plain-punctuation")
        plain = SMS_REPLY.replace("\u2019", "'")
        encoding, segments = sms_segments(plain)
        assert encoding == "GSM-7"
        await expect(counter).to_have_attribute("data-encoding", "GSM-7")
        await expect(page.locator("#segment-warning")).to_have_text("")
        await expect(page.locator("#plain-punctuation")).to_be_hidden()
        assert await page.input_value("#reply-text") == plain
        clock.advance(120)
        await page.click("#send-reply")
        await expect(page.locator('#transcript li[data-role="staff"]')).to_contain_text("2nd floor")
        sms_reply = commands(publisher, NotificationKind.STAFF_REPLY)[-1]
        assert sms_reply.channel is Channel.SMS and sms_reply.recipient == "+18175550142"
        assert sms_reply.context["text"] == plain
        assert sms_segments(sms_reply.context["text"]) == (encoding, segments)

        # close it: the patron gets the survey
        await page.click('button[data-dialog="close-dialog"]')
        await expect(page.locator("#close-dialog .survey-note")).to_contain_text("survey")
        await page.click("#close-dialog label[for=rs-2]")
        await page.click("#close-dialog label[for=topic-hours-policies]")
        await check("close-dialog")
        await page.click("#close-dialog button[type=submit]")
        await expect(page.locator("#action-status")).to_contain_text("survey")
        await expect(sms_row).to_have_count(0)  # closed: off the open queue
        (closed,) = [
            d for d in publisher.on(INTERACTIONS.name) if isinstance(d, ConversationClosed)
        ]
        assert (closed.channel, closed.read_scale, closed.topic) == (
            Channel.SMS,
            2,
            "hours-policies",
        )
        assert closed.patron_contact == "+18175550142"  # where the router sends the survey

        # transfer a chat to NW Circulation with the warm hand-off, prefilled and edited
        await (await row(page, scene.CHAT)).locator("a.open-link").click()
        await expect(page.locator("#conversation")).to_have_attribute(
            "data-conversation-id", scene.CHAT
        )
        await page.click('button[data-dialog="transfer-dialog"]')
        await page.select_option("#transfer-department", "nw-circulation")
        # nobody at NW Circulation is Online in this scene: the chat is told it will be answered
        handoff = resources.book.handoff("nw-circulation", channel="chat", staffed=False)
        await expect(page.locator("#transfer-text")).to_have_value(handoff)
        await page.locator("#transfer-text").press("Control+End")
        await page.locator("#transfer-text").press_sequentially(" Thanks for waiting!")
        await check("transfer-dialog")
        await page.click("#transfer-dialog button[type=submit]")
        await expect(await row(page, scene.CHAT)).to_have_count(0)
        # the pane says what the librarian did, not that the conversation "has left" them
        await expect(page.locator("#conversation-pane h2")).to_have_text(
            "Transferred to NW Circulation"
        )
        (sent,) = commands(publisher, NotificationKind.HANDOFF)
        assert sent.channel is Channel.CHAT and sent.conversation_id == scene.CHAT
        assert sent.context["handoff_text"] == handoff + " Thanks for waiting!"
        assert sent.context["department_name"] == "NW Circulation"
        (moved,) = [d for d in publisher.on(ROUTING.name) if isinstance(d, RoutingDecided)]
        assert (moved.department, moved.decided_by) == ("nw-circulation", "mgarcia")

        # a crisis: first in the queue, and nothing but acknowledging it until it is acknowledged
        await scene.crisis(sessions)
        top = page.locator("#queue tbody tr").first
        await expect(top).to_have_attribute("data-conversation-id", scene.CRISIS, timeout=5_000)
        await expect(page.locator("#announcer-urgent")).to_contain_text("Crisis")
        await top.locator("a.open-link").click()
        await expect(page.locator(".banner-crisis")).to_be_visible()
        await expect(page.locator("#crisis-aside a").first).to_contain_text("CARE Team")
        for blocked in ('[data-action="claim"]', "[data-dialog]", "#composer", "#note-form"):
            await expect(page.locator(f"#conversation {blocked}")).to_have_count(0)
        status = await page.evaluate(
            "async (id) => (await fetch(`/conversations/${id}/claim`, {method: 'POST',"
            " headers: {'X-Requested-With': 'refdesk'}})).status",
            scene.CRISIS,
        )
        assert status == 409
        await check("crisis")
        await page.click('button[data-action="acknowledge"]')
        await expect(page.locator(".banner-acknowledged")).to_contain_text("Maria Garcia")
        await expect(page.locator('#conversation [data-action="claim"]')).to_be_visible()
        await expect(page.locator("#composer")).to_be_visible()
        assert [d for d in publisher.on(DESK.name) if isinstance(d, CrisisAcknowledged)]
        await check("crisis-acknowledged")
        assert page.js_errors == []
    assert {name: v for name, v in violations.items() if v} == {}
