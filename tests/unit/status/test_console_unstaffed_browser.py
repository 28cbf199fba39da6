"""A ticket nobody Online could take, at the desk in Chromium: the desk librarian's queue lists
it, marked, and may claim it and give it back (screenshots kept in REFDESK_SCREENSHOTS when
set; axe-core's WCAG 2.1 AA check)."""

from __future__ import annotations

from pathlib import Path

import console_scenes as scene
import pytest
from console_browser import browser_page, needs_browser, serious_violations, serve, shoot, sign_in
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.status.resources import Resources
from shared.events import Channel

pytestmark = [*needs_browser, pytest.mark.timeout(240)]
RENEWAL = "chat-renewal-unstaffed"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_desk_sees_and_takes_a_ticket_nobody_online_could_take(
    resources: Resources, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    from playwright.async_api import expect

    await scene._apply(
        sessions,
        scene.message(
            RENEWAL,
            Channel.CHAT,
            "can I renew my laptop loan? its due today at 5",
            minutes_ago=3,
            contact="chat-visitor-12",
        ),
        scene.routed(RENEWAL, Channel.CHAT, minutes_ago=3, department="nw-circulation").model_copy(
            update={"fallback": "ticket: nobody Online in nw-circulation"}
        ),
    )
    async with serve(resources) as base, browser_page() as page:
        await sign_in(page, base)
        row = page.locator(f'#queue tr[data-conversation-id="{RENEWAL}"]')
        await expect(row.locator(".flag-unstaffed")).to_have_text("Nobody Online in NW Circulation")
        await expect(row.locator(".dept")).to_have_text("NW Circulation")
        await shoot(page, tmp_path, "queue-unstaffed-ticket")
        assert await serious_violations(page) == []
        await row.locator("a.open-link").click()
        await page.click('[data-action="claim"]')
        await expect(page.locator("#action-status")).to_contain_text("Claimed")
        await expect(row.locator(".assignee")).to_have_text("Maria Garcia")
        await expect(row.locator(".flag-unstaffed")).to_have_count(0)
        await shoot(page, tmp_path, "unstaffed-ticket-claimed")
        # claimed by mistake: given back, it is the desk's to pick up again, marked again
        await page.click('[data-action="release"]')
        await expect(page.locator("#action-status")).to_contain_text("Given back to the queue")
        await expect(row.locator(".assignee")).to_have_text("Unassigned")
        await expect(row.locator(".flag-unstaffed")).to_have_count(1)
        await expect(page.locator('[data-action="claim"]')).to_be_visible()
        await expect(page.locator("#transcript")).to_contain_text(
            "Given back to the queue by Maria Garcia"
        )
        await shoot(page, tmp_path, "unstaffed-ticket-given-back")
        assert await serious_violations(page) == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_search_result_a_colleague_moves_out_of_sight_leaves_at_once(
    resources: Resources, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """Search results keep the closed conversations they matched, so a row that left the open
    queue stays; one a colleague moved where this librarian may not see it stayed a minute too,
    until the page's refresh (a verifying probe's search for "Tuskegee")."""
    import httpx
    from playwright.async_api import expect
    from status_fakes import bearer

    await scene.chats(sessions)
    async with serve(resources) as base, browser_page() as page:
        await sign_in(page, base)
        await page.fill("#search-q", "calculator")
        await page.click("#queue-form button[type=submit]")
        row = page.locator(f'#queue tr[data-conversation-id="{scene.CHAT}"]')
        await expect(row).to_have_count(1)
        async with httpx.AsyncClient(base_url=base) as http:
            moved = await http.post(
                f"/conversations/{scene.CHAT}/transfer",
                json={"department": "campus-se"},
                headers=bearer("lokafor"),
            )
            assert moved.status_code == 200, moved.text
        await expect(row).to_have_count(0, timeout=5000)
        await shoot(page, tmp_path, "search-result-moved-away")
