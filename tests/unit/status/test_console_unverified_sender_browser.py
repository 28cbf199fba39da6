"""An email whose sender failed the receiving mail system's checks, at the desk: its
conversation warns where staff reply that the From may be forged (it had been shown and
answered as the address it names, which may be a forger's victim: an outside review).
Screenshot kept in REFDESK_SCREENSHOTS when set; axe-core's WCAG 2.1 AA check."""

from __future__ import annotations

from pathlib import Path

import pytest
from console_browser import browser_page, needs_browser, serious_violations, serve, shoot, sign_in
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from status_fakes import patron_writes

from services.status.handlers import Assigning, apply
from services.status.resources import Resources
from shared.events import Channel, Patron

pytestmark = [*needs_browser, pytest.mark.timeout(240)]
FORGED = "email-forged-1"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_conversation_whose_sender_may_be_forged_says_so(
    resources: Resources, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    from playwright.async_api import expect

    forged = patron_writes(
        FORGED,
        "Please bill my account (TCC ID 1112223) for the lost copy of Dune.",
        channel=Channel.EMAIL,
        contact="victim@my.tccd.edu",
    ).model_copy(update={"patron": Patron(contact="victim@my.tccd.edu", unverified=True)})
    genuine = patron_writes("email-genuine-1", "Do you have Dune?", channel=Channel.EMAIL)
    async with sessions() as session:
        for n, data in enumerate((forged, genuine)):
            await apply(session, event_id=f"e-{n}", data=data, assigning=Assigning())
        await session.commit()
    async with serve(resources) as base, browser_page() as page:
        await sign_in(page, base)
        await page.goto(f"{base}/dashboard/c/{FORGED}")
        banner = page.locator(".banner-unverified")
        await expect(banner).to_contain_text("could not verify who sent this email")
        await shoot(page, tmp_path, "conversation-sender-unverified")
        assert await serious_violations(page) == []
        await page.goto(f"{base}/dashboard/c/email-genuine-1")
        await expect(page.locator("#conv-title")).to_be_visible()
        await expect(page.locator(".banner-unverified")).to_have_count(0)
