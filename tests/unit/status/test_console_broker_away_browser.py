"""The console while the message broker does not answer, in Chromium: the desk still works
from its database, and a banner says patrons' new messages are delayed and that what staff do
is saved and goes out once the broker is back; it goes when the broker answers again
(screenshots kept in REFDESK_SCREENSHOTS when set; axe-core's WCAG 2.1 AA check)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import console_scenes as scene
import pytest
from console_browser import browser_page, needs_browser, serious_violations, serve, shoot, sign_in
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from status_fakes import PingedBroker

from services.status import resources as resources_module
from services.status.resources import Resources

pytestmark = [*needs_browser, pytest.mark.timeout(240)]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_broker_outage_is_said_above_the_queue_and_unsaid_when_it_is_back(
    resources: Resources,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """During an outside review's broker outage the console said nothing until a librarian
    pressed Send (the database's outage had a banner within 25 s)."""
    from playwright.async_api import expect

    monkeypatch.setattr(resources_module, "BROKER_CHECK_S", 0.0)
    broker = PingedBroker()
    await scene.morning(sessions)
    async with serve(replace(resources, broker=broker)) as base, browser_page() as page:  # type: ignore[arg-type]
        await sign_in(page, base)
        banner = page.locator("#broker-banner")
        await expect(banner).to_contain_text("New patron messages are delayed", timeout=15000)
        await expect(banner).to_contain_text("you need not send them again")
        await expect(page.locator("#queue-pane")).to_contain_text(scene.SMS_TEXT[:30])
        await shoot(page, tmp_path, "broker-away")
        assert await serious_violations(page) == []
        broker.up = True
        await expect(banner).to_be_empty(timeout=15000)
        await expect(banner).to_be_hidden()
        assert page.js_errors == []
