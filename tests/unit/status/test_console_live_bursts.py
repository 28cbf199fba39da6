"""Live updates on a busy desk, in Chromium. The events carry the changed queue rows, so the
unfiltered queue places a burst of new conversations without fetching anything and announces
them (crisis included). A filtered queue fetches rows, and a burst there is one reload of the
queue instead of a row fetch per change; a lone change afterwards is one row fetch again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import console_scenes as scene
import pytest
from console_browser import browser_page, needs_browser, serve, shoot, sign_in
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.status.resources import Resources
from shared.events import Channel

pytestmark = [*needs_browser, pytest.mark.timeout(120)]

BURST = 12


def texts(
    first: int, count: int, *, crisis_at: int | None = None, overnight: bool = False
) -> list[Any]:
    """New SMS conversations, each a message and its routing (one of them a crisis)."""
    events: list[Any] = []
    for n in range(first, first + count):
        cid = f"burst-{n}"
        events.append(
            scene.message(
                cid, Channel.SMS, f"question {n}", minutes_ago=1, contact=f"+1817555{n:04d}"
            )
        )
        crisis = n == crisis_at
        events.append(
            scene.routed(cid, Channel.SMS, minutes_ago=1, crisis=crisis, overnight=overnight)
        )
    return events


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_bursts_of_changes_cost_no_fetch_per_change(
    resources: Resources, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    from playwright.async_api import expect

    await scene.chats(sessions)
    async with serve(resources) as base, browser_page() as page:
        await sign_in(page, base)
        queue = page.locator("#queue tbody tr")
        announcer = page.locator("#announcer")
        await expect(queue).to_have_count(2)
        fetched: list[str] = []
        page.on(
            "request",
            lambda r: (
                fetched.append(r.url.split("/dashboard/fragments/")[1].split("?")[0])
                if "/dashboard/fragments/" in r.url
                else None
            ),
        )

        # the whole queue: the rows come with the events
        await scene._apply(sessions, *texts(0, BURST, crisis_at=3))
        await expect(queue).to_have_count(2 + BURST)
        # a crisis among them: said at once (the assertive region), not after the current speech
        await expect(page.locator("#announcer-urgent")).to_have_text(
            f"{BURST} new conversations in the queue, 1 flagged crisis or possible crisis."
        )
        await expect(queue.first.locator(".flag-crisis")).to_have_text("Crisis")
        await expect(page.locator("#queue-summary")).to_have_text(f"{2 + BURST} open")
        await shoot(page, tmp_path, "burst")
        assert fetched == []

        # a filtered queue fetches what changed: a burst is one reload of the queue
        await page.check("input[name=unassigned]")
        await expect(page.locator("#queue-summary")).to_have_text(f"{2 + BURST} open (filtered)")
        fetched.clear()
        await scene._apply(sessions, *texts(100, BURST))
        await expect(queue).to_have_count(2 + 2 * BURST)
        await expect(announcer).to_have_text(f"{BURST} new conversations in the queue.")
        assert fetched == ["queue"]

        # quiet again: a lone text is its own row fetch once the busy window has passed
        await page.wait_for_timeout(1500)
        fetched.clear()
        await scene._apply(sessions, *texts(200, 1))
        await expect(queue).to_have_count(3 + 2 * BURST)
        await expect(announcer).to_have_text("New SMS conversation in the queue.")
        assert fetched == ["row/burst-200"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_burst_that_reaches_the_page_in_pieces_is_said_as_one_count(
    resources: Resources, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Ten texts in a second reach the page in several batches: each batch's count replaced
    the last, so a screen reader said "4 new conversations", never ten."""
    from playwright.async_api import expect

    await scene.chats(sessions)
    async with serve(resources) as base, browser_page() as page:
        await sign_in(page, base)
        await expect(page.locator("#queue tbody tr")).to_have_count(2)
        await page.wait_for_selector(".console[data-live='on']")
        said: list[str] = []
        await page.expose_function("heard", lambda text: said.append(text))
        await page.evaluate(
            """() => new MutationObserver(() => {
                const text = document.getElementById("announcer").textContent;
                if (text) window.heard(text);
            }).observe(document.getElementById("announcer"), {childList: true, subtree: true,
                                                               characterData: true})"""
        )
        for first in (0, 4, 8):
            await scene._apply(sessions, *texts(300 + first, 4))
            await page.wait_for_timeout(300)
        await expect(page.locator("#queue tbody tr")).to_have_count(14)
        await expect(page.locator("#announcer")).to_have_text(
            "12 new conversations in the queue.", timeout=10_000
        )
        assert said == ["12 new conversations in the queue."], said
        assert page.js_errors == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_the_page_never_scrolls_however_long_the_queue(
    resources: Resources, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """The panes scroll, never the page: each overnight row's words for screen readers
    ("Overnight: "), placed against the page, had stretched it, and the wheel or End scrolled
    the crisis bar and the top bar out of sight."""
    from playwright.async_api import expect

    await scene._apply(sessions, *texts(400, 20, overnight=True))
    async with serve(resources) as base, browser_page(1366, 768) as page:
        await sign_in(page, base)
        await expect(page.locator("#queue tbody tr")).to_have_count(20)
        await page.mouse.move(600, 20)  # over the top bar
        await page.mouse.wheel(0, 2000)
        await page.keyboard.press("End")
        heights = await page.evaluate(
            "[document.scrollingElement.scrollHeight, window.innerHeight, window.scrollY]"
        )
        assert heights[0] <= heights[1] and heights[2] == 0, heights
        await shoot(page, tmp_path, "long-queue")
