"""The deactivation's confirm step in Chromium, when the leaver holds a crisis: said apart, in
words an admin acts on (screenshots kept in REFDESK_SCREENSHOTS when set; axe-core's WCAG 2.1
AA check)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from console_browser import browser_page, needs_browser, serious_violations, serve, shoot, sign_in
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from status_fakes import arrive

from services.status.models import Conversation
from services.status.resources import Resources
from shared.events import Channel

pytestmark = [*needs_browser, pytest.mark.timeout(240)]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_confirm_step_names_a_crisis_the_leaver_holds(
    resources: Resources, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    from playwright.async_api import expect

    await arrive(sessions, "sms-held", channel=Channel.SMS, minutes_ago=12)
    await arrive(sessions, "chat-crisis", channel=Channel.CHAT, department="care-team", crisis=True)
    async with sessions() as session:
        for cid in ("sms-held", "chat-crisis"):
            conv = await session.get(Conversation, cid)
            assert conv is not None
            conv.assignee = "jnguyen"
        crisis = await session.get(Conversation, "chat-crisis")
        assert crisis is not None
        crisis.acknowledged_at, crisis.acknowledged_by = datetime.now(UTC), "jnguyen"
        await session.commit()
    async with serve(resources) as base, browser_page() as page:
        await sign_in(page, base, "dkim")
        await page.goto(f"{base}/dashboard/staff/jnguyen/deactivate")
        consequences = page.locator("ul.consequences")
        await expect(consequences).to_contain_text(
            "The 2 open conversations they have go back to the queue for a colleague to take."
            " One of them is a crisis: tell the CARE Team or a colleague on shift to take it now."
        )
        await shoot(page, tmp_path, "deactivate-confirm-with-a-crisis")
        assert await serious_violations(page) == []
