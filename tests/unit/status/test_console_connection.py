"""What the console says while the desk is away, found in an outside librarian's shift: the
status service went down and the page went on showing the queue as if it were live."""

from __future__ import annotations

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

from services.status.resources import Resources

pytestmark = [*needs_browser, pytest.mark.timeout(120)]


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
