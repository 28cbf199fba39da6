"""A text's delivery in Chromium: the carrier's report reaches an open conversation without a
reload, "Delivered" reads quietly and "Not delivered" with the carrier's reason stands out,
axe-core finds nothing serious, and a screenshot is kept (REFDESK_SCREENSHOTS)."""

from __future__ import annotations

from pathlib import Path

import console_scenes as scene
import pytest
from console_browser import browser_page, needs_browser, serious_violations, serve, shoot, sign_in
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.status.resources import Resources

pytestmark = [*needs_browser, pytest.mark.timeout(120)]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_an_open_text_thread_shows_what_the_carrier_reported(
    resources: Resources, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    from playwright.async_api import expect

    await scene.texts_reported(sessions, filtered=False)
    async with serve(resources) as base, browser_page() as page:
        await sign_in(page, base)
        await page.goto(f"{base}/dashboard/c/{scene.TEXTS}")
        first = page.locator('#transcript li[data-line-id="reply-sms-texts-1"] .delivery')
        second = page.locator('#transcript li[data-line-id="reply-sms-texts-2"] .delivery')
        await expect(first).to_have_text("Delivered")
        await expect(first.locator("svg.icon-check")).to_have_count(1)
        await expect(second).to_have_text("Sent")

        await scene.carrier_reports(sessions)  # arrives while the conversation is open
        await expect(second).to_have_text("Not delivered: filtered by the carrier", timeout=10_000)
        await expect(second.locator("svg.icon-alert")).to_have_count(1)
        colours = await page.evaluate(
            """[1, 2].map((n) => {
                const badge = document.querySelector(
                    `#transcript li[data-line-id="reply-sms-texts-${n}"] .delivery`);
                return getComputedStyle(badge).backgroundColor; })"""
        )
        assert colours[0] == "rgba(0, 0, 0, 0)"  # quiet: no badge behind "Delivered"
        assert colours[1] == "rgb(253, 232, 232)"  # the crisis tint, as a failed send
        await page.locator("#transcript").scroll_into_view_if_needed()
        await shoot(page, tmp_path, "sms-delivery")
        assert await serious_violations(page) == []
        assert page.js_errors == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_composer_warns_before_texting_a_number_that_replied_stop(
    resources: Resources, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    from playwright.async_api import expect

    await scene.texts_reported(sessions, filtered=False)
    await scene.opted_out(sessions, scene.TEXTS)
    async with serve(resources) as base, browser_page() as page:
        await sign_in(page, base)
        await page.goto(f"{base}/dashboard/c/{scene.TEXTS}")
        warning = page.locator("#opted-out")
        await expect(warning).to_be_visible()
        await expect(warning).to_contain_text("This number replied STOP")
        await expect(page.locator("#reply-text")).to_be_editable()
        await warning.scroll_into_view_if_needed()
        await shoot(page, tmp_path, "sms-opted-out")
        assert await serious_violations(page) == []
        # the patron texts START while the librarian is writing: the warning goes, the draft stays
        await page.fill("#reply-text", "Your hold is ready")
        await scene.opted_out(sessions, scene.TEXTS, keyword="START")
        await expect(warning).to_have_count(0, timeout=10_000)
        await expect(page.locator("#reply-text")).to_have_value("Your hold is ready")
        assert page.js_errors == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_draft_outlives_a_colleagues_claim(
    resources: Resources, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """A librarian typing a reply when a colleague claimed the conversation lost the words:
    the reply box went, and with it the draft (a librarian-shift probe)."""
    import httpx
    from playwright.async_api import expect

    await scene.sms(sessions)
    draft = "The NE library is open until 9 tonight; the printers are on the 2nd floor."
    async with serve(resources) as base, browser_page() as page:
        await sign_in(page, base)
        await page.goto(f"{base}/dashboard/c/{scene.SMS}")
        await page.fill("#reply-text", draft)
        async with httpx.AsyncClient(base_url=base) as colleague:
            claimed = await colleague.post(
                f"/conversations/{scene.SMS}/claim",
                headers={"Authorization": "Bearer dev-jnguyen-token"},
            )
            assert claimed.status_code == 200, claimed.text
        await expect(page.locator("#reply-text")).to_have_count(0, timeout=10_000)
        await expect(page.locator("#note-text")).to_have_value(draft)
        await expect(page.locator("#note-text")).to_be_visible()
        await expect(page.locator("#action-status")).to_contain_text("unsent reply")
        await shoot(page, tmp_path, "draft-kept")
        assert page.js_errors == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_background_tab_counts_new_conversations_in_its_title(
    resources: Resources, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Nothing outside the page told a librarian working in another tab that a chat, or a
    crisis, had arrived (a librarian-shift probe)."""
    from playwright.async_api import expect

    await scene.sms(sessions)
    async with serve(resources) as base, browser_page() as page:
        await sign_in(page, base)
        title = await page.title()
        await page.evaluate(
            "Object.defineProperty(document, 'hidden', {value: true, configurable: true})"
        )
        await scene.crisis(sessions)  # arrives while the tab is in the background
        await expect(page).to_have_title(f"(!) (1) {title}", timeout=10_000)
        await page.evaluate(
            """Object.defineProperty(document, 'hidden', {value: false, configurable: true});
            document.dispatchEvent(new Event('visibilitychange'))"""
        )
        await expect(page).to_have_title(title)
        assert page.js_errors == []
