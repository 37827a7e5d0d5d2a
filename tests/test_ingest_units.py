"""Pure parts of ingestion (no database): rows → COPY text, the report's JSON, the limits."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from phone_support import phone_hash_of

from cardstatus.config import PartnerSettings, load_settings
from cardstatus.ingest import limits
from cardstatus.ingest.report import Counts, FileOutcome, FileReport, SourceInfo
from cardstatus.ingest.rows import RowOutcomes, copy_text, count_data_rows, normalised_rows
from cardstatus.model import CardStatus, FileRejected
from cardstatus.normalise import map_headers
from fixture_paths import ROOT


def _rows(lines: list[list[str]], outcomes: RowOutcomes, **kw: Any) -> bytes:
    headers = map_headers(["ID", "Card ID", "Timestamp", "Phone", "Comment"])
    records = iter(enumerate(lines, start=2))
    return b"".join(
        normalised_rows(
            records,
            headers,
            CardStatus.DELIVERY_EXCEPTION,
            PartnerSettings("p"),
            {"not available": "recipient_unavailable"},
            outcomes,
            **kw,
        )
    )


def test_rows_become_copy_text_and_rejects_are_counted() -> None:
    outcomes = RowOutcomes()
    text = _rows(
        [
            ["r1", "C1", "2024-01-01T10:00:00Z", "0501234567", "User not available"],
            ["r2", "BAD!", "2024-01-01T10:00:00Z", "", ""],
            ["", "", "", "", ""],
            ["r\t3", "C2", "02-01-2024 10:00", "", ""],
        ],
        outcomes,
    )
    # The phone as its hash, key version and last 4 digits; never the number (README "Privacy").
    assert text.decode().splitlines() == [
        f"2\tC1\tDELIVERY_EXCEPTION\t2024-01-01T10:00:00+00:00\t{phone_hash_of('+971501234567')}"
        "\t1\t4567\tUser not available\trecipient_unavailable\tr1",
        "5\tC2\tDELIVERY_EXCEPTION\t2024-01-02T06:00:00+00:00\t\\N\t\\N\t\\N\t\\N\tother\tr\\t3",
    ]
    assert (outcomes.rows, outcomes.valid, outcomes.rejected) == (3, 2, 1)
    assert outcomes.reject_details[0]["line"] == 3
    outcomes.close()


def test_row_limit_is_checked_while_streaming() -> None:
    outcomes = RowOutcomes()
    line = ["r", "C1", "2024-01-01T10:00:00Z", "", ""]
    with pytest.raises(FileRejected, match="split it into files of at most 2 rows"):
        _rows([line, line, line], outcomes, max_rows=2)


def test_copy_text_escapes_and_nulls() -> None:
    assert copy_text(None) == "\\N"
    assert copy_text("a\\b\tc\nd\re") == "a\\\\b\\tc\\nd\\re"


def test_count_data_rows_skips_blank_records() -> None:
    assert count_data_rows(iter([(2, ["a"]), (3, []), (4, [" ", ""]), (5, ["b"])])) == 2


def test_report_json_golden() -> None:
    report = FileReport(
        SourceInfo(key="incoming/acme/x.csv", partner="acme", bucket="b", version_id="v", etag="e"),
        datetime(2024, 1, 1, 10, 0, tzinfo=UTC),
        outcome=FileOutcome.APPLIED,
        encoding="utf-8",
        delimiter=",",
        event_type="DELIVERED",
        sha256="s",
        meaning_key="m",
        size_bytes=10,
        file_id=7,
        counts=Counts(rows=3, accepted=1, duplicate=1, rejected=1, warnings=0),
        cards_touched=1,
        conflicts=0,
        status_changes=1,
        outbox={"first_id": 5, "last_id": 5},
        rejects=[{"line": 4, "reason": "bad"}],
        finished_at=datetime(2024, 1, 1, 10, 0, 1, tzinfo=UTC),
        timings={"total_ms": 1000},
    )
    assert report.to_json() == {
        "file": {
            "bucket": "b",
            "key": "incoming/acme/x.csv",
            "version_id": "v",
            "etag": "e",
            "partner": "acme",
        },
        "started_at": "2024-01-01T10:00:00+00:00",
        "outcome": "applied",
        "encoding": "utf-8",
        "delimiter": ",",
        "event_type": "DELIVERED",
        "sha256": "s",
        "meaning_key": "m",
        "size_bytes": 10,
        "file_id": 7,
        "counts": {"rows": 3, "accepted": 1, "duplicate": 1, "rejected": 1, "warnings": 0},
        "cards_touched": 1,
        "conflicts": 0,
        "status_changes": 1,
        "outbox": {"first_id": 5, "last_id": 5},
        "rejects": [{"line": 4, "reason": "bad"}],
        "rejects_listed": 1,
        "warnings": [],
        "warning_groups": [],
        "finished_at": "2024-01-01T10:00:01+00:00",
        "timings": {"total_ms": 1000},
    }
    rejected = FileReport(SourceInfo(key="k", partner="p"), datetime(2024, 1, 1, tzinfo=UTC))
    rejected.outcome, rejected.reason = FileOutcome.REJECTED_FILE, "why"
    keys = set(rejected.to_json())
    assert "reason" in keys and "file_id" not in keys and "cards_touched" not in keys


def test_limits_fit_together_with_the_function_timeout() -> None:
    cdk = json.loads((ROOT / "cdk.json").read_text())["context"]["cardstatus:shared"]
    functions = cdk["functions"]
    assert functions["ingest"]["timeoutSeconds"] == limits.FUNCTION_TIMEOUT_S
    cfg = load_settings()
    assert limits.statement_timeout_ms(cfg) < limits.FUNCTION_TIMEOUT_S * 1000
    configured = cfg.__class__(**{**cfg.__dict__, "db_statement_timeout_ms": 10**9})
    assert limits.statement_timeout_ms(configured) < limits.FUNCTION_TIMEOUT_S * 1000
    # the size limit deployed is what ingests within the function timeout at the measured rate
    assert functions["maxObjectBytes"] <= limits.MAX_OBJECT_BYTES
    assert limits.MAX_OBJECT_BYTES / limits.MEASURED_BYTES_PER_S < limits.FUNCTION_TIMEOUT_S
    assert limits.MAX_ROWS / limits.MEASURED_ROWS_PER_S < limits.FUNCTION_TIMEOUT_S


def test_a_file_over_the_size_limit_is_rejected_with_split_it(db: Any) -> None:
    from cardstatus.ingest import ingest

    big = limits.MAX_OBJECT_BYTES + 1
    source = SourceInfo(key="big - delivered.csv", partner="default", size_bytes=big)
    report = ingest(db, io.BytesIO(b"Card ID,Timestamp\n"), source, load_settings())
    assert report["outcome"] == "rejected_file"
    assert "split it into files of at most" in report["reason"]


def test_far_days_finds_the_main_date_range() -> None:
    from cardstatus.ingest.rows import far_days

    assert far_days({}) is None
    assert far_days({"2026-12-01": 5}) is None
    assert far_days({"2026-11-01": 1, "2026-12-02": 1}) is None  # 31 days: one range
    assert far_days({"2026-11-01": 1, "2026-12-03": 2}) == ("2026-12-03", "2026-12-03")
    assert far_days({"2026-11-01": 2, "2026-12-03": 1}) == ("2026-11-01", "2026-11-01")
    assert far_days({"2026-11-01": 1, "2026-12-03": 1}) == ("2026-12-03", "2026-12-03")  # tie
    days = {"2026-01-01": 1, "2026-01-20": 1, "2026-02-15": 1, "2026-06-01": 2}
    assert far_days(days) == ("2026-01-01", "2026-02-15")  # chained: 19 and 26 days apart
