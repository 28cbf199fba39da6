"""The reports page in headless Chromium: a supervisor sees the heat map and downloads the CSV,
plain staff are refused, and axe-core finds no serious or critical WCAG 2.1 A/AA violation."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path

import pytest
from console_browser import browser_page, needs_browser, serious_violations, serve, shoot, sign_in
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from test_status_stats import DAYS, START, feed, generate, in_time_order

from services.status.resources import Resources

pytestmark = [*needs_browser, pytest.mark.timeout(240)]

RANGE = f"?from={START.date().isoformat()}&to={(START + timedelta(days=DAYS)).date().isoformat()}"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: the page reads what the API reads, and the API runs on both backends."""
    return f"sqlite+aiosqlite:///{tmp_path / 'status.db'}"


async def test_supervisor_sees_the_heat_map_and_downloads_the_csv(
    resources: Resources, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    from playwright.async_api import expect

    truths = generate(120)
    await feed(sessions, in_time_order(truths))
    async with serve(resources) as base, browser_page(1280, 900) as page:
        await sign_in(page, base, "lokafor")
        await page.goto(f"{base}/dashboard/reports{RANGE}")
        heat = page.locator("svg#heatmap")
        await heat.wait_for()
        assert await heat.get_attribute("role") == "img"
        assert await page.locator("svg#heatmap rect.cell").count() == 7 * 24
        title = await page.locator("#heatmap-title").text_content()
        assert title is not None and "hour of the week" in title
        for chart in ("by-channel", "by-department", "first-response"):
            assert await page.locator(f"svg#{chart}").count() == 1
        counted = sum(1 for t in truths if t.question)
        assert (await page.locator("#total-questions").inner_text()) == str(counted)
        aside = sum(1 for t in truths if t.set_aside)
        assert aside > 0  # the generated term has wrong numbers and spam, told apart
        await expect(page.locator("#set-aside")).to_have_text(
            f"{aside} conversations set aside as not a question (spam, a wrong number, a test) "
            "are left out of every figure; crises and safety reviews are always counted."
        )
        assert await serious_violations(page) == []
        await shoot(page, tmp_path, "reports")
        await page.locator("#topics-heading").scroll_into_view_if_needed()
        await shoot(page, tmp_path, "reports-topics")

        await page.select_option("#export-group", "weekday")
        async with page.expect_download() as download_info:
            await page.click("#export-csv")
        download = await download_info.value
        assert download.suggested_filename.startswith("refdesk-weekday-")
        body = Path(await download.path()).read_text()
        rows = list(csv.reader(io.StringIO(body)))
        assert rows[0][:3] == ["weekday", "label", "questions"]
        assert [r[1] for r in rows[1:8]] == [
            "Monday",
            "Tuesday",
            "Wednesday",
            "Thursday",
            "Friday",
            "Saturday",
            "Sunday",
        ]
        assert rows[-1][0] == "total" and int(rows[-1][2]) == counted
        assert page.js_errors == []


async def test_plain_staff_are_refused_the_reports_page(resources: Resources) -> None:
    async with serve(resources) as base, browser_page() as page:
        await sign_in(page, base, "mgarcia")
        response = await page.goto(f"{base}/dashboard/reports")
        assert response is not None and response.status == 403
        heading = await page.locator("main h2").inner_text()
        assert "for supervisors" in heading
        assert await page.locator("svg#heatmap").count() == 0
        api = await page.request.get(f"{base}/reports/summary.csv")
        assert api.status == 403
        assert await serious_violations(page) == []


async def test_the_reports_page_fits_a_phone(
    resources: Resources, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    await feed(sessions, in_time_order(generate(12)))
    async with serve(resources) as base, browser_page(375, 812) as page:
        await sign_in(page, base, "lokafor")
        await page.goto(f"{base}/dashboard/reports{RANGE}")
        await page.locator("svg#by-department").wait_for()
        await shoot(page, tmp_path, "reports-375")
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 375, f"the page scrolls sideways: {width}px wide"
        await page.locator("svg#by-department").scroll_into_view_if_needed()
        await shoot(page, tmp_path, "reports-375-by-department")
        ticks = await page.locator('svg#by-department text[text-anchor="end"]').all_text_contents()
        assert ticks and len(set(ticks)) == len(ticks), ticks  # no "0, 0, 1, 2, 2"
        assert page.js_errors == []
