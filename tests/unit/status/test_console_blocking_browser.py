"""Blocking a sender from the console, in Chromium: "Block this sender…" under the actions asks
why, the conversation then says who blocked them, when and why, and the close dialog says no
survey goes; a supervisor unblocks from the Blocked senders page (screenshots kept in
REFDESK_SCREENSHOTS when set; axe-core's WCAG 2.1 AA check)."""

from __future__ import annotations

from pathlib import Path

import console_scenes as scene
import pytest
from console_browser import browser_page, needs_browser, serious_violations, serve, shoot, sign_in
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.status.resources import Resources

pytestmark = [*needs_browser, pytest.mark.timeout(240)]

REASON = "Threatening texts to staff, three nights running"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_librarian_blocks_a_sender_and_a_supervisor_unblocks_them(
    resources: Resources, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    from playwright.async_api import expect

    await scene.morning(sessions)
    async with serve(resources) as base, browser_page() as page:
        await sign_in(page, base)
        await page.goto(f"{base}/dashboard/c/{scene.SMS}")
        await page.click('button[data-dialog="block-dialog"]')
        dialog = page.locator("#block-dialog")
        await expect(dialog).to_be_visible()
        await page.fill("#block-reason", REASON)
        await shoot(page, tmp_path, "block-dialog")
        assert await serious_violations(page) == []
        await dialog.locator('button[type="submit"]').click()
        await expect(page.locator("#action-status")).to_contain_text("Blocked:")
        banner = page.locator(".banner-blocked")
        await expect(banner).to_contain_text("Blocked by Maria Garcia, Today")
        await expect(banner).to_contain_text(REASON)
        await expect(page.locator('button[data-dialog="block-dialog"]')).to_have_count(0)
        await expect(page.locator("#transcript")).to_contain_text("Sender blocked")
        await page.click('button[data-dialog="close-dialog"]')
        await expect(page.locator("#close-dialog .survey-note")).to_have_text(
            "This sender is blocked, so no survey goes."
        )
        await page.click("#close-dialog [data-close]")
        await shoot(page, tmp_path, "blocked-conversation")
        assert await serious_violations(page) == []
        # a librarian cannot lift it, nor open the list
        await expect(banner.locator('[data-action="unblock"]')).to_have_count(0)
        refused = await page.goto(f"{base}/dashboard/blocked")
        assert refused is not None and refused.status == 403
    async with serve(resources) as base, browser_page() as page:
        await sign_in(page, base, "lokafor")
        await page.goto(f"{base}/dashboard/blocked")
        row = page.locator(".blocked-table tbody tr").first
        await expect(row).to_contain_text("(817) 555")
        await expect(row).to_contain_text(REASON)
        await expect(row).to_contain_text("Maria Garcia")
        await shoot(page, tmp_path, "blocked-senders")
        assert await serious_violations(page) == []
        await row.locator('button[type="submit"]').click()
        await expect(page.locator(".notice")).to_contain_text("Unblocked")
        await expect(page.locator(".empty-note")).to_contain_text("Nobody is blocked")
        await expect(page.locator("text=Unblocked").first).to_be_visible()
        await shoot(page, tmp_path, "blocked-senders-lifted")
        await page.goto(f"{base}/dashboard/c/{scene.SMS}")
        await expect(page.locator(".banner-blocked")).to_have_count(0)
        await expect(page.locator("#transcript")).to_contain_text(
            "Sender unblocked by Linda Okafor"
        )
        assert page.js_errors == []
