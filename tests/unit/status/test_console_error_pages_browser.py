"""The console's error states and the timeline's routing line in Chromium: what a librarian
sees (real words, the console's look, the right status), axe-core's WCAG 2.1 AA check on
each, and a screenshot of each (kept in REFDESK_SCREENSHOTS when set)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import console_scenes as scene
import pytest
from console_browser import browser_page, needs_browser, serious_violations, serve, shoot, sign_in
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from status_fakes import T0
from test_console_error_pages import ROUTED, routed_by

from services.status.resources import Resources
from shared.events import Channel, ConversationTransferred

pytestmark = [*needs_browser, pytest.mark.timeout(240)]
RAW = ("about:blank", '"status"', "no such conversation", "by rule", "String should have")


async def shown(page: Any) -> str:
    text: str = await page.evaluate("document.body.innerText")
    return text


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_error_states_read_well_in_the_consoles_look_and_pass_axe(
    resources: Resources, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    from playwright.async_api import expect

    found: dict[str, list[dict[str, Any]]] = {}

    async def look(page: Any, name: str) -> str:
        await shoot(page, tmp_path, name)
        found[name] = await serious_violations(page)
        text = await shown(page)
        assert not any(raw in text for raw in RAW), (name, text)
        return text

    await scene.chats(sessions)
    await routed_by(sessions, ["crisis-suicide", "reference-default"])
    async with serve(resources) as base, browser_page() as page:
        # signed out: an over-long token re-shows the sign-in form with a plain message
        await page.goto(f"{base}/dashboard")
        await page.fill("#staff_id", "mgarcia")
        await page.fill("#token", "t" * 201)
        async with page.expect_response(f"{base}/dashboard/login") as posted:
            await page.click("#sign-in button[type=submit]")
        assert (await posted.value).status == 422
        await expect(page.locator("#sign-in .error")).to_contain_text("longer than any")
        await look(page, "sign-in-too-long")

        await sign_in(page, base)

        answer = await page.goto(f"{base}/dashboard/c/nonexistent")
        assert answer.status == 404
        await expect(page.locator("#conversation-pane h2")).to_have_text(
            "This conversation could not be found"
        )
        await expect(page.locator("#queue tbody tr")).not_to_have_count(0)  # the console
        await look(page, "conversation-not-found")

        for name, path in (("page-not-found", "nonexistent"), ("dotted-path", "c/..%2F..")):
            answer = await page.goto(f"{base}/dashboard/{path}")
            assert answer.status == 404
            await expect(page.locator("h2")).to_have_text("Page not found")
            await look(page, name)
            await page.click("text=Back to the desk console")
            await expect(page.locator("#queue-pane")).to_be_visible()

        answer = await page.goto(f"{base}/dashboard?from=2025-99-99")
        assert answer.status == 200
        await expect(page.locator("#queue-ignored")).to_contain_text(
            "The From date “2025-99-99” was ignored: it is not a date like 2026-09-14."
        )
        await expect(page.locator("#search-from")).to_be_visible()  # the date fields shown
        await page.wait_for_selector(".console[data-live='on']")
        await page.evaluate("Desk.loadQueue()")  # as the live feed does: the note stays
        await expect(page.locator("#queue-ignored")).to_contain_text("2025-99-99")
        await look(page, "queue-date-ignored")
        # dates the other way round, searched from the form: said above the queue too (it was
        # said on a page load only, and the search read "found" with no word of it)
        await page.fill("#search-from", "2026-12-31")
        await page.fill("#search-to", "2026-12-01")
        await page.press("#search-to", "Enter")
        await expect(page.locator("#queue-ignored")).to_contain_text(
            "the search ran from the earlier to the later"
        )
        await expect(page.locator("#queue-ignored")).not_to_contain_text("2025-99-99")
        await expect(page.locator("#announcer")).to_contain_text("the earlier to the later")

        # a conversation the script cannot open says so in the same words as the page
        await page.goto(f"{base}/dashboard")
        await page.wait_for_selector(".console[data-live='on']")
        await page.evaluate("Desk.openConversation('gone-already')")
        await expect(page.locator("#conversation-pane h2")).to_have_text(
            "This conversation could not be found"
        )
        await expect(page.locator("#conversation-pane h2")).to_be_focused()
        await look(page, "conversation-not-found-in-place")

        # one that leaves the librarian's departments while open says why, in words
        await page.click(f'#queue tr[data-conversation-id="{scene.CHAT}"] a.open-link')
        await expect(page.locator("#conv-title")).to_be_focused()
        moved = ConversationTransferred(
            conversation_id=scene.CHAT,
            channel=Channel.CHAT,
            department="tutoring",
            transferred_at=T0,
            by="platform",
        )
        await scene._apply(sessions, moved)
        # the live feed tells only those who may see it now: the open pane learns on its next
        # refresh (a "reload" event, a reconnect)
        await page.evaluate("Desk.refreshConversation()")
        await expect(page.locator("#conversation-pane h2")).to_have_text(
            "This conversation has left your queue"
        )
        await expect(page.locator("#conversation-pane p")).to_have_text(
            "It belongs to a department you do not staff. A colleague there or a supervisor "
            "can open it."
        )
        await look(page, "conversation-left-queue")

        await page.goto(f"{base}/dashboard/c/{ROUTED}")
        event = page.locator(".line-event .event").first
        await expect(event).to_contain_text(
            "Routed to CARE Team (escalate crisis) by the crisis rule (suicide) and the desk's "
            "catch-all rule"
        )
        await event.scroll_into_view_if_needed()
        text = await look(page, "timeline-rule-words")
        assert "crisis-suicide" not in text  # the ids wait behind the details
        await page.click(".rule-ids summary")
        await expect(page.locator(".rule-ids")).to_contain_text("crisis-suicide, reference-default")
        await shoot(page, tmp_path, "timeline-rule-ids")
        assert page.js_errors == []

    assert {name: v for name, v in found.items() if v} == {}
