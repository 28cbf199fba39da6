"""The dashboard in headless Chromium: sign in, go Away, see a new conversation arrive live."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from status_kafka_helpers import send

from shared.events import Channel, InteractionReceived, Patron
from shared.topics import INTERACTIONS

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(240),
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="BROWSER TEST SKIPPED: /usr/bin/chromium is missing (apt-get install -y chromium)",
    ),
]


async def test_sign_in_go_away_and_see_a_new_sms_arrive(
    status_kafka: str,
    status_server: str,
) -> None:
    from playwright.async_api import async_playwright, expect

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = await browser.new_page()
            await page.goto(f"{status_server}/dashboard")
            await page.fill("#staff_id", "mgarcia")
            await page.fill("#token", "dev-mgarcia-token")
            await page.click("#sign-in button[type=submit]")
            await expect(page.locator("#me")).to_have_attribute("data-staff-id", "mgarcia")

            await page.click("button.set-status[data-status=Online]")
            await expect(page.locator("#my-status")).to_have_text("Online")
            await page.click("button.set-status[data-status=Away]")
            await expect(page.locator("#my-status")).to_have_text("Away")
            # the live stream opens after sign-in reloads the page: a loaded machine takes longer
            await expect(page.locator(".console")).to_have_attribute(
                "data-live", "on", timeout=30_000
            )

            cid = f"browser-{uuid.uuid4()}"
            await send(
                status_kafka,
                INTERACTIONS.name,
                key=cid,
                data=InteractionReceived(
                    interaction_id=f"i-{cid}",
                    conversation_id=cid,
                    channel=Channel.SMS,
                    provider="twilio",
                    provider_message_id=f"SM-{cid}",
                    patron=Patron(contact="+18175550177"),
                    text="is the library open?",
                    received_at=datetime.now(UTC),
                ),
            )
            row = page.locator(f'#queue tr[data-conversation-id="{cid}"]')
            await expect(row).to_be_visible(timeout=60_000)  # streamed in, no reload
            await expect(row.locator(".channel-label")).to_have_text("SMS")
            await expect(row.locator(".channel svg.icon-sms")).to_be_attached()  # no emoji font
        finally:
            await browser.close()
