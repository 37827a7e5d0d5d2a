"""The console's round-2 ops features in a real headless Chromium (SPEC §9b): a card's
timeline linked to its files, a file's changed cards, rejects with a CSV download, warnings
grouped by kind, the void dialog's preview clicked through, times in the viewer's zone.

Its own database and `cardstatus serve` (conftest `speedy`, `tab`: the shared console
database's 11 files are counted by test_console.py), holding the review's speedy files."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import Page, expect


def test_a_cards_timeline_links_its_file_and_the_file_lists_its_cards(
    tab: Page, speedy: tuple[str, dict[str, int]], screenshot: Any
) -> None:
    wrong = speedy[1]["speedy 2026-12-06 Returned.csv"]
    tab.goto("/console?card_id=SPX001")
    expect(tab.locator("#card-status")).to_have_text("Returned")
    events = tab.locator("#timeline li")
    expect(events.nth(0)).to_contain_text(f"from file #{wrong}, line 2")
    # Dubai time (UTC+4): 08:30 in the file is 04:30 UTC, shown as 08:30 with UTC on hover.
    when = events.nth(0).locator("time")
    expect(when).to_have_text("2026-12-06 08:30")
    expect(when).to_have_attribute("title", "2026-12-06 04:30 UTC")
    screenshot(tab, "card-linked")

    events.nth(0).get_by_role("link", name=f"file #{wrong}").click()
    expect(tab.locator("#file-heading")).to_have_text(f"File #{wrong}")
    rows = tab.locator("#file-cards-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("SPX001")
    expect(rows.nth(0)).to_contain_text("Picked up → Returned")
    expect(tab.locator("#file-cards-heading")).to_have_text("Cards this file changed (2)")
    assert "null" not in tab.locator("main").inner_text()

    # The header's toggle shows every time in UTC (remembered), and back.
    tab.get_by_role("button", name="Times: your zone").click()
    expect(tab.get_by_role("button", name="Times: UTC")).to_have_attribute("aria-pressed", "true")
    tab.goto("/console?card_id=SPX001")
    expect(tab.locator("#timeline li").nth(0).locator("time")).to_have_text("2026-12-06 04:30 UTC")
    tab.get_by_role("button", name="Times: UTC").click()


def test_rejects_with_card_and_raw_row_a_csv_download_and_grouped_warnings(
    tab: Page, speedy: tuple[str, dict[str, int]], screenshot: Any
) -> None:
    big = speedy[1]["speedy 2026-12-05 big Delivered.csv"]
    tab.goto(f"/console?file={big}")
    expect(tab.locator("#rejects-heading")).to_have_text("Rejected rows (4)")
    rejects = tab.locator("#rejects-table tbody tr")
    expect(rejects).to_have_count(4)
    expect(rejects.nth(1)).to_contain_text("SPX104")
    expect(rejects.nth(2)).to_contain_text("'20261205 1015'")  # A1: not masked as a phone
    expect(rejects.nth(2)).to_contain_text("SPX106,******3306,20261205 1015,compact date")
    # 1,200 warnings of one kind: one row with its count, below the rejects.
    groups = tab.locator("#warnings tr.warning-group")
    expect(groups).to_have_count(1)
    expect(groups.nth(0)).to_contain_text("1,200")
    expect(tab.locator("#warnings-heading")).to_have_text("Warnings (1,200)")
    expect(tab.locator("#file-cards-table tbody tr")).to_have_count(10)  # a page of 1,200
    rejects_y = tab.locator("#rejects-heading").bounding_box()["y"]  # type: ignore[index]
    warnings_y = tab.locator("#warnings-heading").bounding_box()["y"]  # type: ignore[index]
    assert rejects_y < warnings_y
    screenshot(tab, "file-rejects")

    with tab.expect_download() as downloading:
        tab.get_by_role("link", name="Download rejected rows (CSV)").click()
    download = downloading.value
    assert download.suggested_filename == f"file-{big}-rejects.csv"
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text())))
    assert [r["card_id"] for r in rows] == ["", "SPX104", "SPX106", ""]
    assert rows[2]["raw_row"] == "SPX106,******3306,20261205 1015,compact date"


def test_files_list_labels_counts_and_the_rejected_today_view(
    tab: Page, speedy: tuple[str, dict[str, int]], sent: Any, screenshot: Any
) -> None:
    tab.goto("/console?view=files")
    rows = tab.locator("#files-table tbody tr")
    expect(rows).to_have_count(3)
    big = tab.locator("#files-table tbody tr", has_text="big Delivered")
    expect(big).to_contain_text("1,204")  # rows, with a thousands separator
    expect(big).to_contain_text("Applied")
    screenshot(tab, "files")

    tab.get_by_role("link", name="Rejected today").click()
    expect(rows).to_have_count(1)
    expect(rows.nth(0)).to_contain_text("big Delivered")
    query = parse_qs(urlsplit(tab.url).query)
    assert query["has_rejects"] == ["true"]
    assert query["since"][0].endswith("T20:00:00Z")  # midnight in Dubai is 20:00 UTC
    expect(tab.get_by_label("Only files with rejected rows")).to_be_checked()
    expect(tab.get_by_label("Received since")).to_have_value(re.compile(r"^\d{4}-\d{2}-\d{2}$"))
    # An ISO date typed in the filter is midnight in the viewer's zone.
    tab.get_by_label("Received since").fill("2026-12-06")
    tab.get_by_role("button", name="Show files").click()
    assert parse_qs(urlsplit(tab.url).query)["since"] == ["2026-12-05T20:00:00Z"]
    tab.get_by_label("Received since").fill("06/12/2026")
    tab.get_by_role("button", name="Show files").click()
    assert parse_qs(urlsplit(tab.url).query)["since"] == ["2026-12-05T20:00:00Z"]  # refused


def test_void_dialog_previews_the_cards_then_the_result_lists_them(
    tab: Page, speedy: tuple[str, dict[str, int]], sent: Any, screenshot: Any
) -> None:
    wrong = speedy[1]["speedy 2026-12-06 Returned.csv"]
    tab.goto(f"/console?file={wrong}")
    tab.get_by_role("button", name="Void file…").click()
    dialog = tab.get_by_role("dialog", name=f"Void file #{wrong}: speedy 2026-12-06 Returned.csv")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#void-preview-summary")).to_have_text(
        "2 cards will change status — of 2 this file touched."
    )
    preview = dialog.locator("#void-preview-table tbody tr")
    expect(preview).to_have_count(2)
    expect(preview.nth(0)).to_contain_text("SPX001")
    expect(preview.nth(0)).to_contain_text("Returned → Picked up")
    confirm = dialog.get_by_role("button", name="Void file and change 2 cards")
    expect(confirm).to_be_enabled()
    dialog.get_by_label("Reason").fill("wrong file: these cards were delivered, not returned")
    dialog.get_by_label("Your name").fill("Aisha (ops)")
    screenshot(tab, "void-preview", full_page=False)
    confirm.click()

    result = tab.locator("#void-result")
    expect(result).to_contain_text("2 cards changed status")
    expect(result).to_contain_text("Voided by Aisha (ops)")
    done = tab.locator("#void-cards-table tbody tr")
    expect(done).to_have_count(2)
    expect(done.nth(0)).to_contain_text("Returned → Picked up")
    expect(tab.locator("#file-outcome")).to_contain_text("Applied")
    voids = [r for r in sent.api() if urlsplit(r[1]).path == f"/files/{wrong}/void"]
    assert len(voids) == 1 and json.loads(voids[0][2] or "{}") == {
        "reason": "wrong file: these cards were delivered, not returned"
    }
    previews = [r for r in sent.api() if urlsplit(r[1]).path.endswith("/void_preview")]
    assert len(previews) == 1
    screenshot(tab, "void-result")

    # The card went back: its timeline no longer has the voided file's event.
    tab.goto("/console?card_id=SPX001")
    expect(tab.locator("#card-status")).to_have_text("Picked up")
