"""What the console tells a librarian of a crisis wherever they are in it (a librarian-shift
probe): a new crisis joins search results, a conversation that turns into a crisis is
announced urgently and marks a background tab, a new message in one's own conversation is
announced, and the page title never carries a patron's number."""

from __future__ import annotations

import console_scenes as scene
import pytest
from console_browser import browser_page, needs_browser, serve, sign_in
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from status_fakes import Clock

from services.status.resources import Resources
from shared.events import Channel

pytestmark = [*needs_browser, pytest.mark.timeout(120)]

PHONE = "+18175550142"


async def turns_into_a_crisis(sessions: async_sessionmaker[AsyncSession]) -> None:
    """The patron of the open SMS conversation writes again, and the router escalates."""
    await scene._apply(
        sessions,
        scene.message(
            scene.SMS, Channel.SMS, "actually i want to end my life", minutes_ago=1, contact=PHONE
        ),
        scene.routed(scene.SMS, Channel.SMS, minutes_ago=1, crisis=True),
    )


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_new_crisis_joins_the_search_results_and_is_said_at_once(
    resources: Resources, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A console showing search results dropped a new crisis, unannounced, until the search
    was cleared."""
    from playwright.async_api import expect

    await scene.sms(sessions)
    async with serve(resources) as base, browser_page() as page:
        await sign_in(page, base)
        await page.fill("#search-q", "printer")
        await page.press("#search-q", "Enter")
        await expect(page.locator("#queue")).to_have_attribute("data-search", "1")
        await scene.crisis(sessions)
        row = page.locator(f'#queue tbody tr[data-conversation-id="{scene.CRISIS}"]')
        await expect(row).to_be_visible(timeout=10_000)
        await expect(page.locator("#announcer-urgent")).to_contain_text("Crisis")
        assert page.js_errors == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_conversation_that_turns_into_a_crisis_is_said_and_marks_the_title(
    resources: Resources, sessions: async_sessionmaker[AsyncSession]
) -> None:
    from playwright.async_api import expect

    await scene.sms(sessions)
    async with serve(resources) as base, browser_page() as page:
        await sign_in(page, base)
        title = await page.title()
        await expect(
            page.locator(f'#queue tbody tr[data-conversation-id="{scene.SMS}"]')
        ).to_be_visible()
        await page.evaluate(
            "Object.defineProperty(document, 'hidden', {value: true, configurable: true})"
        )
        await turns_into_a_crisis(sessions)
        await expect(page.locator("#announcer-urgent")).to_have_text(
            "Crisis: an SMS conversation in the queue, now at the top.", timeout=10_000
        )
        await expect(page).to_have_title(f"(!) (1) {title}")
        assert page.js_errors == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_new_message_in_ones_own_conversation_is_said(
    resources: Resources, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Follow-ups in a librarian's own conversations, not open on the page, went unsaid."""
    from playwright.async_api import expect

    await scene.sms(sessions)
    async with serve(resources) as base, browser_page() as page:
        await sign_in(page, base)
        row = page.locator(f'#queue tbody tr[data-conversation-id="{scene.SMS}"]')
        await row.locator("a.open-link").click()
        await page.click('#conversation [data-action="claim"]')
        await expect(row.locator(".assignee")).to_have_text("Maria Garcia")
        await page.goto(f"{base}/dashboard")  # nothing open now
        await page.wait_for_selector(".console[data-live='on']")
        # the reload that follows the subscription would read the message silently
        await page.wait_for_timeout(1_000)
        await scene._apply(
            sessions,
            scene.message(
                scene.SMS, Channel.SMS, "also is there parking", minutes_ago=0.5, contact=PHONE
            ),
            scene.routed(scene.SMS, Channel.SMS, minutes_ago=0.5),
        )
        await expect(page.locator("#announcer")).to_have_text(
            "New message in your SMS conversation.", timeout=10_000
        )
        assert page.js_errors == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_title_names_the_channel_never_the_patron(
    resources: Resources, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Opened from the queue, the title read "SMS (817) 555-0142 · Reference desk ...": it
    reaches browser history, the tab strip and shared screens."""
    from playwright.async_api import expect

    await scene.sms(sessions)
    async with serve(resources) as base, browser_page() as page:
        await sign_in(page, base)
        row = page.locator(f'#queue tbody tr[data-conversation-id="{scene.SMS}"]')
        await row.locator("a.open-link").click()
        await expect(page.locator("#conversation")).to_have_attribute(
            "data-conversation-id", scene.SMS
        )
        await expect(page).to_have_title("SMS conversation · Reference desk · TCC Libraries")
        assert "555" not in await page.title()
        assert page.js_errors == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_draft_held_by_a_crisis_comes_back_once_it_is_acknowledged(
    resources: Resources, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The librarian typing when the patron's next message escalated lost the draft: the reply
    box went, the note box is locked too, and after Acknowledge the reply box came back empty
    (and focus was left on the page's body)."""
    from playwright.async_api import expect

    await scene.sms(sessions)
    draft = "Sure, start with Academic Search Complete and"
    async with serve(resources) as base, browser_page() as page:
        await sign_in(page, base)
        row = page.locator(f'#queue tbody tr[data-conversation-id="{scene.SMS}"]')
        await row.locator("a.open-link").click()
        await page.click('#conversation [data-action="claim"]')
        await expect(page.locator("#reply-text")).to_be_focused()  # Claim, then the reply
        await page.fill("#reply-text", draft)
        await turns_into_a_crisis(sessions)
        status = page.locator("#action-status")
        await expect(status).to_contain_text("acknowledge it to go on replying", timeout=10_000)
        await expect(status).to_have_attribute("data-tone", "warning")
        await page.click('#conversation [data-action="acknowledge"]')
        await expect(page.locator("#reply-text")).to_have_value(draft)
        await expect(page.locator("#reply-text")).to_be_focused()
        await expect(status).to_contain_text("Your unsent reply is back")
        assert page.js_errors == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_crisis_waiting_for_acknowledgement_shows_above_the_page(
    resources: Resources, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A supervisor scrolled down the queue, or a librarian reading at 200% zoom, had no sign
    of a new crisis (only screen readers were told)."""
    from playwright.async_api import expect

    await scene.sms(sessions)
    async with serve(resources) as base, browser_page() as page:
        await sign_in(page, base)
        bar = page.locator("#crisis-bar")
        await expect(bar).to_be_hidden()
        row = page.locator(f'#queue tbody tr[data-conversation-id="{scene.SMS}"]')
        await row.locator("a.open-link").click()  # reading something else
        await scene.crisis(sessions)
        await expect(bar).to_be_visible(timeout=10_000)
        await expect(bar).to_contain_text("A crisis is waiting to be acknowledged.")
        # above the panes, which scroll on their own; in one column the page scrolls, the bars stay
        assert await bar.evaluate("b => getComputedStyle(b.parentElement).position") == "sticky"
        await expect(bar).to_be_in_viewport()
        await page.click("#crisis-bar-open")
        await expect(page.locator("#conversation")).to_have_attribute(
            "data-conversation-id", scene.CRISIS
        )
        await page.click('#conversation [data-action="acknowledge"]')
        await expect(bar).to_be_hidden(timeout=10_000)
        assert page.js_errors == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_minutes_refresh_leaves_focus_on_the_same_control(
    resources: Resources, sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    """An outside probe: the minute's reload re-focused a new copy of the focused queue link
    (and the refresh of "Waiting 3 min" the conversation's heading): a screen reader re-read
    it every minute, about 480 times a shift."""
    from playwright.async_api import expect

    await scene.sms(sessions)
    async with serve(resources) as base, browser_page() as page:
        await sign_in(page, base)
        # the reload that follows the live stream's subscription replaces the rows once
        await page.wait_for_timeout(1_000)
        link = page.locator(f'#queue tbody tr[data-conversation-id="{scene.SMS}"] a.open-link')
        await link.focus()
        await page.evaluate("window.before = document.activeElement")
        waited = await link.locator("xpath=ancestor::tr").locator(".waited").inner_text()
        clock.advance(600)  # the waiting times move on
        await page.evaluate("Desk.refreshWaiting()")
        row = page.locator(f'#queue tbody tr[data-conversation-id="{scene.SMS}"]')
        await expect(row.locator(".waited")).not_to_have_text(waited)
        await page.wait_for_timeout(500)
        assert await page.evaluate("document.activeElement === window.before")
        await link.click()
        await expect(page.locator("#conv-title")).to_be_focused()
        await page.evaluate("window.heading = document.activeElement")
        head = await page.locator("#conv-head").inner_text()
        clock.advance(600)
        await page.evaluate("Desk.refreshConversation()")
        await expect(page.locator("#conv-head")).not_to_have_text(head)
        await page.wait_for_timeout(500)
        assert await page.evaluate("document.activeElement === window.heading")
        assert page.js_errors == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_transfer_is_said_to_the_department_it_went_to(
    resources: Resources, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A warm hand-off told the patron "someone from NW Circulation will join in a moment",
    and NW Circulation's librarian heard nothing: the row only changed its department."""
    import httpx
    from playwright.async_api import expect

    await scene.sms(sessions)
    async with serve(resources) as base, browser_page() as page:
        await sign_in(page, base, "tbrooks")
        row = page.locator(f'#queue tbody tr[data-conversation-id="{scene.SMS}"]')
        await expect(row).to_be_visible()
        async with httpx.AsyncClient(base_url=base) as api:
            moved = await api.post(
                f"/conversations/{scene.SMS}/transfer",
                json={"department": "nw-circulation"},
                headers={"Authorization": "Bearer dev-mgarcia-token"},
            )
        assert moved.is_success, moved.text
        await expect(page.locator("#announcer")).to_have_text(
            "An SMS conversation was transferred to NW Circulation.", timeout=10_000
        )
        assert page.js_errors == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_number_searched_for_stays_out_of_the_address(
    resources: Resources, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The title kept patrons' numbers out of browser history, but the search's address put
    them there (an outside probe: ?contact=%2B18175551100)."""
    from playwright.async_api import expect

    await scene.sms(sessions)
    async with serve(resources) as base, browser_page() as page:
        await sign_in(page, base)
        await page.click("details.more-search summary")
        await page.fill("#search-contact", "817-555-0142")
        await page.press("#search-contact", "Enter")
        await expect(page.locator("#queue-summary")).to_contain_text("found")
        await expect(
            page.locator(f'#queue tbody tr[data-conversation-id="{scene.SMS}"]')
        ).to_be_visible()
        # what follows the host: the server's own port may hold "555"
        after_host = page.url.removeprefix(base)
        assert "555" not in after_host and "contact" not in after_host
        # words too: a patron's name searched for stayed in the address (a security probe)
        await page.fill("#search-contact", "")
        await page.fill("#search-q", "Zed Probe")
        await page.press("#search-q", "Enter")
        await expect(page.locator("#queue-summary")).to_contain_text("0 conversations found")
        await expect(page.locator("#clear-search")).to_be_visible()
        assert "Probe" not in page.url.removeprefix(base) and "q=" not in page.url
        assert page.js_errors == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_crisis_is_said_while_a_dialog_is_open(
    resources: Resources, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """An open dialog (Close, Transfer) makes the rest of the page inert to screen readers,
    the page's live regions too: a crisis arriving then was said to nobody."""
    from playwright.async_api import expect

    await scene.sms(sessions)
    async with serve(resources) as base, browser_page() as page:
        await sign_in(page, base)
        await page.locator(f'#queue tbody tr[data-conversation-id="{scene.SMS}"] a').click()
        await page.click('button[data-dialog="close-dialog"]')
        await expect(page.locator("#close-dialog")).to_be_visible()
        await scene.crisis(sessions)
        urgent = page.locator("#close-dialog .dialog-announcer-urgent")
        await expect(urgent).to_contain_text("Crisis", timeout=10_000)
        assert await urgent.get_attribute("aria-live") == "assertive"
        await page.keyboard.press("Escape")
        await expect(page.locator("#close-dialog")).to_be_hidden()
        assert page.js_errors == []
