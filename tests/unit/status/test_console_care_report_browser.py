"""Recording the CARE Team's incident report from a crisis conversation, in Chromium: the
crisis aside offers it (before the crisis is acknowledged too), and once recorded says who
filed it and when, as does the transcript, on this page and on a colleague's; a record made
by mistake is taken back by who made it, and a colleague who filed one too records theirs
beside it (screenshots kept
in REFDESK_SCREENSHOTS when set; axe-core's WCAG 2.1 AA check)."""

from __future__ import annotations

from pathlib import Path

import console_scenes as scene
import pytest
from console_browser import browser_page, needs_browser, serious_violations, serve, shoot, sign_in
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from status_fakes import Clock

from services.status.resources import Resources

pytestmark = [*needs_browser, pytest.mark.timeout(240)]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_librarian_records_filing_the_care_report(
    resources: Resources,
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    tmp_path: Path,
) -> None:
    from playwright.async_api import expect

    await scene.morning(sessions)
    async with serve(resources) as base, browser_page() as page:
        await sign_in(page, base)
        await page.click(f'#queue tr[data-conversation-id="{scene.CRISIS}"] a.open-link')
        aside = page.locator("#crisis-aside")
        button = aside.locator('[data-action="care-report"]')
        await expect(button).to_have_text("I filed the CARE Team report")
        await aside.scroll_into_view_if_needed()
        await shoot(page, tmp_path, "crisis-care-report-offered")
        assert await serious_violations(page) == []
        await button.click()
        await expect(page.locator("#action-status")).to_contain_text(
            "Recorded: the CARE Team incident report is marked as filed."
        )
        filed = aside.locator(".care-report-filed")
        await expect(filed).to_contain_text("CARE Team report filed by Maria Garcia, Today")
        await expect(aside.locator('[data-action="care-report"]')).to_have_count(0)
        await expect(page.locator("#transcript")).to_contain_text(
            "CARE Team incident report filed by Maria Garcia"
        )
        # recording it acknowledges nothing: the crisis still waits for that
        await expect(page.locator('[data-action="acknowledge"]')).to_be_visible()
        await aside.scroll_into_view_if_needed()
        await shoot(page, tmp_path, "crisis-care-report-filed")
        assert await serious_violations(page) == []
        # pressed by mistake (the report was not sent yet): taken back, offered again
        undo = aside.locator('[data-action="care-report/withdraw"]')
        await expect(undo).to_have_text("Not filed after all? Take your record back")
        await undo.click()
        await expect(page.locator("#action-status")).to_contain_text(
            "Taken back. If nobody else recorded it, no CARE Team report is marked as filed"
        )
        await expect(aside.locator(".care-report-filed")).to_have_count(0)
        await expect(aside.locator('[data-action="care-report"]')).to_be_visible()
        await expect(page.locator("#transcript")).to_contain_text(
            "A CARE Team report record taken back by Maria Garcia"
        )
        await aside.scroll_into_view_if_needed()
        await shoot(page, tmp_path, "crisis-care-report-taken-back")
        assert await serious_violations(page) == []
        clock.advance(60)
        await aside.locator('[data-action="care-report"]').click()
        await expect(aside.locator(".care-report-filed")).to_contain_text("filed by Maria Garcia")
    # a colleague opening it later sees who filed it; one who filed a report too records theirs
    async with serve(resources) as base, browser_page() as page:
        await sign_in(page, base, "lokafor")
        await page.goto(f"{base}/dashboard/c/{scene.CRISIS}")
        aside = page.locator("#crisis-aside")
        await expect(aside.locator(".care-report-filed")).to_contain_text("filed by Maria Garcia")
        # a supervisor may take back a record someone else made
        await expect(aside.locator('[data-action="care-report/withdraw"]')).to_have_text(
            "Not filed after all? Take this back"
        )
        clock.advance(60)
        too = aside.locator('[data-action="care-report"]')
        await expect(too).to_have_text("I filed one too")
        await too.click()
        await expect(aside.locator(".care-report-filed")).to_contain_text(
            "Also recorded by Linda Okafor, Today"
        )
        await expect(aside.locator('[data-action="care-report"]')).to_have_count(0)
        await aside.scroll_into_view_if_needed()
        await shoot(page, tmp_path, "crisis-care-report-two-records")
        assert await serious_violations(page) == []
        # her own record taken back: Maria's still stands
        await aside.locator('[data-action="care-report/withdraw"]').click()
        await expect(aside.locator(".care-report-filed")).not_to_contain_text("Also recorded")
        await expect(aside.locator(".care-report-filed")).to_contain_text("filed by Maria Garcia")
    # a librarian who did not make it may not take it back, and may record their own
    async with serve(resources) as base, browser_page() as page:
        await sign_in(page, base, "jnguyen")
        await page.goto(f"{base}/dashboard/c/{scene.CRISIS}")
        await expect(page.locator("#crisis-aside .care-report-filed")).to_be_visible()
        await expect(
            page.locator('#crisis-aside [data-action="care-report/withdraw"]')
        ).to_have_count(0)
        await expect(page.locator('#crisis-aside [data-action="care-report"]')).to_have_text(
            "I filed one too"
        )
