"""Browser fixtures for the ops console: the OS's Chromium driven by Playwright.

`console_url` is the one fixture that decides what the browser talks to: today the console's
files plus a fake API (console_fake_api.py); once the real routes exist it starts
`cardstatus serve` on a seeded database and yields that URL instead. Tests only ever use the
URL, the page, and what the browser itself sent (`sent`), so they run unchanged against either.

No Chromium is a failure, not a skip: CI installs it (`apt-get install chromium`).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixture_paths import ROOT

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "docs" / "console"
VIEWPORT = {"width": 1366, "height": 820}  # a laptop screen


@pytest.fixture
def console_url() -> Iterator[str]:
    """Base URL (scheme://host:port) serving /console and the API on the same origin."""
    from console_fake_api import FakeApi, make_server

    server = make_server(FakeApi())
    thread = threading.Thread(target=server.serve_forever, name="console-fake-api", daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "Playwright for Python is missing: `make venv` (requirements-dev.txt) installs it"
        )
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: the console's browser tests need the OS package "
            "(`apt-get install -y chromium`; .ci/run installs it). Set CHROMIUM=/path to use another."
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


class Sent:
    """Every request the page sent: (method, url, body)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str | None]] = []

    def record(self, request: Any) -> None:
        self.requests.append((request.method, request.url, request.post_data))

    def api(self) -> list[tuple[str, str, str | None]]:
        """Requests other than the console's own files."""
        return [r for r in self.requests if "/console" not in r[1]]


@pytest.fixture
def sent() -> Sent:
    return Sent()


@pytest.fixture
def page(browser: Any, console_url: str, sent: Sent) -> Iterator[Any]:
    context = browser.new_context(
        base_url=console_url, viewport=VIEWPORT, timezone_id="UTC", locale="en-GB"
    )
    context.set_default_timeout(10_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("request", sent.record)
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error"
            and ("Content Security Policy" in msg.text or "Refused to" in msg.text)
            else None
        ),
    )
    try:
        yield tab
        assert not errors, f"JavaScript or Content-Security-Policy errors on the page: {errors}"
    finally:
        context.close()


@pytest.fixture
def screenshot() -> Any:
    """screenshot(page, "card") saves docs/console/card.png when CONSOLE_SCREENSHOTS=1."""

    def save(page: Any, name: str, full_page: bool = True) -> None:
        if os.environ.get("CONSOLE_SCREENSHOTS") != "1":
            return
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.mouse.move(0, 0)  # no hover colours in the picture
        page.evaluate("document.fonts.ready")
        page.screenshot(
            path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page, animations="disabled"
        )

    return save
