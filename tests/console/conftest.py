"""Browser fixtures for the ops console: the OS's Chromium driven by Playwright.

`console_url` is the one fixture that decides what the browser talks to: the real
`cardstatus serve` (a subprocess: the API handler and the /console files on one origin) on a
database seeded by ingesting the 11 sample partner files through the real pipeline, as partner
acme, under incoming/acme/, oldest first, so their file ids are 32..42 (42 = the newest,
"Sample Card Status Info - Returned.csv"). `console_down_url` is the same server pointed at a
database that does not answer (503s). Tests only ever use the URL, the page, and what the
browser itself sent (`sent`).

No Chromium is a failure, not a skip: CI installs it (`apt-get install chromium`).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixture_paths import EVENTS, ROOT

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


# The sample files, oldest first: ingested in this order they get file ids 32..42.
CONSOLE_FILES = [
    EVENTS / "partner_files" / "acme bad rows - Returned.csv",
    EVENTS / "partner_files" / "acme cp1252 - Delivery exceptions.csv",
    EVENTS / "partner_files" / "acme mixed status column.csv",
    EVENTS / "partner_files" / "acme no card column - Delivered.csv",
    EVENTS / "partner_files" / "acme unicode text - Pickup.csv",
    EVENTS / "partner_files" / "acme utf8-bom semicolon - Delivered.csv",
    EVENTS / "partner_files" / "acme weekly export.csv",
    EVENTS / "partner_samples" / "Sample Card Status Info - Pickup.csv",
    EVENTS / "partner_samples" / "Sample Card Status Info - Delivered.csv",
    EVENTS / "partner_samples" / "Sample Card Status Info - Delivery exceptions.csv",
    EVENTS / "partner_samples" / "Sample Card Status Info - Returned.csv",
]
FIRST_FILE_ID = 32
BUCKET = "cardstatus-local-partner-files"


def seed_console_database(url: str) -> None:
    """Ingest CONSOLE_FILES as S3 uploads to incoming/acme/ would be."""
    import psycopg2

    from cardstatus.config import load_settings
    from cardstatus.ingest import SourceInfo, ingest_retrying

    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT setval('ingested_file_id_seq', %s)", (FIRST_FILE_ID - 1,))
        conn.commit()
        for path in CONSOLE_FILES:
            source = SourceInfo(
                key=f"incoming/acme/{path.name}",
                partner="acme",
                bucket=BUCKET,
                size_bytes=path.stat().st_size,
            )
            opener = functools.partial(path.open, "rb")  # the pipeline opens and closes it
            report = ingest_retrying(conn, opener, source, load_settings())
            assert report["file_id"] >= FIRST_FILE_ID, report
    finally:
        conn.close()


def start_serve(database_url: str) -> tuple[subprocess.Popen[bytes], str, Path]:
    """`cardstatus serve` on a free port; returns the process, its base URL and its log."""
    log = Path(tempfile.mkstemp(prefix="cardstatus-console-serve-", suffix=".log")[1])
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cardstatus_dev",
            "serve",
            "--port",
            "0",
            "--database-url",
            database_url,
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        cwd=ROOT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        match = re.search(r"on (http://127\.0\.0\.1:\d+)", log.read_text(errors="replace"))
        if match:
            return process, match.group(1), log
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"cardstatus serve did not start:\n{log.read_text(errors='replace')}")


def stop_serve(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@pytest.fixture(scope="session")
def console_database(pg_admin_url: str, pg_template: str) -> Iterator[str]:
    from cardstatus_dev.database import drop_database, ensure_database

    name = f"cs_console_{os.getpid()}"
    drop_database(pg_admin_url, name)
    url = ensure_database(pg_admin_url, name, template=pg_template)
    seed_console_database(url)
    yield url
    drop_database(pg_admin_url, name)


@pytest.fixture(scope="session")
def console_url(console_database: str) -> Iterator[str]:
    """Base URL (scheme://host:port) of the real `cardstatus serve`: /console and the API."""
    process, url, _log = start_serve(console_database)
    try:
        yield url
    finally:
        stop_serve(process)


@pytest.fixture(scope="session")
def console_down_url() -> Iterator[str]:
    """`cardstatus serve` whose database never answers (a port nothing listens on)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    process, url, _log = start_serve(f"postgresql://cardstatus@127.0.0.1:{free_port}/nowhere")
    try:
        yield url
    finally:
        stop_serve(process)


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


# --- the review's speedy files (test_console_files.py) ----------------------------------------

PICKUP = (
    "Card ID,Phone,Timestamp\n"
    "SPX001,+971 50 111 2201,03-12-2026 09:10\n"
    "SPX002,050-111-2202,03-12-2026 09:20\n"
    "SPX003,0501112203,03-12-2026 09:30\n"
)
WRONG = (
    "Card ID,Phone,Timestamp,Comment\n"
    "SPX001,0501112201,06-12-2026 08:30,Handed to customer\n"
    "SPX002,0501112202,06-12-2026 08:45,Handed to customer\n"
)
BAD = "\n".join(
    ["Card ID,Phone,Timestamp,Comment"]
    + [f"SPW{i:04d},9.7E+11,05-12-2026 10:{i % 60:02d},ok" for i in range(1200)]
    + [
        "SPX 103,0502223303,05-12-2026 10:10,space in id",
        "SPX104,0502223304,,no time",
        "SPX106,0502223306,20261205 1015,compact date",
        "Total records: 1203,,,",
    ]
)
FILES = [
    ("speedy 2026-12-03 Pickup.csv", PICKUP),
    ("speedy 2026-12-06 Returned.csv", WRONG),
    ("speedy 2026-12-05 big Delivered.csv", BAD),
]


@pytest.fixture(scope="module")
def speedy(pg_admin_url: str, pg_template: str) -> Iterator[tuple[str, dict[str, int]]]:
    """(base URL of `cardstatus serve`, file ids by name) on a database of its own."""
    import psycopg2

    from cardstatus.config import load_settings
    from cardstatus.ingest import SourceInfo, ingest_retrying
    from cardstatus_dev.database import drop_database, ensure_database

    name = f"cs_console_files_{os.getpid()}"
    drop_database(pg_admin_url, name)
    url = ensure_database(pg_admin_url, name, template=pg_template)
    ids: dict[str, int] = {}
    conn = psycopg2.connect(url)
    folder = Path(tempfile.mkdtemp(prefix="cardstatus-console-files-"))
    try:
        for file_name, text in FILES:
            path = folder / file_name
            path.write_text(text)
            source = SourceInfo(
                key=f"incoming/speedy/{file_name}", partner="speedy", bucket="b", version_id="1"
            )
            opener = functools.partial(path.open, "rb")
            ids[file_name] = ingest_retrying(conn, opener, source, load_settings())["file_id"]
    finally:
        conn.close()
    process, base, _log = start_serve(url)
    try:
        yield base, ids
    finally:
        stop_serve(process)
        drop_database(pg_admin_url, name)


@pytest.fixture
def tab(browser: Any, speedy: tuple[str, dict[str, int]], sent: Sent) -> Iterator[Any]:
    """A page on the speedy server, in Dubai time (the zone of the ops team and partners)."""
    context = browser.new_context(
        base_url=speedy[0],
        viewport=VIEWPORT,
        timezone_id="Asia/Dubai",
        locale="en-GB",
        accept_downloads=True,
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("request", sent.record)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
        assert not errors, f"JavaScript errors on the page: {errors}"
    finally:
        context.close()
