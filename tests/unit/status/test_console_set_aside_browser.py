"""Setting a conversation aside as not a question (spam, a wrong number), in Chromium: the
close dialog offers the topic, and once it is picked says no survey goes and its button no
longer promises one (screenshots kept in REFDESK_SCREENSHOTS when set; axe-core's WCAG 2.1 AA
check)."""

from __future__ import annotations

from pathlib import Path

import console_scenes as scene
import pytest
from console_browser import browser_page, needs_browser, serious_violations, serve, shoot, sign_in
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.status.resources import Resources

pytestmark = [*needs_browser, pytest.mark.timeout(240)]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_wrong_number_set_aside_is_closed_without_a_survey(
    resources: Resources, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    from playwright.async_api import expect

    await scene.texts_reported(sessions, filtered=False)
    await scene.sms(sessions)
    async with serve(resources) as base, browser_page() as page:
        await sign_in(page, base)
        await page.goto(f"{base}/dashboard/c/{scene.TEXTS}")
        await page.click('button[data-dialog="close-dialog"]')
        dialog = page.locator("#close-dialog")
        submit = dialog.locator("#close-submit")
        await expect(submit).to_have_text("Close and send survey")
        await expect(dialog.locator("#close-survey-note")).to_contain_text("survey by text")
        await dialog.get_by_label("Not a question (spam, wrong number, test)").check()
        await expect(dialog.locator("#close-aside-note")).to_be_visible()
        await expect(dialog.locator("#close-survey-note")).to_be_hidden()
        await expect(submit).to_have_text("Close without survey")
        await shoot(page, tmp_path, "close-set-aside")
        assert await serious_violations(page) == []
        # changing one's mind puts the survey back
        await dialog.get_by_label("Research").check()
        await expect(submit).to_have_text("Close and send survey")
        await expect(dialog.locator("#close-aside-note")).to_be_hidden()
        await dialog.get_by_label("Not a question (spam, wrong number, test)").check()
        await submit.click()
        await expect(page.locator("#action-status")).to_have_text("Closed.")
        # a text nobody has answered yet: no survey either way, and the note still says the
        # statistics leave it out
        await page.goto(f"{base}/dashboard/c/{scene.SMS}")
        await page.click('button[data-dialog="close-dialog"]')
        await expect(submit).to_have_text("Close without survey")
        await dialog.get_by_label("Not a question (spam, wrong number, test)").check()
        await expect(dialog.locator("#close-aside-note")).to_have_text(
            "Set aside as not a question: left out of the desk statistics."
        )
        await expect(submit).to_have_text("Close without survey")
        assert page.js_errors == []
