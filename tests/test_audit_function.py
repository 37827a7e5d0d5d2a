"""The audit function (functions/audit): CloudWatch Logs deliveries of the api's audit lines
become rows of lookup_audit (README "Who looked at a card")."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg2
import pytest
from lambda_context import FakeLambdaContext

from cardstatus import audit, dbroles

EVENTS = Path(__file__).resolve().parents[1] / "events" / "audit"


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))


def delivered_lines(event: dict[str, Any]) -> list[str]:
    data = json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
    return [e["message"] for e in data["logEvents"]]


@pytest.fixture
def audit_function(db_url: str) -> Iterator[ModuleType]:
    """functions/audit/app.py, connecting as the api role, as in the stack."""
    from cardstatus_dev.paths import import_function

    module = import_function("audit")
    module.DB.reset_settings(None)
    yield module
    module.DB.reset_settings(None)


def trail(db: Any) -> list[tuple[Any, ...]]:
    with db.cursor() as cur:
        cur.execute(
            "SELECT at, caller, route, by_phone, outcome, card_ids, request_id"
            " FROM lookup_audit ORDER BY at"
        )
        found = cur.fetchall()
    db.commit()
    return found


def test_a_delivery_of_audit_lines_becomes_their_rows(
    audit_function: ModuleType, db: Any, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"{db_url} user={dbroles.API}")
    event = load_event("log_lines")
    lines = delivered_lines(event)
    result = audit_function.handler(event, FakeLambdaContext(function_name="cardstatus-audit"))
    assert result == {"appended": 2, "skipped": 0}
    first, second = (json.loads(line)["audit"] for line in lines)
    assert trail(db) == [
        (
            datetime.fromisoformat(first["at"]),
            first["caller"],
            "GET /get_card_status",
            True,
            "found",
            ["ZYW8827", "ZYW8890"],
            first["request_id"],
        ),
        (
            datetime.fromisoformat(second["at"]),
            "arn:aws:sts::123456789012:assumed-role/support/alice",
            "GET /cards/{card_id}",
            False,
            "not_found",
            ["ZYW0000"],
            second["request_id"],
        ),
    ]
    assert [t["caller"] for t in audit.trail(db, card_id="ZYW8890")] == [first["caller"]]


def test_cloudwatch_logs_health_check_appends_nothing(audit_function: ModuleType, db: Any) -> None:
    result = audit_function.handler(load_event("control_message"), FakeLambdaContext())
    assert result == {"appended": 0, "skipped": 0}
    assert trail(db) == []


def test_lines_that_are_not_audit_records_are_counted_and_skipped(
    audit_function: ModuleType, db: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from cardstatus_dev.local_audit import subscription_event

    good = delivered_lines(load_event("log_lines"))[0]
    record = json.loads(good)["audit"]
    bad = [
        "not json",
        '{"level": "INFO", "message": "request"}',
        json.dumps({"audit": {**record, "outcome": "maybe"}}),
        json.dumps({"audit": {**record, "by_phone": "yes"}}),
        json.dumps({"audit": {**record, "card_ids": "ZYW8827"}}),
        json.dumps({"audit": {**record, "at": "2026-12-06T09:14:03"}}),  # no time zone
        json.dumps({"audit": {k: v for k, v in record.items() if k != "caller"}}),
    ]
    result = audit_function.handler(subscription_event([*bad, good]), FakeLambdaContext())
    assert result == {"appended": 1, "skipped": len(bad)}
    assert [row[5] for row in trail(db)] == [["ZYW8827", "ZYW8890"]]
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "were skipped" in logged and "not json" not in logged  # counted, never echoed


def test_a_batch_the_database_refuses_fails_the_invocation_for_a_retry(
    audit_function: ModuleType, db: Any
) -> None:
    """CloudWatch Logs invokes asynchronously: a raised error makes Lambda retry the batch
    (then its dead-letter queue, infra/audit.py); nothing of it is half written."""
    with db.cursor() as cur:
        cur.execute(
            "CREATE FUNCTION refuse_second() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " IF NEW.outcome = 'not_found' THEN RAISE EXCEPTION 'refused'; END IF;"
            " RETURN NEW; END $$;"
            " CREATE TRIGGER refuse_second BEFORE INSERT ON lookup_audit"
            " FOR EACH ROW EXECUTE FUNCTION refuse_second()"
        )
    db.commit()
    event = load_event("log_lines")
    with pytest.raises(psycopg2.errors.RaiseException):
        audit_function.handler(event, FakeLambdaContext())
    assert trail(db) == []  # one statement: the first row went with the second
    with db.cursor() as cur:
        cur.execute("DROP TRIGGER refuse_second ON lookup_audit")
    db.commit()
    assert audit_function.handler(event, FakeLambdaContext())["appended"] == 2  # the retry
    assert len(trail(db)) == 2


def test_an_audit_line_reads_back_as_the_record_it_was() -> None:
    record = audit.LookupRecord(
        "arn:aws:sts::123456789012:assumed-role/caller/caller",
        "POST /cards/search",
        True,
        audit.FOUND,
        ("ZYW8827", "ZYW8890"),
        request_id="r-1",
        at=datetime(2026, 12, 6, 9, 14, 3, 512337, tzinfo=UTC),
    )
    line = record.to_line()
    assert "\n" not in line and line.startswith('{"audit":')
    assert audit.LookupRecord.from_line(line) == record
    assert audit.records_of([line, "x", line]) == ([record, record], 1)
