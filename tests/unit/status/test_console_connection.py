"""What the console says while the desk is away or slow, found in an outside librarian's shift:
a banner while live updates are off (the service down), plain words for a failed request, a
reply in flight that cannot be sent twice, and an unsent reply that survives a reload."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import console_scenes as scene
import pytest
from console_browser import (
    browser_page,
    needs_browser,
    serious_violations,
    serve,
    serve_app,
    shoot,
    sign_in,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from status_fakes import FakePublisher

from services.status.resources import Resources
from shared.events import NotificationKind, NotificationRequested
from shared.topics import NOTIFICATIONS

pytestmark = [*needs_browser, pytest.mark.timeout(120)]

UNREACHABLE = (
    "Not sent: the desk could not be reached. Your reply is kept here; try again in a moment."
)
STILL_SENDING = (
    "Still sending: the desk is slow to confirm. Do not send it again; it shows in the"
    " transcript once it goes out."
)


def replies(publisher: FakePublisher) -> list[NotificationRequested]:
    return [
        d
        for d in publisher.on(NOTIFICATIONS.name)
        if isinstance(d, NotificationRequested) and d.kind is NotificationKind.STAFF_REPLY
    ]


def gateway(code: int) -> Any:
    """A route handler answering as a gateway does while the service is down."""

    async def answer(route: Any) -> None:
        await route.fulfill(status=code, body="Bad gateway")

    return answer


async def open_row(page: Any, cid: str) -> None:
    await page.click(f'#queue tbody tr[data-conversation-id="{cid}"] a.open-link')
    await page.wait_for_selector(f'#conversation[data-conversation-id="{cid}"]')


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_banner_says_live_updates_stopped_until_they_are_back(
    resources: Resources, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """The status service went down: the stream's error set data-live="off", and nothing on the
    page said the queue had stopped moving."""
    from playwright.async_api import expect

    await scene.sms(sessions)
    async with serve_app(resources) as served, browser_page(1366, 768) as page:
        await sign_in(page, served.base)
        await open_row(page, scene.SMS)
        banner = page.locator("#live-banner")
        await expect(banner).to_be_hidden()
        assert await banner.get_attribute("role") == "status"

        await served.stop()
        await expect(banner).to_have_text(
            "Live updates stopped: reconnecting. The queue and this conversation may be out"
            " of date.",
            timeout=10_000,
        )
        await expect(banner).to_be_visible()
        await shoot(page, tmp_path, "live-updates-stopped")
        assert await serious_violations(page) == []

        await scene.chats(sessions)  # arrives while the page cannot hear of it
        await served.start()
        await expect(banner).to_be_hidden(timeout=20_000)
        await expect(page.locator(".console")).to_have_attribute("data-live", "on")
        # back: the queue fetched again, with what arrived meanwhile
        await expect(
            page.locator(f'#queue tbody tr[data-conversation-id="{scene.CHAT}"]')
        ).to_be_visible()
        await shoot(page, tmp_path, "live-updates-back")
        assert page.js_errors == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_desk_that_hangs_with_its_stream_open_puts_up_the_banner(
    resources: Resources, tmp_path: Path
) -> None:
    """A service that hangs keeps its event stream open and silent: only the heartbeat, not
    answered within 10 s, can tell. In the page's own time (30 s to the next beat, its 10 s,
    the banner's grace): a clock moved by hand also ran out the first beat's 10 s while a
    loaded machine was still answering it, and put the banner up before its time."""
    from playwright.async_api import expect

    stalled: list[Any] = []

    async def hang(route: Any) -> None:
        stalled.append(route)  # never answered, as a hung service

    async with serve(resources) as base, browser_page(1366, 768) as page:
        await sign_in(page, base)
        banner = page.locator("#live-banner")
        await expect(page.locator(".console")).to_have_attribute("data-live", "on")
        await page.route("**/shift/heartbeat", hang)
        await expect(banner).to_have_text(
            "Live updates stopped: reconnecting. The queue may be out of date.", timeout=60_000
        )
        assert stalled  # the beat the desk did not answer put it up
        await expect(page.locator(".console")).to_have_attribute("data-live", "on")  # stream
        await shoot(page, tmp_path, "live-updates-desk-hangs")
        await page.unroute("**/shift/heartbeat")
        await expect(banner).to_be_hidden(timeout=20_000)  # the retry, 10 s on, answered
        assert page.js_errors == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_stream_a_gateway_refused_is_opened_again(
    resources: Resources, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A gateway's 503 while the service restarts is not a stream: the browser gives up on such
    an answer for good, so the page opens a new stream itself."""
    refused: list[str] = []

    async def events(route: Any) -> None:
        if not refused:
            refused.append(route.request.url)
            await route.fulfill(status=503, body="Service Unavailable")
        else:
            await route.continue_()

    async with serve(resources) as base, browser_page() as page:
        await page.route("**/console/events", events)
        await sign_in(page, base)  # it waits for the stream to be on
        assert len(refused) == 1
        assert page.js_errors == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_reply_in_flight_says_so_and_goes_once(
    resources: Resources,
    sessions: async_sessionmaker[AsyncSession],
    publisher: FakePublisher,
    tmp_path: Path,
) -> None:
    """During a 45-second broker stall the Send button stayed enabled with no sign of
    progress, and Ctrl+Enter could send the reply again."""
    from playwright.async_api import expect

    await scene.sms(sessions)
    release = asyncio.Event()
    posted: list[str] = []

    async def stall(route: Any) -> None:
        posted.append(route.request.post_data or "")
        await release.wait()
        await route.continue_()

    async with serve(resources) as base, browser_page(1366, 768) as page:
        await sign_in(page, base)
        await page.clock.install()  # the 15 s before "Still sending", run at once below
        await open_row(page, scene.SMS)
        await page.route("**/conversations/*/replies", stall)
        await page.fill("#reply-text", "Yes, NE is open until 9 PM tonight.")
        await page.click("#send-reply")
        button = page.locator("#send-reply")
        await expect(button).to_be_disabled()
        await expect(button).to_have_text("Sending…")
        await expect(page.locator("#composer")).to_have_attribute("aria-busy", "true")
        await expect(page.locator("#composer-status")).to_have_text("Sending…")
        await page.locator("#reply-text").press("Control+Enter")  # past the disabled button
        await shoot(page, tmp_path, "reply-sending")

        await page.clock.run_for(16_000)
        await expect(page.locator("#composer-status")).to_have_text(STILL_SENDING)
        await expect(button).to_be_disabled()
        await page.locator("#composer-status").scroll_into_view_if_needed()
        await shoot(page, tmp_path, "reply-still-sending")
        assert await serious_violations(page) == []

        release.set()
        await expect(page.locator('#transcript li[data-role="staff"]')).to_contain_text(
            "open until 9 PM"
        )
        await expect(button).to_be_enabled()
        await expect(button).to_have_text("Send text message")
        await expect(page.locator("#composer")).not_to_have_attribute("aria-busy", "true")
        await expect(page.locator("#reply-text")).to_have_value("")
        assert len(posted) == 1 and len(replies(publisher)) == 1
        assert page.js_errors == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_failed_requests_are_said_in_plain_words(
    resources: Resources, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """The console read "Not sent: Failed to fetch" and "Could not change your status: Failed
    to fetch" (the browser's words); the desk's own refusals stay as it wrote them."""
    from playwright.async_api import expect

    await scene.sms(sessions)
    async with serve(resources) as base, browser_page(1366, 768) as page:
        await sign_in(page, base)
        await open_row(page, scene.SMS)
        status = page.locator("#composer-status")
        draft = "The printers on the 2nd floor take your TCC ID."
        await page.fill("#reply-text", draft)

        await page.route("**/conversations/*/replies", lambda route: route.abort("failed"))
        await page.click("#send-reply")
        await expect(status).to_have_text(UNREACHABLE)
        await expect(page.locator("#reply-text")).to_have_value(draft)
        await shoot(page, tmp_path, "reply-not-sent-unreachable")
        await page.unroute("**/conversations/*/replies")

        for code in (502, 503, 504):
            await page.route("**/conversations/*/replies", gateway(code))
            await page.evaluate("document.getElementById('composer-status').textContent = ''")
            await page.click("#send-reply")
            await expect(status).to_have_text(UNREACHABLE)
            await page.unroute("**/conversations/*/replies")

        await page.route(
            "**/conversations/*/replies",
            lambda route: route.fulfill(
                status=409,
                content_type="application/problem+json",
                json={"title": "Conflict", "detail": "Maria Garcia has this conversation"},
            ),
        )
        await page.click("#send-reply")
        await expect(status).to_have_text("Not sent: Maria Garcia has this conversation")
        await page.unroute("**/conversations/*/replies")

        await page.route("**/conversations/*/claim", lambda route: route.abort("timedout"))
        await page.click('[data-action="claim"]')
        await expect(page.locator("#action-status")).to_have_text(
            "Could not claim: the desk could not be reached. Try again in a moment."
        )
        await expect(page.locator('[data-action="claim"]')).to_be_enabled()

        await page.route("**/staff/*/status", lambda route: route.abort("connectionrefused"))
        await page.click("button.set-status[data-status=Away]")
        await expect(page.locator("#message")).to_have_text(
            "Could not change your status: the desk could not be reached. Try again in a moment."
        )
        assert page.js_errors == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_an_unsent_reply_survives_a_reload_until_sent_or_closed(
    resources: Resources, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """A reload lost the reply being written."""
    from playwright.async_api import expect

    await scene.sms(sessions)
    await scene.chats(sessions)
    draft = "Yes, until 9 PM. Printing is on the 2nd floor,"
    async with serve(resources) as base, browser_page(1366, 768) as page:
        await sign_in(page, base)
        await open_row(page, scene.SMS)
        await page.fill("#reply-text", draft)
        await page.reload()
        await page.wait_for_selector(".console[data-live='on']")
        await expect(page.locator("#reply-text")).to_have_value(draft)
        await expect(page.locator("#composer-status")).to_contain_text("Your unsent reply is back")
        await shoot(page, tmp_path, "draft-restored")

        # another conversation's reply box is its own; back in this one, the draft is there
        await open_row(page, scene.CHAT)
        await expect(page.locator("#reply-text")).to_have_value("")
        await open_row(page, scene.SMS)
        await expect(page.locator("#reply-text")).to_have_value(draft)

        # sent: forgotten
        await page.fill("#reply-text", draft + " 10 cents a page.")
        await page.click("#send-reply")
        await expect(page.locator('#transcript li[data-role="staff"]')).to_contain_text("10 cents")
        await page.reload()
        await page.wait_for_selector(".console[data-live='on']")
        await expect(page.locator("#reply-text")).to_have_value("")

        # closed: forgotten too
        await page.fill("#reply-text", "One more thing:")
        await page.click('button[data-dialog="close-dialog"]')
        await page.click("#close-dialog button[type=submit]")
        await expect(page.locator("#action-status")).to_contain_text("Closed")
        assert await drafts_kept(page) == []
        assert page.js_errors == []


async def drafts_kept(page: Any) -> list[str]:
    """The keys of the drafts this tab keeps."""
    return list(
        await page.evaluate(
            "Object.keys(sessionStorage).filter(key => key.startsWith('refdesk.draft.'))"
        )
    )


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_draft_is_forgotten_at_sign_out_and_never_shown_to_the_next_librarian(
    resources: Resources, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A security probe signed out with a draft holding a patron's TCC ID and a fine, signed in
    as a colleague in the same tab, opened the conversation: the draft was in the reply box."""
    from playwright.async_api import expect

    await scene.sms(sessions)
    draft = "Your TCC ID A00123456 shows a $12 fine"
    async with serve(resources) as base, browser_page(1366, 768) as page:
        await sign_in(page, base)
        await open_row(page, scene.SMS)
        await page.fill("#reply-text", draft)
        assert await drafts_kept(page) == [f"refdesk.draft.mgarcia.{scene.SMS}"]
        await page.click("form[action='/dashboard/logout'] button")
        await page.wait_for_selector("#sign-in")
        assert await drafts_kept(page) == []
        await sign_in(page, base, "jnguyen")
        await open_row(page, scene.SMS)
        await expect(page.locator("#reply-text")).to_have_value("")

        # a session that ended without sign-out (expired, revoked): the next one drops its drafts
        await page.fill("#reply-text", "Jamie's draft")
        await page.context.clear_cookies()
        await sign_in(page, base)
        assert await drafts_kept(page) == []
        assert page.js_errors == []
