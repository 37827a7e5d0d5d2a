"""`cardstatus events` (the outbox as JSON Lines) and the local runner's bus, printer and sweep
schedule (issue 15)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from moto import mock_aws
from outbox_support import insert_rows

from cardstatus_dev.cli import main
from cardstatus_dev.local_events import LOCAL_BUS, LocalEvents, describe
from fixture_paths import EVENTS

SAMPLES = EVENTS / "partner_samples"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, Any]]]:
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_events_after_ingesting_the_samples(
    db_url: str, db: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = sorted(str(p) for p in SAMPLES.glob("*.csv"))
    assert main(["ingest", "--database-url", db_url, *paths]) == 0
    capsys.readouterr()
    code, lines = run(capsys, "events", "--database-url", db_url, "--card-id", "ZYW8890")
    assert code == 0 and lines
    for line in lines:
        assert set(line) == {"event_id", "detail_type", "detail", "published_at"}
        assert line["detail_type"] == "CardStatusChanged"
        assert line["published_at"] is None  # no bus configured for the CLI
        assert line["detail"]["card_id"] == "ZYW8890"
    last = lines[-1]["detail"]
    assert last["status"] == "RETURNED"
    versions = [line["detail"]["card_version"] for line in lines]
    assert versions == sorted(set(versions))
    if len(lines) > 1:
        assert last["previous_status"] == lines[-2]["detail"]["status"]
    else:
        assert last["previous_status"] is None

    # The same files again: no new event.
    _, everything = run(capsys, "events", "--database-url", db_url)
    main(["ingest", "--database-url", db_url, *paths])
    capsys.readouterr()
    _, again = run(capsys, "events", "--database-url", db_url)
    assert again == everything
    _, pending = run(capsys, "events", "--database-url", db_url, "--pending")
    assert pending == everything


def test_events_filters_and_usage_errors(
    db_url: str, db: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = insert_rows(db, 2)
    with db.cursor() as cur:
        cur.execute("UPDATE status_outbox SET published_at = now() WHERE id = %s", (ids[0],))
    db.commit()
    _, lines = run(capsys, "events", "--database-url", db_url)
    assert [x["detail"]["card_id"] for x in lines] == ["CARD00000", "CARD00001"]
    _, lines = run(capsys, "events", "--database-url", db_url, "--pending")
    assert [x["detail"]["card_id"] for x in lines] == ["CARD00001"]
    _, lines = run(capsys, "events", "--database-url", db_url, "--since", "2999-01-01T00:00:00Z")
    assert lines == []
    _, lines = run(capsys, "events", "--database-url", db_url, "--since", "2000-01-01T00:00Z")
    assert len(lines) == 2
    code, lines = run(capsys, "events", "--database-url", db_url, "--since", "yesterday")
    assert code == 2 and lines[0]["error"]["code"] == "invalid_parameter"
    # --since takes a date or a time without offset (UTC), as `files --since` does (A12).
    code, lines = run(capsys, "events", "--database-url", db_url, "--since", "2000-01-01")
    assert code == 0 and len(lines) == 2
    code, lines = run(capsys, "events", "--database-url", db_url, "--since", "2999-01-01T08:00")
    assert code == 0 and lines == []


def test_describe_one_line_per_event() -> None:
    event = {
        "detail": {
            "card_id": "ZYW8890",
            "status": "RETURNED",
            "previous_status": "DELIVERY_EXCEPTION",
            "card_version": 3,
            "partner": "acme",
            "file_id": 4,
        }
    }
    assert describe(event) == "event ZYW8890 DELIVERY_EXCEPTION -> RETURNED v3 (acme, file 4)"
    event["detail"]["previous_status"] = None
    assert describe(event).startswith("event ZYW8890 (new) -> RETURNED")


def _wait(predicate: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError("timed out")


def _entry(detail: dict[str, Any]) -> dict[str, Any]:
    return {
        "Source": "cardstatus",
        "DetailType": "CardStatusChanged",
        "Detail": json.dumps(detail),
        "EventBusName": LOCAL_BUS,
    }


def test_local_bus_prints_one_line_per_file_and_runs_the_sweeper(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A6: the handlers publish in-process (no HTTP), rules on the bus still get every event,
    and the terminal gets one line per file, not one per event."""
    sweeps: list[dict[str, Any]] = []
    health_checks: list[dict[str, Any]] = []

    def sweeper(event: dict[str, Any], context: Any) -> dict[str, Any]:
        assert context.get_remaining_time_in_millis() > 0
        if event.get("task") == "partner_health":  # the second schedule, as in the stack
            health_checks.append(event)
            return {"partners": {}, "alerting": []}
        assert event["detail-type"] == "Scheduled Event"
        sweeps.append(event)
        return {"published": 0, "failed": 0}

    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        local = LocalEvents(session.client, sweeper)
        local.use_in_process_client()
        from cardstatus import events

        sqs = session.client("sqs")
        queue = sqs.create_queue(QueueName="my-consumer")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
        rules = session.client("events")
        rules.put_rule(
            Name="mine", EventBusName=LOCAL_BUS, EventPattern='{"source": ["cardstatus"]}'
        )
        rules.put_targets(
            Rule="mine",
            EventBusName=LOCAL_BUS,
            Targets=[{"Id": "q", "Arn": arn["Attributes"]["QueueArn"]}],
        )
        local.start()
        try:
            client = events.events_client()
            assert client is local.client
            details = [
                {
                    "card_id": f"ZYW{i:04d}",
                    "status": "RETURNED",
                    "previous_status": "DELIVERED",
                    "card_version": 2,
                    "partner": "acme",
                    "file_id": 9,
                }
                for i in range(25)
            ]
            for start in range(0, 25, 10):
                answer = client.put_events(Entries=[_entry(d) for d in details[start : start + 10]])
                assert answer["FailedEntryCount"] == 0
                assert all(e["EventId"] for e in answer["Entries"])
            bad = client.put_events(Entries=[{**_entry(details[0]), "Detail": "not json"}])
            assert bad["FailedEntryCount"] == 1
            late = {**_entry({"partner": "speedy"}), "DetailType": "PartnerFeedLate"}
            assert client.put_events(Entries=[late])["FailedEntryCount"] == 0
            seen: list[str] = []

            def printed() -> bool:
                seen.append(capsys.readouterr().out)
                return "events file 9: 25 published" in "".join(seen)

            _wait(printed)
            _wait(lambda: sweeps)  # the first sweep runs at start
            _wait(lambda: health_checks)  # and so does the first partner feed health check
            got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
            assert json.loads(got[0]["Body"])["detail"]["file_id"] == 9
        finally:
            local.stop()
    out = "".join(seen) + capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("events ")]
    assert sorted(lines) == [
        f"events PartnerFeedLate: 1 published to {LOCAL_BUS} (last: partner speedy)",
        f"events file 9: 25 published to {LOCAL_BUS} (last: ZYW0024 DELIVERED -> RETURNED v2, acme)",
    ]
    assert not local.printer.is_alive() and not local.schedule.is_alive()
