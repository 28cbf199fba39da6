"""The admins' staff page in headless Chromium: an admin adds a staff member, issues a token
(shown once, copied with the button), the new colleague signs in with it, and the admin revokes
it; by keyboard where a person would use one, with axe-core finding no serious or critical
WCAG 2.1 A/AA violation on the way."""

from __future__ import annotations

from pathlib import Path

import pytest
from console_browser import browser_page, needs_browser, serious_violations, serve, shoot, sign_in

from services.status.resources import Resources

pytestmark = [*needs_browser, pytest.mark.timeout(240)]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: the page's rules are the admin API's, which runs on both backends."""
    return f"sqlite+aiosqlite:///{tmp_path / 'status.db'}"


async def test_an_admin_adds_someone_issues_a_token_and_revokes_it(
    resources: Resources, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    async with serve(resources) as base, browser_page(1280, 900) as page:
        await sign_in(page, base, "dkim")
        await page.click("#staff-link")
        await page.wait_for_load_state("load")
        await expect(page.get_by_role("heading", name="Staff", exact=True)).to_be_visible()
        assert await serious_violations(page) == []

        # the add form, by keyboard: fields typed, a role and two departments ticked
        await page.click("a[href='#add-staff']")
        await page.focus("#add-id")
        await page.keyboard.type("awilson")
        await page.keyboard.press("Tab")
        await page.keyboard.type("Ana Wilson")
        await page.keyboard.press("Tab")
        await page.keyboard.type("ana.wilson@example.edu")
        await page.focus("#add-dept-reference")
        await page.keyboard.press("Space")
        await page.focus("#add-dept-writing-center")
        await page.keyboard.press("Space")
        await page.focus("#add-form button[type=submit]")
        await page.keyboard.press("Enter")
        await expect(page.locator("#notice")).to_contain_text("Added Ana Wilson")
        await expect(page.locator("#notice")).to_be_focused()
        assert await serious_violations(page) == []

        await page.fill("#issue-label", "desk sign-in")
        await page.press("#issue-label", "Enter")
        issued = page.locator("#issued")
        await expect(issued).to_contain_text("will not be shown again")
        await expect(issued).to_be_focused()
        token = await page.input_value("#new-token")
        assert len(token) >= 40
        copy = page.locator("#copy-token")
        await expect(copy).to_be_visible()  # the script shows it
        await copy.click()
        await expect(page.locator("#copy-status")).not_to_be_empty()
        assert await serious_violations(page) == []
        await shoot(page, tmp_path, "staff-browser-token")

        # the new colleague signs in with it, in another browser
        async with browser_page(1024, 768) as colleague:
            await colleague.goto(f"{base}/dashboard")
            await colleague.fill("#staff_id", "awilson")
            await colleague.fill("#token", token)
            await colleague.click("#sign-in button[type=submit]")
            await colleague.wait_for_selector("#queue-pane")

            # revoked, it signs in no more
            await page.goto(f"{base}/dashboard/staff/awilson")
            assert token not in await page.content()
            await page.click("#tokens button.revoke")
            await expect(page.locator("#notice")).to_contain_text("Token revoked")
            await expect(page.locator("#tokens .badge")).to_have_text("Revoked")
            await colleague.context.clear_cookies()
            await colleague.goto(f"{base}/dashboard")
            await colleague.fill("#staff_id", "awilson")
            await colleague.fill("#token", token)
            await colleague.click("#sign-in button[type=submit]")
            await expect(colleague.locator("#sign-in .error")).to_contain_text("not recognised")
        assert page.js_errors == []
