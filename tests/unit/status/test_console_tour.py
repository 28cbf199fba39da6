"""Every state of the console, looked at in Chromium: a screenshot of each (kept in
REFDESK_SCREENSHOTS when set; docs/console.png comes from here) and axe-core's WCAG 2.1 AA
check, with no serious or critical violation on any of them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import console_scenes as scene
import pytest
from console_browser import browser_page, needs_browser, serious_violations, serve, shoot, sign_in
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.status.resources import Resources

pytestmark = [*needs_browser, pytest.mark.timeout(240)]


async def sideways(page: Any) -> int:
    """How far the page or either pane scrolls sideways (0: everything fits)."""
    width: int = await page.evaluate(
        """Math.max(...[document.documentElement, ...document.querySelectorAll('.pane')]
            .map((el) => el.scrollWidth - el.clientWidth))"""
    )
    return width


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_every_console_state_reads_well_and_passes_axe(
    resources: Resources, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    from playwright.async_api import expect

    found: dict[str, list[dict[str, Any]]] = {}

    async def look(page: Any, name: str) -> None:
        await shoot(page, tmp_path, name)
        found[name] = await serious_violations(page)

    async with serve(resources) as base, browser_page() as page:
        await page.goto(f"{base}/dashboard")
        await look(page, "login")
        await page.fill("#staff_id", "mgarcia")
        await page.fill("#token", "not-my-token")
        await page.click("#sign-in button[type=submit]")
        await expect(page.locator("#sign-in .error")).to_contain_text("not recognised")
        await look(page, "login-refused")
        await sign_in(page, base)
        await page.click("button.set-status[data-status=Online]")
        await expect(page.locator("#my-status")).to_have_text("Online")
        await expect(page.locator("#queue-empty")).to_be_visible()
        await look(page, "queue-empty")

        await scene.morning(sessions)  # arrives while the page is open
        rows = page.locator("#queue tbody tr")
        await expect(rows).to_have_count(6, timeout=10_000)
        await look(page, "queue")

        # by keyboard: the link of a row opens it, and focus moves to its heading
        await page.focus(f'#queue tr[data-conversation-id="{scene.EMAIL}"] a.open-link')
        await page.keyboard.press("Enter")
        await expect(page.locator("#conv-title")).to_be_focused()
        await expect(page.locator("#conv-title")).to_contain_text("Alex Rivera")
        await page.keyboard.press("Tab")
        await expect(page.locator('[data-action="claim"]')).to_be_focused()
        await look(page, "console")  # the README's picture: queue and an email ticket

        await page.click(f'#queue tr[data-conversation-id="{scene.SMS}"] a.open-link')
        await expect(page.locator("#composer")).to_have_attribute("data-channel", "sms")
        await page.fill(
            "#reply-text",
            "Yes! NE library is open until 9 PM tonight. Printing is on the 2nd floor, "
            "10 cents a page. Log in to the print station with your TCC ID and password, "
            "then release the job at the printer.",
        )
        await look(page, "sms-composer")

        await page.click('button[data-dialog="transfer-dialog"]')
        await expect(page.locator("#transfer-dialog")).to_be_visible()
        await expect(page.locator("#transfer-department")).to_be_focused()
        await look(page, "transfer-dialog")
        await page.keyboard.press("Escape")
        await expect(page.locator('button[data-dialog="transfer-dialog"]')).to_be_focused()

        await page.click('button[data-dialog="close-dialog"]')
        await look(page, "close-dialog")
        await page.keyboard.press("Escape")
        # closed before typing behind it: while the modal is open the page behind it is inert
        await expect(page.locator('button[data-dialog="close-dialog"]')).to_be_focused()

        # a macro this conversation cannot fill is refused with the reason; one it can, inserted
        await page.fill("#reply-text", "")
        await page.select_option("#macro-select", "greeting")
        await page.click("#macro-insert")
        await expect(page.locator("#macro-error")).to_contain_text("the patron's first name")
        await expect(page.locator("#reply-text")).to_have_value("")
        await look(page, "macro-refused")
        await page.select_option("#macro-select", "counseling_referral")
        await page.click("#macro-insert")
        await expect(page.locator("#reply-text")).to_have_value(re.compile("https://"))
        await expect(page.locator("#macro-error")).to_be_empty()

        # the patron's earlier thread: closed, with a survey that could not be delivered
        await page.click("#earlier a")
        await expect(page.locator("#conversation")).to_have_attribute(
            "data-conversation-id", "sms-rooms"
        )
        failed = page.locator('#transcript li[data-role="automated"] .delivery')
        await expect(failed).to_have_text("Not delivered: twilio 21610: the patron replied STOP")
        await look(page, "closed-with-failed-delivery")

        # claimed, an SMS thread can move to email; the draft stays
        await page.click(f'#queue tr[data-conversation-id="{scene.SMS}"] a.open-link')
        await expect(page.locator("#conversation")).to_have_attribute(
            "data-conversation-id", scene.SMS
        )
        await page.click('[data-action="claim"]')
        await expect(page.locator("#action-status")).to_contain_text("Claimed")
        await page.fill("#reply-text", "Here are the print station steps in more detail.")
        await page.click('button[data-dialog="convert-dialog"]')
        await expect(page.locator("#convert-email")).to_be_focused()
        await page.fill("#convert-email", "sam.patron@my.tccd.edu")
        await look(page, "convert-dialog")
        await page.click("#convert-dialog button[type=submit]")
        await expect(page.locator("#composer")).to_have_attribute("data-channel", "email")
        await expect(page.locator("#reply-text")).to_have_value(re.compile("print station steps"))
        # its first email answers no email: no "Re:" (it said "Re:", and was sent so)
        await expect(page.locator("#reply-subject")).to_have_value(
            "Your question to the TCC Library"
        )
        # the number it was texted from stays in view (and in search)
        await expect(page.locator("#conv-head .facts")).to_contain_text("Texted from")
        await look(page, "converted-to-email")

        await page.click(f'#queue tr[data-conversation-id="{scene.CRISIS}"] a.open-link')
        await expect(page.locator(".banner-crisis")).to_be_visible()
        await look(page, "crisis-before-acknowledgement")

        await page.click(f'#queue tr[data-conversation-id="{scene.REVIEW}"] a.open-link')
        await expect(page.locator(".banner-review")).to_be_visible()
        await look(page, "possible-crisis")

        # a reply the mail relay has not taken for 12 minutes: not "Queued", and not to resend
        await scene.reply_not_sent(sessions)
        unsent_row = page.locator(f'#queue tr[data-conversation-id="{scene.EMAIL}"]')
        await expect(unsent_row.locator(".flag-unsent")).to_have_text("Reply not sent yet")
        await expect(unsent_row.locator(".waited")).not_to_have_text("Answered")
        await page.click(f'#queue tr[data-conversation-id="{scene.EMAIL}"] a.open-link')
        stuck = page.locator("#transcript .delivery-retrying")
        await expect(stuck).to_contain_text("Not sent yet: refdesk has tried since")
        await expect(stuck).to_contain_text("do not send it again")
        await stuck.evaluate("el => el.scrollIntoView({block: 'center'})")
        await look(page, "reply-not-sent-yet")

        await page.fill("#search-q", "laptop")
        await page.click("#queue-form button[type=submit]")
        await expect(page.locator("#queue-summary")).to_contain_text("1 conversation found")
        await look(page, "search")

        await page.set_viewport_size({"width": 820, "height": 1000})
        await page.click("#clear-search")
        await page.click(f'#queue tr[data-conversation-id="{scene.EMAIL}"] a.open-link')
        # in place before the picture (one taken mid-swap was blank)
        await expect(page.locator("#conv-title")).to_be_focused()
        await expect(page.locator("#conversation a.back-to-queue")).to_be_in_viewport()
        await look(page, "narrow")
        assert await sideways(page) == 0

        # a pasted link with no space in it wraps; it never pushes the columns off the page
        await scene.pasted_link(sessions)
        await page.set_viewport_size({"width": 1366, "height": 800})
        await page.goto(f"{base}/dashboard")
        await expect(
            page.locator(f'#queue tr[data-conversation-id="{scene.LINK}"]')
        ).to_be_visible()
        # the newest row is the last: the queue pane scrolled to its end (a live reload of the
        # rows keeps the pane where it is)
        await page.evaluate("document.getElementById('queue-pane').scrollTop = 1e6")
        await look(page, "long-link")
        assert await sideways(page) == 0
        assert await page.locator("#queue th", has_text="Waiting").is_visible()

        # a phone: rows as cards, and an open conversation above the queue
        await page.set_viewport_size({"width": 390, "height": 844})
        await page.goto(f"{base}/dashboard?channel=email")
        await look(page, "phone-queue-filtered")
        assert await sideways(page) == 0
        # no column heading on a phone: the time under the wait says it is the arrival
        await expect(page.locator("#queue td.waiting .arrived-word").first).to_be_visible()
        await page.goto(f"{base}/dashboard/c/{scene.CRISIS}")
        await expect(page.locator(".banner-crisis")).to_be_in_viewport()
        await look(page, "phone-crisis")
        assert await sideways(page) == 0
        assert page.js_errors == []
    assert {name: v for name, v in found.items() if v} == {}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_every_staff_page_state_reads_well_and_passes_axe(
    resources: Resources, tmp_path: Path
) -> None:
    """The admins' staff page: the list, the add form refusing what was typed, a token just
    issued, the confirm step before a deactivation, and the same at a phone's width and at 200%
    zoom (a 640-pixel-wide window)."""
    from playwright.async_api import expect

    found: dict[str, list[dict[str, Any]]] = {}

    async def look(page: Any, name: str) -> None:
        await shoot(page, tmp_path, name)
        found[name] = await serious_violations(page)
        assert await sideways(page) == 0, name

    async with serve(resources) as base, browser_page(1366, 900) as page:
        await sign_in(page, base, "dkim")
        await page.goto(f"{base}/dashboard/staff")
        await look(page, "staff-list")

        await page.fill("#add-id", "Ana Wilson")
        await page.fill("#add-email", "ana.wilson@")
        await page.click("#add-dept-reference")
        await page.click("#add-form button[type=submit]")
        await expect(page.locator("#add-id")).to_be_focused()  # the first field with an error
        await expect(page.locator("#id-error")).to_contain_text("lowercase letters")
        await look(page, "staff-add-error")

        await page.goto(f"{base}/dashboard/staff/mgarcia")
        await look(page, "staff-member")
        await page.fill("#issue-label", "NE laptop")
        await page.click(".issue-form button[type=submit]")
        await expect(page.locator("#issued")).to_be_focused()
        await look(page, "staff-token-issued")

        await page.goto(f"{base}/dashboard/staff/mgarcia/deactivate")
        await expect(page.locator("#confirm-heading")).to_be_focused()
        await look(page, "staff-deactivate-confirm")
        await page.click("#confirm-deactivate")
        await expect(page.locator("#notice")).to_contain_text("Deactivated Maria Garcia")
        await look(page, "staff-deactivated")

        await page.goto(f"{base}/dashboard/staff/dkim/deactivate")
        await look(page, "staff-deactivate-yourself")

        await page.set_viewport_size({"width": 640, "height": 900})  # 200% zoom of 1280
        await page.goto(f"{base}/dashboard/staff")
        await look(page, "staff-list-zoom-200")

        await page.set_viewport_size({"width": 420, "height": 900})
        await page.goto(f"{base}/dashboard/staff")
        await look(page, "staff-list-420")
        await page.goto(f"{base}/dashboard/staff/jnguyen")
        await look(page, "staff-member-420")
        await page.fill("#issue-label", "desk sign-in")
        await page.click(".issue-form button[type=submit]")
        await expect(page.locator("#issued")).to_be_focused()
        await look(page, "staff-token-issued-420")
        assert page.js_errors == []
    assert {name: v for name, v in found.items() if v} == {}
