"""The console's sound alerts, in Chromium: a librarian away from the screen (helping someone
at the desk, working in another window) heard nothing when a chat or a crisis arrived; the
tab's title and the screen reader's announcements reach only someone looking or listening to
the page. Tones are recorded where the page starts them (Web Audio oscillators), by an init
script that wraps the browser's AudioContext."""

from __future__ import annotations

from typing import Any

import console_scenes as scene
import pytest
from console_browser import browser_page, needs_browser, serve, sign_in
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.status.resources import Resources
from tests.eventually import eventually

pytestmark = [*needs_browser, pytest.mark.timeout(120)]

RECORD_TONES = """
(() => {
  window.__tones = [];
  const Real = window.AudioContext;
  window.AudioContext = class extends Real {
    createOscillator() {
      const tone = super.createOscillator();
      const start = tone.start.bind(tone);
      tone.start = (...args) => {
        window.__tones.push(tone.frequency.value);
        return start(...args);
      };
      return tone;
    }
  };
})();
"""
ARRIVAL, CRISIS = [660.0, 880.0], [988.0, 988.0, 988.0]


async def tones(page: Any) -> list[float]:
    found: list[float] = await page.evaluate("window.__tones")
    return found


async def heard(page: Any, expected: list[float]) -> bool:
    found = await tones(page)
    assert found == expected[: len(found)], found  # nothing else, nothing more
    return found == expected


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_chat_and_a_crisis_are_heard_and_the_sound_can_be_turned_off(
    resources: Resources, sessions: async_sessionmaker[AsyncSession]
) -> None:
    from playwright.async_api import expect

    async with serve(resources) as base, browser_page() as page:
        await page.context.add_init_script(script=RECORD_TONES)
        await sign_in(page, base)
        toggle = page.locator("#sound-toggle")
        await expect(toggle).to_have_attribute("aria-pressed", "true")
        await page.wait_for_timeout(1000)  # the reload that follows the live stream's "ready"
        assert await tones(page) == []

        await scene.chats(sessions)  # two chats arrive
        await eventually(lambda: heard(page, ARRIVAL), "the arrival's chime", timeout=10)

        await page.wait_for_timeout(2100)  # alerts are two seconds apart at least
        await scene.crisis(sessions)
        await eventually(lambda: heard(page, [*ARRIVAL, *CRISIS]), "the crisis's tones", timeout=10)

        await toggle.click()
        await expect(toggle).to_have_attribute("aria-pressed", "false")
        await expect(toggle).to_contain_text("Sound off")
        await page.wait_for_timeout(2100)
        await scene.sms(sessions)  # arrives, unheard
        await expect(page.locator(f'#queue tr[data-conversation-id="{scene.SMS}"]')).to_be_visible(
            timeout=10_000
        )
        await page.wait_for_timeout(500)
        assert await tones(page) == [*ARRIVAL, *CRISIS]

        await page.reload()  # remembered in this browser
        await expect(page.locator("#sound-toggle")).to_have_attribute("aria-pressed", "false")
        assert page.js_errors == []
