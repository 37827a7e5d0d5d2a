"""The Partners tab (partners.js) in a real headless Chromium, against the real `cardstatus
serve` on its own database and partner configuration: one row per partner with its state
badge, last file, due time, reject rate, stuck count and a 14-day sparkline; partner filters
elsewhere are dropdowns of the known partners."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg2
import pytest
from partner_support import add_file
from playwright.sync_api import Page, expect

from conftest import VIEWPORT, start_serve, stop_serve

CONFIG = {
    "default": {"timezone": "Asia/Dubai"},
    "speedy": {
        "timezone": "Asia/Dubai",
        "feed": {"every_hours": 24, "grace_hours": 2, "max_reject_rate": 0.05},
    },
    "acme": {
        "timezone": "Asia/Dubai",
        "feed": {"every_hours": 24, "grace_hours": 4, "max_reject_rate": 0.1},
    },
    "newco": {"timezone": "Asia/Dubai", "feed": {"every_hours": 12}},
}


def seed(url: str) -> None:
    """14 days of files: speedy's last one 30 h ago (late), acme's 3 h ago but tiny (volume
    warning), newco never sent, walkin (not configured) sent two; 3 of speedy's cards stuck."""
    now = datetime.now(UTC).replace(microsecond=0)
    conn = psycopg2.connect(url)
    try:
        for day in range(13, 0, -1):
            when = now - timedelta(days=day, hours=6)
            add_file(conn, "speedy", when, rows=180 + (day * 37) % 90, rejected=day % 3)
            add_file(conn, "acme", when + timedelta(hours=3), rows=90 + (day * 13) % 30)
        speedy_last = add_file(conn, "speedy", now - timedelta(hours=30), rows=210, rejected=150)
        add_file(conn, "acme", now - timedelta(hours=3), rows=12)
        add_file(conn, "walkin", now - timedelta(days=2), rows=4)
        add_file(conn, "Walkin", now - timedelta(seconds=1), rows=6)  # today, wherever `now` falls
        with conn.cursor() as cur:
            for i, status in enumerate(["PICKED_UP", "PICKED_UP", "DELIVERY_EXCEPTION"]):
                at = now - timedelta(hours=100 + i)
                cur.execute(
                    "INSERT INTO card_event (card_id, status, occurred_at, partner,"
                    " source_file_id, source_line) VALUES (%s, %s, %s, 'speedy', %s, 2)",
                    (f"SPX90{i}", status, at, speedy_last),
                )
                cur.execute(
                    "INSERT INTO card (card_id, status, status_at) VALUES (%s, %s, %s)",
                    (f"SPX90{i}", status, at),
                )
        conn.commit()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def partners_url(pg_admin_url: str, pg_template: str) -> Iterator[str]:
    from cardstatus_dev.database import drop_database, ensure_database

    name = f"cs_console_partners_{os.getpid()}"
    drop_database(pg_admin_url, name)
    url = ensure_database(pg_admin_url, name, template=pg_template)
    seed(url)
    previous = os.environ.get("PARTNER_CONFIG")
    os.environ["PARTNER_CONFIG"] = json.dumps(CONFIG)  # the server process inherits it
    try:
        process, base, _log = start_serve(url)
    finally:
        if previous is None:
            os.environ.pop("PARTNER_CONFIG", None)
        else:
            os.environ["PARTNER_CONFIG"] = previous
    try:
        yield base
    finally:
        stop_serve(process)
        drop_database(pg_admin_url, name)


@pytest.fixture
def tab(browser: Any, partners_url: str) -> Iterator[Page]:
    context = browser.new_context(
        base_url=partners_url, viewport=VIEWPORT, timezone_id="UTC", locale="en-GB"
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error"
            and ("Content Security Policy" in msg.text or "Refused" in msg.text)
            else None
        ),
    )
    try:
        yield page
        assert not errors, f"JavaScript or Content-Security-Policy errors: {errors}"
    finally:
        context.close()


def test_partners_tab_is_first_and_shows_one_row_per_partner(tab: Page, screenshot: Any) -> None:
    tab.goto("/console?view=partners")
    tabs = tab.get_by_role("navigation", name="Views").get_by_role("link")
    expect(tabs.first).to_have_text("Partners")
    expect(tabs.first).to_have_attribute("aria-current", "page")
    rows = tab.locator("#partners-table tbody tr")
    expect(rows).to_have_count(4)
    # The alerting partner first, then by name.
    assert rows.evaluate_all("rows => rows.map(r => r.dataset.partner)") == [
        "speedy",
        "acme",
        "newco",
        "walkin",
    ]
    expect(tab.locator(".partners-summary")).to_have_text("1 partner needs attention: speedy.")

    speedy = tab.locator('tr[data-partner="speedy"]')
    expect(speedy.locator(".badge")).to_have_text("Late")
    expect(speedy).to_contain_text("by 4 h")  # 30 h since the last file: due 24 h + 2 h grace
    expect(speedy).to_contain_text("every 24 h, grace 2 h")
    # 7 days: 6 daily files (1,317 rows, 6 rejected) and the last one (210 rows, 150 rejected)
    expect(speedy.locator(".over")).to_have_text("10%")
    expect(speedy).to_contain_text("156 of 1,527 rows; max 5%")
    expect(speedy.locator("td").nth(4)).to_have_text("3")  # stuck cards
    expect(tab.locator('tr[data-partner="acme"] .badge')).to_have_text("On time")
    expect(tab.locator('tr[data-partner="acme"] .volume-warning')).to_contain_text(
        "Low volume: file #"
    )
    expect(tab.locator('tr[data-partner="newco"] .badge')).to_have_text("Never sent")
    expect(tab.locator('tr[data-partner="walkin"] .badge')).to_have_text("Not monitored")
    expect(tab.locator('tr[data-partner="walkin"] td').nth(5)).to_have_text("1")  # files today

    # A 14-day sparkline per row: inline SVG (no library), with a text alternative.
    sparks = tab.locator("#partners-table svg.sparkline")
    expect(sparks).to_have_count(4)
    points = speedy.locator("svg polyline").get_attribute("points") or ""
    assert len(points.split()) == 14
    label = speedy.locator("svg").get_attribute("aria-label") or ""
    assert label.startswith("Rows per day, last 14 days:")
    flat = tab.locator('tr[data-partner="newco"] svg polyline').get_attribute("points") or ""
    assert len({p.split(",")[1] for p in flat.split()}) == 1  # never sent: a flat line
    screenshot(tab, "partners")


def test_stuck_count_links_to_the_stuck_view_for_that_partner(tab: Page) -> None:
    tab.goto("/console?view=partners")
    tab.locator('tr[data-partner="speedy"] td').nth(4).get_by_role("link").click()
    expect(tab.locator("#stuck-table tbody tr")).to_have_count(2)  # PICKED_UP ones
    assert "partner=speedy" in tab.url and "view=stuck" in tab.url
    expect(tab.locator("#view-stuck").get_by_label("Partner")).to_have_value("speedy")


def test_partner_filters_are_dropdowns_of_known_partners(tab: Page) -> None:
    tab.goto("/console?view=files")
    select = tab.locator("#view-files").get_by_label("Partner")
    expect(select.locator("option")).to_have_count(5)
    assert select.locator("option").all_text_contents() == [
        "any",
        "acme",
        "newco",
        "speedy",
        "walkin",
    ]
    select.select_option("speedy")
    tab.get_by_role("button", name="Show files").click()
    expect(tab.locator("#files-table tbody tr").first).to_be_visible()
    assert "partner=speedy" in tab.url
    # A deep link in another case selects the known partner and shows its cards.
    tab.goto("/console?view=stuck&partner=SPEEDY")
    expect(tab.locator("#view-stuck").get_by_label("Partner")).to_have_value("speedy")
    expect(tab.locator("#stuck-table tbody tr")).to_have_count(2)
    assert "partner=speedy" in tab.url
    stuck_options = tab.locator("#view-stuck").get_by_label("Partner").locator("option")
    expect(stuck_options).to_have_count(5)


def test_partner_name_links_to_its_files(tab: Page) -> None:
    tab.goto("/console?view=partners")
    tab.locator('tr[data-partner="acme"]').get_by_role("link", name="acme", exact=True).click()
    expect(tab.locator("#files-table tbody tr")).to_have_count(14)
    assert "view=files" in tab.url and "partner=acme" in tab.url
