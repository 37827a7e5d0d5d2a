"""Ingestion truth, round 3, end to end on PostgreSQL (README "Partner files and reports"):
date order from evidence, misdated events, unknown status words, unconfigured partners,
over-long fields, workbooks (another sheet, DTDs, bombs), reasons without masked numbers."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import openpyxl
import pytest
from test_pipeline import cards

from cardstatus.config import load_settings, reset_settings_cache
from cardstatus.ingest import SourceInfo, ingest, ingest_retrying


def ingest_bytes(conn: Any, data: bytes, key: str, partner: str = "acme") -> dict[str, Any]:
    return ingest(conn, io.BytesIO(data), SourceInfo(key=key, partner=partner), load_settings())


def counts(report: dict[str, Any]) -> tuple[int, ...]:
    c = report["counts"]
    return (c["rows"], c["accepted"], c["duplicate"], c["rejected"])


def warnings(report: dict[str, Any]) -> list[tuple[int, str]]:
    return [(w["line"], w["warning"]) for w in report["warnings"]]


US_DATES = (
    b"Card ID,Phone,Timestamp\n"
    b"SPX006,0501112206,12/05/2026 10:15 AM\n"
    b"SPX007,0501112207,11/30/2026 04:20 PM\n"
    b"SPX008,0501112201,12/04/2026 09:00 AM\n"
)


def test_a_month_first_file_is_read_month_first_with_a_warning_naming_the_line(db: Any) -> None:
    report = ingest_bytes(db, US_DATES, "incoming/speedy/speedy us dates - Delivered.csv", "speedy")
    assert report["outcome"] == "applied", report
    assert counts(report) == (3, 3, 0, 0)
    (line, warning), *_ = warnings(report)
    assert line == 3
    assert "dates are read month-first: line 3 ('11/30/2026 04:20 PM')" in warning
    assert "the partner's setting is day-first" in warning
    with db.cursor() as cur:
        cur.execute("SELECT card_id, occurred_at::text FROM card_event ORDER BY 1")
        assert cur.fetchall() == [
            ("SPX006", "2026-12-05 06:15:00+00"),
            ("SPX007", "2026-11-30 12:20:00+00"),
            ("SPX008", "2026-12-04 05:00:00+00"),
        ]
    db.commit()


def test_a_non_seekable_body_is_opened_again_for_the_other_order(db: Any) -> None:
    class Stream:
        def __init__(self) -> None:
            self._data = io.BytesIO(US_DATES)
            self.read = self._data.read

        def __enter__(self) -> Stream:
            return self

        def __exit__(self, *_exc: object) -> None:
            return None

    opened: list[Stream] = []

    def open_body() -> Stream:
        opened.append(Stream())
        return opened[-1]

    source = SourceInfo(key="incoming/speedy/us - Delivered.csv", partner="speedy")
    report = ingest_retrying(db, open_body, source, load_settings())  # type: ignore[arg-type]
    assert report["outcome"] == "applied" and counts(report) == (3, 3, 0, 0)
    assert len(opened) == 2


def test_rows_that_disagree_on_the_date_order_reject_the_file_naming_both_lines(db: Any) -> None:
    data = US_DATES + b"SPX009,0501112209,25/11/2026 09:00 AM\n"
    report = ingest_bytes(db, data, "incoming/speedy/mixed - Delivered.csv", "speedy")
    assert report["outcome"] == "rejected_file"
    assert report["reason"].startswith(
        "the dates disagree: line 3 ('11/30/2026 04:20 PM') is valid only month-first and "
        "line 5 ('25/11/2026 09:00 AM') only day-first"
    )
    assert cards(db) == {}


def test_a_configured_order_that_the_file_contradicts_is_a_warning(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARTNER_CONFIG", json.dumps({"us": {"day_first": False}}))
    reset_settings_cache()
    data = b"Card ID,Timestamp\nA1,05/12/2026 10:00\nA2,30/11/2026 10:00\n"
    report = ingest_bytes(db, data, "incoming/us/x - Delivered.csv", "us")
    assert report["outcome"] == "applied" and counts(report) == (2, 2, 0, 0)
    assert warnings(report)[0][0] == 3
    assert "dates are read day-first" in warnings(report)[0][1]
    assert "the partner's setting is month-first" in warnings(report)[0][1]
    # ambiguous dates only: the configured order, no warning
    report = ingest_bytes(
        db, b"Card ID,Timestamp\nB1,05/12/2026 10:00\n", "incoming/us/y.csv", "us"
    )
    assert report["warnings"] == [] or "day-first" not in json.dumps(report["warnings"])


def test_an_event_before_the_cards_first_pickup_is_a_warning_on_its_line(db: Any) -> None:
    pickup = b"Card ID,Timestamp\nP1,2026-12-03 10:00\nP2,2026-12-03 10:00\n"
    assert ingest_bytes(db, pickup, "incoming/acme/a - Pickup.csv")["outcome"] == "applied"
    delivered = b"Card ID,Timestamp\nP1,2026-12-04 10:00\nP2,2026-12-02 10:00\n"
    report = ingest_bytes(db, delivered, "incoming/acme/b - Delivered.csv")
    assert report["outcome"] == "applied" and counts(report) == (2, 2, 0, 0)
    assert warnings(report) == [
        (
            3,
            "event P2 DELIVERED on 2026-12-02 is before the card's first pickup on 2026-12-03: "
            "check the date (and its day/month order)",
        )
    ]
    assert report["counts"]["warnings"] == 1


def test_an_event_before_its_own_files_pickup_is_a_warning_and_later_ones_are_not(
    db: Any,
) -> None:
    data = (
        b"Card ID,Status,Timestamp\n"
        b"Q1,Delivered,2026-12-04 10:00\n"  # before the pickup of the same file
        b"Q1,Picked up,2026-12-05 10:00\n"
        b"Q1,Returned,2026-12-06 10:00\n"  # after it: fine
        b"Q2,Picked up,2026-12-01 10:00\n"
        b"Q2,Delivered,2026-12-02 10:00\n"
    )
    report = ingest_bytes(db, data, "incoming/acme/mixed.csv")
    assert report["outcome"] == "applied" and counts(report) == (5, 5, 0, 0)
    assert [line for line, text in warnings(report) if "first pickup" in text] == [2]


def test_an_event_far_from_the_files_other_events_is_a_warning_on_its_line(db: Any) -> None:
    data = (
        b"Card ID,Timestamp\nF1,2026-12-01 10:00\nF2,2026-12-03 10:00\n"
        b"F3,2026-10-01 10:00\nF4,2026-11-20 10:00\n"
    )
    report = ingest_bytes(db, data, "incoming/acme/far - Pickup.csv")
    assert report["outcome"] == "applied"
    assert warnings(report) == [
        (
            4,
            "the event on 2026-10-01 is more than 31 days from the file's other events "
            "(from 2026-11-20 to 2026-12-03): check the date (and its day/month order)",
        )
    ]
    # 31 days apart exactly is not far
    near = b"Card ID,Timestamp\nN1,2026-11-01 10:00\nN2,2026-12-02 10:00\n"
    assert ingest_bytes(db, near, "incoming/acme/near - Pickup.csv")["warnings"] == []


def test_an_unknown_status_cell_rejects_its_row_whatever_the_file_name_says(db: Any) -> None:
    data = b"Card ID,Timestamp,Status\nU1,2026-12-01 10:00,Cancelled\nU2,2026-12-01 10:00,\n"
    report = ingest_bytes(db, data, "incoming/acme/x - Delivered.csv")
    assert counts(report) == (2, 1, 0, 1)
    assert report["rejects"] == [
        {
            "line": 2,
            "reason": "unknown status 'Cancelled': add it to the partner's status words "
            "(PARTNER_CONFIG status_words)",
            "card_id": "U1",
        }
    ]
    assert cards(db)["U2"][0] == "DELIVERED"  # a blank cell falls back to the file name


def test_arabic_status_words_configured_for_a_partner_are_applied(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    words = {"تم التوصيل": "DELIVERED", "مرتجع": "RETURNED"}
    monkeypatch.setenv("PARTNER_CONFIG", json.dumps({"ar": {"status_words": words}}))
    reset_settings_cache()
    data = "Card ID,Timestamp,الحالة Status\nR1,2026-12-01 10:00,تم التوصيل\nR2,2026-12-01 10:00,مرتجع\n"
    report = ingest_bytes(db, data.encode(), "incoming/ar/export.csv", "ar")
    assert counts(report) == (2, 2, 0, 0), report
    state = cards(db)
    assert (state["R1"][0], state["R2"][0]) == ("DELIVERED", "RETURNED")


def test_an_unconfigured_partner_is_read_with_the_defaults_and_says_so(db: Any) -> None:
    data = b"Card ID,Timestamp\nZ1,2026-12-01 10:00\n"
    report = ingest_bytes(db, data, "incoming/newco/x - Pickup.csv", "newco")
    assert report["outcome"] == "applied"
    assert warnings(report) == [
        (
            0,
            "partner 'newco' is not configured (PARTNER_CONFIG): its file was read with the "
            "'default' partner's settings (timezone Asia/Dubai, day-first dates, phone region "
            "AE, 0 extra status word(s))",
        )
    ]
    assert ingest_bytes(db, data, "incoming/acme/x - Pickup.csv")["warnings"] == []


def test_a_15000_character_note_rejects_its_row_not_the_file(db: Any) -> None:
    data = (
        b"Card ID,Timestamp,Comment\nL1,2026-12-01 10:00,ok\nL2,2026-12-01 10:00,"
        + b"n" * 15_000
        + b"\nL3,2026-12-01 10:00,fine\n"
    )
    report = ingest_bytes(db, data, "incoming/acme/notes - Delivered.csv")
    assert report["outcome"] == "applied"
    assert counts(report) == (3, 2, 0, 1)
    assert report["rejects"][0]["line"] == 3
    assert "15,000 characters long, over the limit of 10,000" in report["rejects"][0]["reason"]


def test_the_streaming_size_limit_says_mb_and_split_it_without_a_masked_number(db: Any) -> None:
    import dataclasses

    cfg = dataclasses.replace(load_settings(), max_object_bytes=12_345_678)
    data = b"Card ID,Timestamp\n" + b"A1,2026-12-01 10:00\n" * 700_000
    source = SourceInfo(key="incoming/acme/big - Pickup.csv", partner="acme", size_bytes=None)
    report = ingest(db, io.BytesIO(data), source, cfg)
    assert report["outcome"] == "rejected_file"
    assert report["reason"] == (
        "the file is larger than the limit of 12.3 MB (12,345,678 bytes) for one file; "
        "split it into files of at most 12.3 MB"
    )


def test_a_rejected_file_counts_its_data_rows_including_over_long_ones(db: Any) -> None:
    data = (
        b"Report\nGenerated 2026-12-01\n\nCard ID,Timestamp\nA1,2026-12-01 10:00\n"
        b"A2," + b"x" * 20_000 + b"\n"
    )
    report = ingest_bytes(db, data, "incoming/acme/report.csv")  # no event type in the name
    assert report["outcome"] == "rejected_file"
    assert report["counts"]["rows"] == 2 and report["counts"]["rejected"] == 2


# --------------------------------------------------------------------------- workbooks


def xlsx(build: Any) -> bytes:
    wb = openpyxl.Workbook()
    build(wb)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def test_the_first_visible_sheet_is_read(db: Any) -> None:
    def build(wb: Any) -> None:
        hidden = wb.active
        hidden.title = "Lookup"
        hidden.append(["Card ID", "Timestamp"])
        hidden.append(["H1", "2026-12-01 10:00"])
        hidden.sheet_state = "hidden"
        data = wb.create_sheet("Deliveries")
        data.append(["Card ID", "Timestamp"])
        data.append(["V1", "2026-12-01 10:00"])

    report = ingest_bytes(db, xlsx(build), "incoming/acme/x - Delivered.xlsx")
    assert report["outcome"] == "applied"
    assert sorted(cards(db)) == ["V1"]


def test_data_on_another_sheet_is_named_in_the_reason(db: Any) -> None:
    def build(wb: Any) -> None:
        summary = wb.active
        summary.title = "Summary"
        summary.append(["Total", "2"])
        data = wb.create_sheet("Deliveries")
        data.append(["Card ID", "Timestamp"])
        data.append(["V1", "2026-12-01 10:00"])

    report = ingest_bytes(db, xlsx(build), "incoming/acme/x - Delivered.xlsx")
    assert report["outcome"] == "rejected_file"
    assert report["reason"].startswith("sheet 'Summary' has no card-id and timestamp header (")
    assert report["reason"].endswith(
        "the data seems to be on sheet 'Deliveries': move it first or upload that sheet alone"
    )


def _workbook_with_sheet_xml(sheet_xml: bytes) -> bytes:
    base = xlsx(lambda wb: wb.active.append(["Card ID", "Timestamp"]))
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(base)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                body = sheet_xml
            dst.writestr(info, body, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


DTD_SHEET = (
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    b'<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>&xxe;</t></is></c></row></sheetData>'
    b"</worksheet>"
)


@pytest.mark.parametrize(
    ("sheet", "reason"),
    [
        (DTD_SHEET, "declares a DTD (document type)"),
        (b"<worksheet><sheetData><row>", "is not well-formed XML"),
    ],
)
def test_a_hostile_workbook_is_a_rejected_file_not_a_retry(
    db: Any, sheet: bytes, reason: str
) -> None:
    report = ingest_bytes(db, _workbook_with_sheet_xml(sheet), "incoming/acme/x - Delivered.xlsx")
    assert report["outcome"] == "rejected_file"
    assert reason in report["reason"]


def test_an_event_before_a_pickup_of_the_same_file_is_a_warning(db: Any) -> None:
    data = (
        b"Card ID,Timestamp,Status\nS1,2026-12-03 10:00,Picked up\nS1,2026-12-02 10:00,Delivered\n"
        b"S2,2026-12-02 10:00,Delivered\nS3,2026-12-01 10:00,Picked up\n"
        b"S3,2026-12-02 10:00,Delivered\n"
    )
    report = ingest_bytes(db, data, "incoming/acme/same file.csv")
    assert [line for line, _w in warnings(report)] == [3]  # S2 has no pickup at all
