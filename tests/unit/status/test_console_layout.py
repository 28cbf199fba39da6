"""Where the console's words and places were off in an outside librarian's shift: the tab's
title once no conversation is open, the composer's STOP words beside the timeline's, the phone
or email field's example cut off, the crisis bar over the queue's heading, and no way back to
the queue when the open conversation sits above it in one column."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import console_scenes as scene
import pytest
from console_browser import browser_page, needs_browser, serious_violations, serve, shoot, sign_in
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.status.resources import Resources

pytestmark = [*needs_browser, pytest.mark.timeout(120)]

QUEUE_TITLE = "Reference desk · TCC Libraries"


async def open_row(page: Any, cid: str) -> None:
    await page.click(f'#queue tbody tr[data-conversation-id="{cid}"] a.open-link')
    await page.wait_for_selector(f'#conversation[data-conversation-id="{cid}"]')


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_title_is_the_queues_once_no_conversation_is_open(
    resources: Resources, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """After the librarian's own transfer the tab still read "Chat conversation · ..."."""
    from playwright.async_api import expect

    await scene.chats(sessions)
    async with serve(resources) as base, browser_page() as page:
        await sign_in(page, base)
        await open_row(page, scene.CHAT)
        await expect(page).to_have_title(f"Chat conversation · {QUEUE_TITLE}")
        await page.click('button[data-dialog="transfer-dialog"]')
        await page.select_option("#transfer-department", "nw-circulation")
        await page.click("#transfer-dialog button[type=submit]")
        await expect(page.locator("#conversation-pane h2")).to_have_text(
            "Transferred to NW Circulation"
        )
        await expect(page).to_have_title(QUEUE_TITLE)

        await page.goto(f"{base}/dashboard/c/{scene.CITE}")
        await expect(page).to_have_title(f"Chat conversation · {QUEUE_TITLE}")
        await page.evaluate("Desk.openConversation('no-such-conversation')")
        await expect(page.locator("#conversation-pane h2")).to_contain_text("could not be found")
        await expect(page).to_have_title(QUEUE_TITLE)
        assert page.js_errors == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_composer_names_the_same_opt_in_words_as_the_timeline(
    resources: Resources, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """After a STOP the timeline said "START, YES or INICIO" and the composer "START or
    YES"."""
    from playwright.async_api import expect

    await scene.texts_reported(sessions)
    await scene.opted_out(sessions, scene.TEXTS)
    async with serve(resources) as base, browser_page(1366, 768) as page:
        await sign_in(page, base)
        await open_row(page, scene.TEXTS)
        warning = page.locator("#opted-out")
        await expect(warning).to_contain_text("until the patron texts START, YES or INICIO")
        line = page.locator("#transcript li", has_text="opted out of texts")
        words = re.compile(r"until (?:it|the patron) texts ([A-Z, ]+ or [A-Z]+)")
        timeline = words.search(await line.inner_text())
        composer = words.search(await warning.inner_text())
        assert timeline and composer and timeline.group(1) == composer.group(1)
        await warning.scroll_into_view_if_needed()
        await shoot(page, tmp_path, "opted-out-words")
        assert page.js_errors == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_one_column_has_a_way_back_to_the_queue(
    resources: Resources, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """At an 800-pixel window the open conversation sits above the queue, with no way back to
    it but scrolling past the whole conversation."""
    from playwright.async_api import expect

    await scene.morning(sessions)
    async with serve(resources) as base, browser_page(800, 900) as page:
        await sign_in(page, base)
        await open_row(page, scene.EMAIL)
        back = page.locator("#conversation a.back-to-queue")
        await expect(back).to_be_visible()
        await expect(back).to_be_in_viewport()
        await shoot(page, tmp_path, "narrow-800-conversation")
        assert await serious_violations(page) == []
        await back.click()
        link = page.locator(f'#queue tbody tr[data-conversation-id="{scene.EMAIL}"] a.open-link')
        await expect(link).to_be_focused()
        await expect(page.locator("#conversation-pane h2")).to_have_text("No conversation open")
        await expect(page).to_have_title(QUEUE_TITLE)
        assert page.url.endswith("/dashboard")
        # the focused row clear of the crisis bar that stays above the page
        bar = await page.locator(".desk-bars").bounding_box()
        row = await link.bounding_box()
        assert bar and row and row["y"] >= bar["y"] + bar["height"]
        await shoot(page, tmp_path, "narrow-800-back-to-queue")
        await page.go_back()  # Back opens the conversation again
        await expect(page.locator("#conversation")).to_have_attribute(
            "data-conversation-id", scene.EMAIL
        )

        await page.set_viewport_size({"width": 1366, "height": 768})
        await expect(page.locator("#conversation a.back-to-queue")).to_be_hidden()
        assert page.js_errors == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_queue_pane_reads_whole_at_a_laptops_size(
    resources: Resources, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """At 1366x768 the phone or email field read "817-555-0142 o", and the crisis bar covered
    the queue's heading once the queue was scrolled to its end (the page scrolled under it)."""
    from playwright.async_api import expect

    await scene.morning(sessions)
    await scene.pasted_link(sessions)
    async with serve(resources) as base, browser_page(1366, 768) as page:
        await sign_in(page, base)
        await page.click("details.more-search summary")
        field = page.locator("#search-contact")
        await expect(field).to_be_visible()
        fits = await field.evaluate(
            """(el) => {
                const s = getComputedStyle(el);
                const pen = document.createElement("canvas").getContext("2d");
                pen.font = `${s.fontSize} ${s.fontFamily}`;
                const pad = parseFloat(s.paddingLeft) + parseFloat(s.paddingRight);
                const room = el.clientWidth - pad;
                return pen.measureText(el.placeholder).width <= room;
            }"""
        )
        assert fits
        await shoot(page, tmp_path, "queue-search-1366")
        await expect(page.locator("#crisis-bar")).to_be_visible()

        await page.mouse.move(300, 600)
        for _ in range(10):
            await page.mouse.wheel(0, 400)
        await expect(page.locator("#queue-pane .whos-online")).to_be_in_viewport()
        # the queue scrolled, not the page: nothing slid under the bar
        assert await page.evaluate("document.scrollingElement.scrollTop") == 0
        heading = await page.locator("#queue-pane").bounding_box()
        bar = await page.locator(".desk-bars").bounding_box()
        assert heading and bar and heading["y"] >= bar["y"] + bar["height"]
        await shoot(page, tmp_path, "queue-scrolled-1366")
        assert page.js_errors == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_crisis_transfer_offers_no_prepared_handoff(
    resources: Resources, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """An acknowledged crisis moved on: the dialog had prefilled "...will reply in this chat to
    help with your citations" for a patron who had written of taking pills (an outside
    patron-safety review). It offers an empty box and says nothing goes unless written."""
    from playwright.async_api import expect

    await scene.crisis(sessions)
    async with serve(resources) as base, browser_page(1366, 768) as page:
        await sign_in(page, base)  # a reference librarian
        await open_row(page, scene.CRISIS)
        await page.click('button[data-action="acknowledge"]')
        await expect(page.locator('button[data-dialog="transfer-dialog"]')).to_be_visible()
        await page.click('button[data-dialog="transfer-dialog"]')
        await page.select_option("#transfer-department", "writing-center")
        await expect(page.locator("#transfer-text")).to_have_value("")
        await expect(page.locator("#transfer-hint")).to_contain_text(
            "no prepared hand-off goes to them"
        )
        await shoot(page, tmp_path, "crisis-transfer-dialog")
        await page.click("#transfer-dialog button[type=submit]")
        await expect(page.locator("#conversation-pane")).to_contain_text(
            "Transferred to Writing Center. No message went to the patron."
        )
        await expect(page.locator("#transcript")).to_contain_text("Transferred to Writing Center")
        await expect(page.locator("#transcript")).not_to_contain_text("will reply in this chat")
        await shoot(page, tmp_path, "crisis-transferred")
        await shoot(page, tmp_path, "crisis-transferred")
        assert page.js_errors == []
