"""Mail a mail system sent, and CARE Team alerts that did not get through, in Chromium: an
out-of-office reply and a delay report read as muted system lines named in words, the delayed
email says so, and the failure report that arrives while the conversation is open marks the
email "Not delivered" with the reason, in the style of an undelivered text, without a reload;
the queue still shows the patron's words, and a conversation only a bounce opened is not on it.
A CARE Team alert refused, or not out minutes after it was asked for, flags the crisis's row.
axe-core finds nothing serious, and screenshots are kept (REFDESK_SCREENSHOTS)."""

from __future__ import annotations

from pathlib import Path

import console_scenes as scene
import pytest
from console_browser import browser_page, needs_browser, serious_violations, serve, shoot, sign_in
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from status_fakes import T0

from services.status.resources import Resources
from services.status.sweep import flag_unsent_care_alerts
from shared.events import DeliveryState

pytestmark = [*needs_browser, pytest.mark.timeout(120)]

MUTED = "rgb(87, 96, 106)"  # --muted
INK = "rgb(31, 35, 40)"  # --ink


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_automatic_replies_and_bounces_read_as_system_lines(
    resources: Resources, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    from playwright.async_api import expect

    await scene.bounced_email(sessions, failed=False)
    async with serve(resources) as base, browser_page() as page:
        await sign_in(page, base)
        # the queue: the patron's words, and no row for the conversation only a bounce opened
        row = page.locator(f'#queue tbody tr[data-conversation-id="{scene.BOUNCED}"]')
        await expect(row.locator(".preview")).to_contain_text("Nurse staffing")
        await expect(
            page.locator(f'#queue tr[data-conversation-id="{scene.ORPHAN}"]')
        ).to_have_count(0)
        await page.goto(f"{base}/dashboard/c/{scene.BOUNCED}")
        transcript = page.locator("#transcript")
        oof = transcript.locator(f'li[data-line-id="auto-{scene.BOUNCED}-1"]')
        delay = transcript.locator(f'li[data-line-id="auto-{scene.BOUNCED}-2"]')
        first = transcript.locator(f'li[data-line-id="reply-{scene.BOUNCED}-1"] .delivery')
        second = transcript.locator(f'li[data-line-id="reply-{scene.BOUNCED}-2"] .delivery')
        await expect(oof).to_have_attribute("data-role", "automatic")
        await expect(oof.locator(".who")).to_have_text("Automatic reply")
        await expect(oof.locator(".tag-automatic")).to_have_text(
            "Sent by a mail system, not the patron"
        )
        await expect(oof.locator(".text")).to_contain_text("away at clinicals")
        await expect(delay.locator(".who")).to_have_text("Delivery delayed")
        await expect(first).to_have_text("Sent")
        await expect(second).to_have_text("Delayed: the mail system is still trying")
        await expect(second.locator("svg.icon-clock")).to_have_count(1)
        looks = await page.evaluate(
            """(ids) => ids.map((id) => {
                const bubble = document.querySelector(
                    `#transcript li[data-line-id="${id}"] .bubble`);
                const text = bubble.querySelector(".text");
                return [getComputedStyle(text).color, getComputedStyle(bubble).borderTopStyle];
            })""",
            [f"i-{scene.BOUNCED}-50", f"auto-{scene.BOUNCED}-1"],
        )
        assert looks == [[INK, "solid"], [MUTED, "dashed"]]  # the patron's, then the system's
        await transcript.scroll_into_view_if_needed()
        await shoot(page, tmp_path, "automatic-mail-delayed")

        await scene.bounce_arrives(sessions)  # the failure report, while the conversation is open
        await expect(second).to_have_text(
            "Not delivered: the address does not exist", timeout=10_000
        )
        await expect(second.locator("svg.icon-alert")).to_have_count(1)
        failure = transcript.locator(f'li[data-line-id="auto-{scene.BOUNCED}-3"]')
        await expect(failure.locator(".who")).to_have_text("Delivery failure report")
        await expect(failure.locator(".subject")).to_contain_text("Undelivered Mail")
        await expect(page.locator("#announcer")).to_have_text("Delivery failure report received")
        badge = await second.evaluate("(el) => getComputedStyle(el).backgroundColor")
        assert badge == "rgb(253, 232, 232)"  # the crisis tint, as an undelivered text
        await expect(row.locator(".preview")).to_contain_text("Nurse staffing")
        await failure.scroll_into_view_if_needed()
        await shoot(page, tmp_path, "automatic-mail-bounced")
        assert await serious_violations(page) == []
        assert page.js_errors == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_bounced_care_team_alert_reads_not_delivered_on_the_timeline(
    resources: Resources, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    from playwright.async_api import expect

    await scene.care_alert_bounced(sessions)
    async with serve(resources) as base, browser_page() as page:
        await sign_in(page, base)
        await page.goto(f"{base}/dashboard/c/{scene.CRISIS}")
        alerted = page.locator(f'#transcript li[data-line-id="n-{scene.CRISIS}-crisis-alert"]')
        # the line no longer says the team was alerted, and the conversation says what to do
        await expect(alerted.locator(".event")).to_contain_text("The CARE Team's alert email")
        await expect(alerted.locator(".event")).not_to_contain_text("CARE Team alerted")
        await expect(alerted.locator(".delivery")).to_have_text(
            "Not delivered: the address does not exist"
        )
        await expect(alerted.locator("svg.icon-alert")).to_have_count(1)
        notice = page.locator("#conv-head .banner-care-alert")
        await expect(notice.locator("h3")).to_have_text("The CARE Team was not alerted")
        await expect(notice.get_by_role("link")).to_have_attribute(
            "href", "https://cm.maxient.com/reportingform.php?TarrantCCD"
        )
        row = page.locator(f'#queue tbody tr[data-conversation-id="{scene.CRISIS}"]')
        await expect(row.locator(".flag-crisis").nth(1)).to_have_text("CARE Team not alerted")
        await shoot(page, tmp_path, "care-alert-bounced")
        await alerted.scroll_into_view_if_needed()
        await shoot(page, tmp_path, "care-alert-bounced-timeline")
        assert await serious_violations(page) == []
        assert page.js_errors == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_care_team_alert_not_out_yet_flags_the_crisis_row_until_it_goes_out(
    resources: Resources, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    from playwright.async_api import expect

    await scene.care_alert_not_out(sessions)
    async with sessions() as session:  # the status sweep, 5.9 minutes after the alert was asked
        await flag_unsent_care_alerts(session=session, now=T0)
        await session.commit()
    async with serve(resources) as base, browser_page() as page:
        await sign_in(page, base)
        await page.goto(f"{base}/dashboard/c/{scene.CRISIS}")
        row = page.locator(f'#queue tbody tr[data-conversation-id="{scene.CRISIS}"]')
        late = row.locator(".flag-crisis", has_text="CARE Team alert not sent yet")
        await expect(late).to_have_count(1)
        notice = page.locator("#conv-head .banner-care-alert")
        heading = "The CARE Team's alert has not gone out yet"
        await expect(notice.locator("h3")).to_have_text(heading)
        await shoot(page, tmp_path, "care-alert-not-out-yet")
        assert await serious_violations(page) == []
        await scene._apply(sessions, scene.care_alert_outcome(DeliveryState.SENT))
        await expect(late).to_have_count(0, timeout=10_000)  # the live feed redraws the row
        await expect(row.locator(".flag-crisis")).to_have_count(1)  # "Crisis" alone
        assert page.js_errors == []
