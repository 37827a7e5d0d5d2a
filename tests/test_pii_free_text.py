"""PII in free text (issue 18 N12): a header-less file's first row never reaches a `reason`
(report, database, API), and object keys are masked in the ingest logs. The masking itself:
tests/test_redaction_props.py."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from cardstatus.config import load_settings
from cardstatus.ingest import ingest_path
from cardstatus.model import FileRejected
from cardstatus.normalise.headers import map_headers

FIRST_ROW = [
    "ZYW1234",
    "Ahmed Ali",
    "12 Palm Street Dubai",
    "0585949014",
    "2024-04-01 10:00",
    "ahmed.ali@example.com",
]


def test_a_data_row_is_never_quoted_as_headers() -> None:
    with pytest.raises(FileRejected) as info:
        map_headers(FIRST_ROW)
    message = str(info.value)
    assert message.startswith("missing required column(s): card id, timestamp;")
    assert "no header row found" in message and "6 columns" in message
    for cell in ("Ahmed", "Palm", "9014", "ahmed.ali", "ZYW1234"):
        assert cell not in message


def test_header_names_are_still_shown() -> None:
    with pytest.raises(FileRejected, match=r"found: 'Card Number', 'Address Line 1'"):
        map_headers(["Card Number", "Address Line 1"])


def test_a_header_less_file_reports_no_customer_data(db: Any, tmp_path: Path) -> None:
    path = tmp_path / "headerless - Delivered.csv"
    path.write_text(",".join(FIRST_ROW) + "\nZYW1235,Sara,1 Road,0545576586,2024-04-01,s@x.io\n")
    report = ingest_path(db, path, load_settings(), partner="acme")
    assert report["outcome"] == "rejected_file"
    stored = json.dumps(report)
    with db.cursor() as cur:
        cur.execute("SELECT report::text FROM ingested_file WHERE id = %s", (report["file_id"],))
        stored += cur.fetchone()[0]
    for cell in ("Ahmed", "Palm", "0585949014", "ahmed.ali", "Sara"):
        assert cell not in stored
    assert "no header row found" in report["reason"]


def test_object_keys_are_masked_in_the_ingest_logs() -> None:
    from cardstatus.s3ingest import S3ObjectRef
    from cardstatus_dev.paths import import_function

    import_function("ingest")  # the handler package, as Lambda loads it
    from functions.ingest import reporting

    stream = io.StringIO()
    previous = reporting.logger.registered_handler.setStream(stream)
    try:
        ref = S3ObjectRef(bucket="b", key="incoming/acme/customer 0585949014 - Delivered.csv")
        reporting.file_ingested(ref, {"outcome": "applied", "counts": {}, "reason": None})
        reporting.redelivery(ref, {"outcome": "applied", "file_id": 1})
    finally:
        reporting.logger.registered_handler.setStream(previous)
    logged = stream.getvalue()
    assert "customer ******9014 - Delivered.csv" in logged
    assert "0585949014" not in logged
