"""The admins' records pages in headless Chromium: from the console to a patron's records, the
answer read as the console draws a transcript, then the access log with the request in it;
axe-core finds no serious or critical WCAG 2.1 A/AA violation; screenshots are kept
(REFDESK_SCREENSHOTS)."""

from __future__ import annotations

from pathlib import Path

import console_scenes as scene
import pytest
from console_browser import browser_page, needs_browser, serious_violations, serve, shoot, sign_in
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from status_fakes import T0

from services.status.resources import Resources
from shared.events import Channel, ConversationClosed

pytestmark = [*needs_browser, pytest.mark.timeout(180)]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_an_admin_answers_a_records_request_and_reads_the_access_log(
    resources: Resources, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    from playwright.async_api import expect

    await scene.sms(sessions)
    await scene.reply_refused(sessions)
    async with serve(resources) as base, browser_page(1280, 900) as page:
        await sign_in(page, base, "dkim")
        await page.click("#records-link")
        await expect(
            page.get_by_role("heading", name="A patron's records", exact=True)
        ).to_be_visible()
        await shoot(page, tmp_path, "records-form")
        assert await serious_violations(page) == []

        await page.click("#ask-contact")
        await page.keyboard.type("(817) 555-0142")
        await page.keyboard.press("Tab")
        await page.keyboard.type("FERPA request 2026-014")
        await page.keyboard.press("Enter")
        heading = page.locator("#answer-heading")
        await expect(heading).to_have_text("2 conversations for (817) 555-0142")
        await expect(heading).to_be_focused()
        assert "0142" not in page.url
        records = page.locator("article.record")
        await expect(records).to_have_count(2)
        await expect(records.nth(1).locator(".transcript")).to_contain_text(scene.SMS_TEXT)
        await expect(records.nth(1).locator(".transcript")).to_contain_text("Not delivered")
        await shoot(page, tmp_path, "records-answer")
        assert await serious_violations(page) == []

        erase = page.locator(".erase-card")
        await expect(erase).to_contain_text("1 of these conversations is still open")
        await erase.scroll_into_view_if_needed()
        await shoot(page, tmp_path, "records-erase-still-open")

        # closed on the console, the patron's conversations are erased on request
        await scene._apply(
            sessions,
            ConversationClosed(
                conversation_id=scene.SMS, channel=Channel.SMS, closed_at=T0, closed_by="mgarcia"
            ),
        )
        await page.click("#ask-contact")
        await page.keyboard.press("Enter")
        await expect(erase.get_by_role("button")).to_have_text("Erase 2 conversations")
        await erase.get_by_label("I understand that this cannot be undone").check()
        await erase.scroll_into_view_if_needed()
        await shoot(page, tmp_path, "records-erase-ready")
        await erase.get_by_role("button").click()
        await expect(page.locator(".notice")).to_contain_text("Erased 2 conversations")
        await expect(page.locator("#answer-heading")).to_have_text(
            "0 conversations for (817) 555-0142"
        )
        await shoot(page, tmp_path, "records-erased")
        assert await serious_violations(page) == []

        await page.get_by_role("link", name="Access log", exact=True).click()
        rows = page.locator("table.log-table tbody tr")
        await expect(rows.first).to_contain_text("Records request")
        await expect(rows.nth(2)).to_contain_text("Erased on request")
        await expect(rows.first).to_contain_text("FERPA request 2026-014")
        await shoot(page, tmp_path, "records-access-log")
        assert await serious_violations(page) == []
        assert page.js_errors == []
