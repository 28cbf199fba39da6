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


class Served:
    """The status app over real HTTP on a loopback port, which a test may stop (the desk down:
    open event streams drop, connections are refused) and start again on the same port."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.port = 0
        self._server: QuietServer | None = None
        self._serving: asyncio.Task[None] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        self._server = QuietServer(uvicorn.Config(self.app, lifespan="off", log_level="warning"))
        self._serving = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is None or self._serving is None:
            return
        self._server.should_exit = True
        self._server.force_exit = True  # open event streams would hold the shutdown
        # and would go on streaming: the browser is to see its connections drop
        for connection in list(self._server.server_state.connections):
            connection.transport.close()
        await self._serving
        self._server = self._serving = None


@contextlib.asynccontextmanager
async def serve_app(resources: Resources) -> AsyncIterator[Served]:
    """The status app served (see Served), with its live feed running."""
    app = create_app(resources.settings)
    app.state.resources = resources
    feed = LiveFeed(resources.sessions, interval_s=0.05, render=live_rows(resources))
    resources.extra["live_feed"] = feed
    feeder = asyncio.create_task(feed.run())
    served = Served(app)
    await served.start()
    try:
        yield served
    finally:
        await served.stop()
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder


@contextlib.asynccontextmanager
async def serve(resources: Resources) -> AsyncIterator[str]:
    """The status app over real HTTP on a free loopback port, with its live feed running."""
    async with serve_app(resources) as served:
        yield served.base


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
