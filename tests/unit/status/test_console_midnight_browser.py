"""An open conversation's times across midnight, in Chromium: "Today 9:00 AM" becomes
"Yesterday 9:00 AM" at the page's next refresh, without a reload (a line was replaced only when
its delivery or text changed, so an outside review read "Today 11:57 PM" after midnight)."""

from __future__ import annotations

from pathlib import Path

import console_scenes as scene
import pytest
from console_browser import browser_page, needs_browser, serve, sign_in
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from status_fakes import Clock

from services.status.resources import Resources

pytestmark = [*needs_browser, pytest.mark.timeout(240)]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_an_open_conversation_says_yesterday_after_midnight(
    resources: Resources, sessions: async_sessionmaker[AsyncSession], clock: Clock, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    await scene.morning(sessions)
    clock.advance(14 * 3600 + 50 * 60)  # 11:50 PM in desk time, the same day
    async with serve(resources) as base, browser_page() as page:
        await sign_in(page, base)
        await page.click(f'#queue tr[data-conversation-id="{scene.SMS}"] a.open-link')
        first = page.locator('#transcript li[data-role="patron"] time').first
        await expect(first).to_contain_text("Today")
        clock.advance(20 * 60)  # 12:10 AM: the morning's 8:48 AM is yesterday's now
        await page.evaluate("Desk.refreshConversation()")
        await expect(first).to_contain_text("Yesterday")
