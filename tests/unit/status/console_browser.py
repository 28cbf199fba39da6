"""The console in Debian's headless Chromium: the status app served in-process on a loopback
port (fake publisher, a live feed over the test database), sign-in, axe-core checks and
screenshots."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from services.status.app import create_app
from services.status.console.live import LiveFeed
from services.status.console.pages import live_rows
from services.status.resources import Resources
from tests.servers import QuietServer

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(os.environ.get("REFDESK_AXE_JS", ROOT / ".cache" / "axe-core" / "axe.min.js"))
SCREENSHOTS = os.environ.get("REFDESK_SCREENSHOTS")
"""A folder to keep the PNGs in (e.g. docs/); unset: the test's temporary folder."""
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--font-render-hinting=none",
]
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

needs_browser = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="BROWSER TEST SKIPPED: /usr/bin/chromium is missing (make browser)",
    ),
    pytest.mark.skipif(
        not AXE.exists(),
        reason=f"BROWSER TEST SKIPPED: axe-core is missing at {AXE} (make browser)",
    ),
]


@contextlib.asynccontextmanager
async def serve(resources: Resources) -> AsyncIterator[str]:
    """The status app over real HTTP on a free loopback port, with its live feed running."""
    app = create_app(resources.settings)
    app.state.resources = resources
    feed = LiveFeed(resources.sessions, interval_s=0.05, render=live_rows(resources))
    resources.extra["live_feed"] = feed
    feeder = asyncio.create_task(feed.run())
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = QuietServer(uvicorn.Config(app, lifespan="off", log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        server.force_exit = True  # open event streams would hold the shutdown
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
        await serving


@contextlib.asynccontextmanager
async def browser_page(width: int = 1440, height: int = 900) -> AsyncIterator[Any]:
    """A fresh Chromium page (Playwright, Debian's browser: no browser download)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            context = await browser.new_context(viewport={"width": width, "height": height})
            # as an init script, axe-core runs under the page's CSP (script-src 'self')
            await context.add_init_script(path=str(AXE))
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.js_errors = errors
            yield page
        finally:
            await browser.close()


async def sign_in(page: Any, base: str, staff_id: str = "mgarcia") -> None:
    """Sign in on the form as a person would."""
    await page.goto(f"{base}/dashboard")
    await page.fill("#staff_id", staff_id)
    await page.fill("#token", f"dev-{staff_id}-token")
    await page.click("#sign-in button[type=submit]")
    await page.wait_for_selector("#queue-pane")
    await page.wait_for_selector(".console[data-live='on']")


async def serious_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical WCAG 2.1 A/AA violations on the page as it is now."""
    result = await page.evaluate(
        "async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags}}))"
        ".violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))",
        AXE_TAGS,
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


async def shoot(page: Any, folder: Path, name: str) -> Path:
    """A PNG of the viewport, kept in REFDESK_SCREENSHOTS when set."""
    target = Path(SCREENSHOTS) if SCREENSHOTS else folder
    target.mkdir(parents=True, exist_ok=True)
    path = target / f"{name}.png"
    await page.screenshot(path=str(path))
    return path
