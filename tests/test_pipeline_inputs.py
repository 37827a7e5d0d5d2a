"""What the pipeline reads (README "Partner files and reports"): broken quotes, title lines,
status words, card-id case, and every container (.csv/.txt/.tsv, .gz, .xlsx; anything else
rejected with a reason)."""

from __future__ import annotations

import gzip
import io
import json
from datetime import datetime
from typing import Any

import openpyxl
import pytest
from phone_support import phone_hash_of
from test_pipeline import cards, events

from cardstatus.config import load_settings, reset_settings_cache
from cardstatus.ingest import SourceInfo, ingest

ROWS = b"Card ID,User contact,Timestamp\r\nOUT001,0505556666,26-11-2025 10:00\r\n"


def ingest_bytes(conn: Any, data: bytes, key: str, partner: str = "acme") -> dict[str, Any]:
    return ingest(conn, io.BytesIO(data), SourceInfo(key=key, partner=partner), load_settings())


def counts(report: dict[str, Any]) -> tuple[int, ...]:
    c = report["counts"]
    return (c["rows"], c["accepted"], c["duplicate"], c["rejected"])


def test_an_unclosed_quote_rejects_its_row_and_every_other_row_is_applied(db: Any) -> None:
    data = (
        b"Card ID,User contact,Timestamp,Comment\r\n"
        b'DQ1,0501112221,25-11-2025 10:00,"left at door\r\n'
        b"DQ2,0501112222,25-11-2025 10:01,ok\r\n"
        b"DQ3,0501112223,25-11-2025 10:02,\r\n"
        b"DQ4,0501112224,25-11-2025 10:03,fine\r\n"
        b"DQ5,0501112225,25-11-2025 10:04,done\r\n"
    )
    report = ingest_bytes(db, data, "incoming/acme/quotes Delivered.csv")
    assert report["outcome"] == "applied"
    assert counts(report) == (5, 4, 0, 1)
    assert report["rejects"][0]["line"] == 2
    assert "not closed before line 3" in report["rejects"][0]["reason"]
    state = cards(db)
    assert sorted(state) == ["DQ2", "DQ3", "DQ4", "DQ5"]
    assert all(e[0] != "DQ1" for e in events(db))
    assert all("050" not in (e[3] or "") for e in events(db))  # no comment holds another row


def test_title_lines_are_skipped_with_a_warning(db: Any) -> None:
    data = b"Returns report\r\nGenerated on 2025-11-26 10:00\r\n\r\n" + ROWS
    report = ingest_bytes(db, data, "incoming/acme/portal Returned.csv")
    assert report["outcome"] == "applied"
    assert counts(report) == (1, 1, 0, 0)
    assert report["warnings"][0]["line"] == 1
    assert "2 line(s) before the header skipped" in report["warnings"][0]["warning"]
    assert cards(db)["OUT001"][0] == "RETURNED"


def test_status_words_lower_case_ids_and_nfkc_headers(db: Any) -> None:
    data = (
        "Card\u00a0ID,Status,Timestamp\r\n"
        "zyw7631,Collected,25-11-2025 10:00\r\n"
        "zyw7631,Attempted \u2013 no answer,25-11-2025 11:00\r\n"
        "ZYW7631,Delivery failed,25-11-2025 12:00\r\n"
        "zyw7632,In transit,25-11-2025 12:00\r\n"
        "zyw7632,RTO,05-Apr-2025 10:00 AM\r\n"
        "zyw7633,Out for delivery,25-11-2025 12:00\r\n"
    ).encode()
    report = ingest_bytes(db, data, "incoming/acme/mixed.csv")
    assert counts(report) == (6, 4, 0, 2)
    assert {r["line"] for r in report["rejects"]} == {5, 7}
    assert all("is not tracked" in r["reason"] for r in report["rejects"])
    state = cards(db)
    assert sorted(state) == ["ZYW7631", "ZYW7632"]
    assert state["ZYW7631"][0] == "DELIVERY_EXCEPTION"
    assert state["ZYW7631"][8] == 2
    assert state["ZYW7632"][0] == "RETURNED"


def test_partner_status_words_come_from_the_partner_config(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = {"acme": {"status_words": {"handed over": "DELIVERED"}}}
    monkeypatch.setenv("PARTNER_CONFIG", json.dumps(config))
    reset_settings_cache()
    data = b"Card ID,Status,Timestamp\r\nHO1,Handed over,25-11-2025 10:00\r\n"
    assert counts(ingest_bytes(db, data, "incoming/acme/a.csv")) == (1, 1, 0, 0)
    assert cards(db)["HO1"][0] == "DELIVERED"
    other = ingest_bytes(db, data.replace(b"HO1", b"HO2"), "incoming/other/a.csv", "other")
    assert counts(other) == (1, 0, 0, 1)  # not a status word of that partner
    assert other["rejects"][0]["reason"].startswith("unknown status 'Handed over'")


def test_a_file_name_naming_two_event_types_is_rejected(db: Any) -> None:
    report = ingest_bytes(db, ROWS, "incoming/acme/Delivered and Returned.csv")
    assert report["outcome"] == "rejected_file"
    assert "names more than one event type (DELIVERED and RETURNED)" in report["reason"]
    assert cards(db) == {}


def _xlsx() -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Card ID", "User contact", "Timestamp"])
    sheet.append(["xl001", 971505556666, datetime(2025, 11, 26, 10, 0)])
    sheet["C2"].number_format = "dd/mm/yyyy hh:mm"
    sheet.append(["XL002", "0505556666", "26-Nov-2025 10:05 AM"])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "container"),
    [
        ("x Delivered.txt", ROWS, "csv"),
        ("x Delivered.TSV", ROWS.replace(b",", b"\t"), "csv"),
        ("x Delivered.CSV", ROWS, "csv"),
        ("x Delivered.csv.gz", gzip.compress(ROWS), "csv (gzip)"),
        ("x Delivered.gz", gzip.compress(ROWS), "csv (gzip)"),
        ("x Delivered.csv", gzip.compress(ROWS), "csv (gzip)"),  # gzip under a .csv name
        ("x Delivered.xlsx", None, "xlsx"),
    ],
)
def test_every_accepted_container_is_applied(
    db: Any, name: str, data: bytes | None, container: str
) -> None:
    report = ingest_bytes(db, data or _xlsx(), f"incoming/acme/{name}")
    assert report["outcome"] == "applied", report.get("reason")
    assert report["container"] == container
    state = cards(db)
    if data is None:
        assert counts(report) == (2, 2, 0, 0)
        assert state["XL001"][4] == phone_hash_of("+971505556666")
        assert state["XL001"][1].isoformat() == "2025-11-26T06:00:00+00:00"
        assert state["XL002"][0] == "DELIVERED"
    else:
        assert counts(report) == (1, 1, 0, 0)
        assert state["OUT001"][0] == "DELIVERED"


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        (
            "x.xls",
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
            "Excel 97-2003 workbook; save it as .xlsx or CSV",
        ),
        ("x.zip", b"PK\x03\x04", "ZIP archive"),
        ("x.numbers", b"PK\x03\x04", "Apple Numbers"),
        ("photo.jpg", b"\xff\xd8\xff", "is an image"),
        ("noextension", ROWS, "has no file extension"),
        ("x Delivered.xlsx", b"PK\x03\x04 not really", "workbook cannot be read"),
        ("x Delivered.xlsx", ROWS, "is not an Excel workbook"),
        ("x Delivered.csv", b"PK\x03\x04 rest", "ZIP archive or an Excel workbook"),
        ("x Delivered.csv.gz", ROWS, "not gzip-compressed"),
        ("x Delivered.csv.gz", gzip.compress(ROWS)[:25], "truncated"),
    ],
)
def test_other_files_get_a_rejected_report_saying_what_to_upload(
    db: Any, name: str, data: bytes, reason: str
) -> None:
    report = ingest_bytes(db, data, f"incoming/acme/{name}")
    assert report["outcome"] == "rejected_file"
    assert reason in report["reason"]
    assert report["file_id"]
