"""Status-change events (README "Events", issue 15): the outbox publisher, the ingest
handler's publish after commit and the sweeper, against a real PostgreSQL and a moto
EventBridge bus."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from functools import partial
from types import SimpleNamespace
from typing import Any

import boto3
import psycopg2
import pytest
from botocore.exceptions import EndpointConnectionError
from lambda_context import FakeLambdaContext
from moto import mock_aws
from outbox_support import (
    BUS,
    Recorder,
    assert_valid_events,
    insert_rows,
    outbox,
    validator,
)

from cardstatus import config, events
from cardstatus.config import EventSettings
from fixture_paths import EVENTS

BUCKET = "cardstatus-local-partner-files"
DELIVERED_KEY = "incoming/acme/Sample Card Status Info - Delivered.csv"
PARTNER_FILES = EVENTS / "partner_files"
CFG = EventSettings(bus_name=BUS, sweep_min_age_s=0, concurrency=2)


Context = partial(FakeLambdaContext, function_name="cardstatus-test")


@pytest.fixture
def aws(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.Session]:
    monkeypatch.setenv("EVENT_BUS_NAME", BUS)
    monkeypatch.setenv("EVENTS_SWEEP_MIN_AGE_S", "0")
    config.reset_settings_cache()
    with mock_aws():
        yield boto3.Session(region_name="us-east-1")
    config.reset_settings_cache()


@pytest.fixture
def recorder(aws: boto3.Session) -> Recorder:
    return Recorder(aws)


@pytest.fixture
def out(db: Any) -> Any:
    """The test database's connection (its outbox is empty)."""
    return db


@pytest.fixture
def s3(aws: boto3.Session) -> Any:
    client = aws.client("s3")
    client.create_bucket(Bucket=BUCKET)
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return client


@pytest.fixture
def sweeper(recorder: Recorder) -> Iterator[Any]:
    from functions.sweeper import app

    app.DB.reset_settings(None)
    app._events = recorder.events
    yield app
    app.DB.discard()
    app._events = None


@pytest.fixture
def ingest(ingest_app: Any, recorder: Recorder, out: Any) -> Iterator[Any]:
    ingest_app._events = recorder.events
    yield ingest_app
    ingest_app._events = None


class Spy:
    """Delegates to a real client; records each PutEvents call's entry count; can fail
    chosen entries (by card id) a number of times, or raise instead of answering."""

    def __init__(self, client: Any, fail: dict[str, int] | None = None) -> None:
        self.client = client
        self.fail = dict(fail or {})
        self.calls: list[int] = []
        self.raise_exc: BaseException | None = None
        self.delay_s = 0.0
        self.clock = FakeClock()
        self.sleep_s = 0.0  # real time, to let concurrent publishers interleave

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(len(Entries))
        if self.raise_exc is not None:
            raise self.raise_exc
        if self.delay_s:
            self.clock.advance(self.delay_s)
        if self.sleep_s:
            time.sleep(self.sleep_s)
        keep, results = [], []
        for e in Entries:
            card = json.loads(e["Detail"])["card_id"]
            if self.fail.get(card, 0) > 0:
                self.fail[card] -= 1
                results.append({"ErrorCode": "InternalFailure", "ErrorMessage": "try again"})
            else:
                keep.append(e)
                results.append(None)
        sent = iter(self.client.put_events(Entries=keep)["Entries"]) if keep else iter(())
        entries = [r if r is not None else next(sent) for r in results]
        failed = sum(1 for r in entries if "ErrorCode" in r)
        return {"FailedEntryCount": failed, "Entries": entries}


def no_sleep(_: float) -> None:
    return None


class FakeClock:
    """A monotonic clock that moves only when the bus "takes time": wall-clock free, so a
    loaded machine cannot change what these tests see."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def use_clock(monkeypatch: Any, clock: FakeClock) -> None:
    """The publisher (only it) reads this clock."""
    monkeypatch.setattr(
        events, "time", SimpleNamespace(monotonic=clock.monotonic, sleep=time.sleep)
    )


# -- publisher --------------------------------------------------------------------------------


def test_pending_rows_published_in_batches_of_ten_and_marked(out: Any, recorder: Recorder) -> None:
    ids = insert_rows(out, 25)
    spy = Spy(recorder.events)
    result = events.publish_pending(out, spy, cfg=CFG)
    assert (result.published, result.failed, result.error) == (25, 0, None)
    assert sorted(spy.calls) == [5, 10, 10]
    rows = outbox(out)
    assert [r["id"] for r in rows] == ids
    assert all(r["published_at"] is not None and r["attempts"] == 1 for r in rows)
    assert all(r["last_error"] is None for r in rows)
    got = recorder.received()
    assert sorted(e["detail"]["event_id"] for e in got) == sorted(r["event_id"] for r in rows)
    assert_valid_events(got)
    # Nothing is pending any more: a second sweep sends nothing.
    assert events.publish_pending(out, spy, cfg=CFG).published == 0
    assert len(spy.calls) == 3
    assert events.outbox_stats(out) == (0, 0.0)


def test_publish_file_sends_only_that_files_rows(out: Any, recorder: Recorder) -> None:
    mine = insert_rows(out, 3, card_prefix="MINE", file_id=7)
    other = insert_rows(out, 3, card_prefix="OTHER", file_id=8)
    assert events.publish_file(out, recorder.events, file_id=7, cfg=CFG).published == 3
    one = (other[1], other[1])
    assert events.publish_file(out, recorder.events, id_range=one, cfg=CFG).published == 1
    published = {r["id"] for r in outbox(out) if r["published_at"] is not None}
    assert published == {*mine, other[1]}
    assert events.publish_file(out, recorder.events, cfg=CFG).published == 0


def test_publish_report_follows_what_the_report_says(out: Any, recorder: Recorder) -> None:
    first = insert_rows(out, 2, card_prefix="A", file_id=7)
    second = insert_rows(out, 2, card_prefix="B", file_id=8)
    third = insert_rows(out, 2, card_prefix="C", file_id=9)

    def publish(report: dict[str, Any]) -> Any:
        return events.publish_report(out, recorder.events, report, cfg=CFG)

    # The outbox id range of the report (ingestion's report).
    result = publish(
        {"outcome": "applied", "file_id": 7, "outbox": {"first_id": first[0], "last_id": first[1]}}
    )
    assert result.published == 2
    # Changed nothing: nothing to publish (not even a look at the pending rows).
    assert publish({"outcome": "applied", "file_id": 8, "status_changes": 0}) is None
    assert publish({"outcome": "duplicate_file", "file_id": 8}) is None
    assert publish({"outcome": "rejected_file"}) is None
    # A report without outbox fields: the file's pending rows by file id.
    assert publish({"outcome": "applied", "file_id": 9}).published == 2
    no_bus = EventSettings(bus_name=None)
    report = {"outcome": "applied", "file_id": 8}
    assert events.publish_report(out, recorder.events, report, cfg=no_bus) is None
    pending = [r["id"] for r in outbox(out) if r["published_at"] is None]
    assert pending == second
    assert len(recorder.received()) == len(first) + len(third)


def test_partial_failures_are_retried_within_the_call(out: Any, recorder: Recorder) -> None:
    insert_rows(out, 12)
    spy = Spy(recorder.events, fail={"CARD00003": 2, "CARD00011": 1})
    result = events.Publisher(out, spy, CFG, sleep=no_sleep).run(
        events.sql.CLAIM_PENDING, {"min_age_s": 0}, None
    )
    assert (result.published, result.failed) == (12, 0)
    # batch 1: 10 entries, CARD00003 sent again twice; batch 2: 2 entries, CARD00011 once more
    assert sorted(spy.calls) == [1, 1, 1, 2, 10]
    assert all(r["published_at"] and r["attempts"] == 1 for r in outbox(out))
    got = recorder.received()
    assert len(got) == len({e["detail"]["event_id"] for e in got}) == 12


def test_entries_failing_every_retry_stay_pending_until_a_later_sweep(
    out: Any, recorder: Recorder
) -> None:
    insert_rows(out, 4)
    spy = Spy(recorder.events, fail={"CARD00002": 4})  # 1 try + 3 retries
    publisher = events.Publisher(out, spy, CFG, sleep=no_sleep)
    result = publisher.run(events.sql.CLAIM_PENDING, {"min_age_s": 0}, None)
    assert (result.published, result.failed, result.error) == (3, 1, None)
    stuck = next(r for r in outbox(out) if r["card_id"] == "CARD00002")
    assert stuck["published_at"] is None
    assert stuck["attempts"] == 1
    assert stuck["last_error"] == "InternalFailure: try again"
    assert events.outbox_stats(out)[0] == 1
    # The next sweep publishes it, once.
    assert events.publish_pending(out, spy, cfg=CFG).published == 1
    stuck = next(r for r in outbox(out) if r["card_id"] == "CARD00002")
    assert stuck["published_at"] is not None and stuck["attempts"] == 2
    assert stuck["last_error"] is None
    assert len(recorder.received()) == 4


def test_unreachable_bus_records_the_error_and_stops(out: Any, recorder: Recorder) -> None:
    insert_rows(out, 30)
    spy = Spy(recorder.events)
    spy.raise_exc = EndpointConnectionError(endpoint_url="https://events.us-east-1.amazonaws.com")
    cfg = EventSettings(bus_name=BUS, sweep_min_age_s=0, concurrency=1)
    result = events.publish_pending(out, spy, cfg=cfg)
    assert result.published == 0
    assert result.error and result.error.startswith("EndpointConnectionError")
    assert len(spy.calls) == 1  # the first failing call stops the run
    rows = outbox(out)
    assert all(r["published_at"] is None for r in rows)
    assert [r["attempts"] for r in rows] == [1] * 10 + [0] * 20
    assert rows[0]["last_error"].startswith("EndpointConnectionError")


def test_no_bus_configured_publishes_nothing(out: Any, recorder: Recorder) -> None:
    insert_rows(out, 2)
    result = events.publish_pending(out, recorder.events, cfg=EventSettings(bus_name=None))
    assert result.published == 0
    assert all(r["attempts"] == 0 for r in outbox(out))


def test_time_budget_leaves_the_rest_pending(out: Any, recorder: Recorder) -> None:
    insert_rows(out, 3)
    result = events.publish_pending(out, recorder.events, cfg=CFG, deadline=time.monotonic())
    assert result.timed_out and result.published == 0
    assert events.outbox_stats(out)[0] == 3


def test_a_claim_is_not_held_open_while_the_bus_is_slow(
    out: Any, recorder: Recorder, monkeypatch: Any
) -> None:
    insert_rows(out, 50)
    spy = Spy(recorder.events)
    spy.delay_s = 0.2
    use_clock(monkeypatch, spy.clock)
    monkeypatch.setattr(events, "CHUNK_MAX_S", 0.3)
    cfg = EventSettings(bus_name=BUS, sweep_min_age_s=0, concurrency=1)
    started = spy.clock.monotonic()
    result = events.publish_pending(out, spy, cfg=cfg)
    # Two slow calls pass the chunk's 0.3 s: the claim ends there instead of after 5 calls.
    assert spy.clock.monotonic() - started <= 0.4 + 1e-9
    assert result.timed_out and 1 <= result.published < 50 and result.failed == 0
    rows = outbox(out)
    assert sum(1 for r in rows if r["published_at"]) == result.published
    assert all(r["attempts"] == 0 for r in rows if r["published_at"] is None)


def test_sweeper_leaves_fresh_rows_to_the_ingest_function(out: Any, recorder: Recorder) -> None:
    insert_rows(out, 2)  # created five minutes ago
    with out.cursor() as cur:
        cur.execute("UPDATE status_outbox SET created_at = now() WHERE card_id = 'CARD00001'")
    out.commit()
    result = events.publish_pending(out, recorder.events, cfg=CFG, min_age_s=60)
    assert result.published == 1
    assert [r["published_at"] is None for r in outbox(out)] == [False, True]


def test_concurrent_publishers_never_send_a_row_twice(
    out: Any, recorder: Recorder, db_url: str
) -> None:
    insert_rows(out, 200)
    spy = Spy(recorder.events)
    spy.sleep_s = 0.01
    results: list[events.PublishResult] = []
    cfg = EventSettings(bus_name=BUS, sweep_min_age_s=0, concurrency=1)

    def sweep() -> None:
        conn = psycopg2.connect(db_url)
        try:
            # small claims so that the publishers interleave
            publisher = events.Publisher(conn, spy, cfg, claim_rows=20)
            results.append(publisher.run(events.sql.CLAIM_PENDING, {"min_age_s": 0}, None))
        finally:
            conn.close()

    threads = [threading.Thread(target=sweep) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.published for r in results) == 200
    assert sum(1 for r in results if r.published) >= 2, "expected the publishers to share work"
    got = recorder.received()
    assert len(got) == len({e["detail"]["event_id"] for e in got}) == 200
    assert all(r["attempts"] == 1 for r in outbox(out))


def test_the_ingest_role_may_publish_sweep_and_list(
    out: Any, recorder: Recorder, db_url: str
) -> None:
    """The sweeper logs in as cardstatus_ingest (0006 grants it the outbox; 0011 narrows its
    UPDATE there to the publish columns)."""
    insert_rows(out, 12)
    conn = psycopg2.connect(db_url, user="cardstatus_ingest")
    try:
        assert events.publish_pending(conn, recorder.events, cfg=CFG).published == 12
        assert events.outbox_stats(conn) == (0, 0.0)
        assert len(list(events.list_outbox(conn))) == 12
    finally:
        conn.close()


# -- ingest handler + sweeper -----------------------------------------------------------------


LATER_KEY = "incoming/acme/later - Returned.csv"
# QRK1001 is returned after its delivery (a change); QRK1002's return is older than its
# delivery (no change of the current status, no event).
LATER_BODY = b"Card ID,Timestamp\nQRK1001,2024-03-05T10:00:00Z\nQRK1002,2024-02-01T10:00:00Z\n"


def _sqs_event(key: str) -> dict[str, Any]:
    event = json.loads((EVENTS / "ingest" / "sqs_s3_put.json").read_text())
    body = json.loads(event["Records"][0]["body"])
    body["Records"][0]["s3"]["object"]["key"] = key.replace(" ", "+")
    body["Records"][0]["s3"]["object"].pop("eTag")
    event["Records"][0]["body"] = json.dumps(body)
    return dict(event)


def _deliver(ingest: Any, s3: Any, key: str = DELIVERED_KEY, body: bytes | None = None) -> Any:
    if body is None:
        body = (PARTNER_FILES / "acme utf8-bom semicolon - Delivered.csv").read_bytes()
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return ingest.handler(_sqs_event(key), Context())


def _report(s3: Any, key: str = DELIVERED_KEY) -> dict[str, Any]:
    body = s3.get_object(Bucket=BUCKET, Key=f"reports/{key}.json")["Body"].read()
    return dict(json.loads(body))


def test_ingest_publishes_the_files_events_after_commit(
    ingest: Any, s3: Any, out: Any, recorder: Recorder
) -> None:
    assert _deliver(ingest, s3) == {"batchItemFailures": []}
    report = _report(s3)
    assert report["outcome"] == "applied"
    rows = outbox(out)
    assert len(rows) == report["counts"]["accepted"] == 3
    assert all(r["published_at"] is not None for r in rows)
    got = recorder.received()
    assert sorted(e["detail"]["event_id"] for e in got) == sorted(r["event_id"] for r in rows)
    assert {e["detail"]["file_id"] for e in got} == {report["file_id"]}
    assert_valid_events(got)
    assert all("phone" not in json.dumps(e["detail"]) for e in got)


def test_bus_unavailable_ingestion_succeeds_and_a_later_sweep_publishes_once(
    ingest: Any, sweeper: Any, s3: Any, out: Any, recorder: Recorder
) -> None:
    recorder.delete_bus()
    assert _deliver(ingest, s3) == {"batchItemFailures": []}
    assert _report(s3)["outcome"] == "applied"
    rows = outbox(out)
    assert len(rows) == 3
    assert all(r["published_at"] is None and r["attempts"] == 1 for r in rows)
    assert all("ResourceNotFoundException" in r["last_error"] for r in rows)

    # Still down: the sweep fails to publish but does not fail.
    summary = sweeper.handler({"time": "2026-12-01T10:00:00Z"}, Context())
    assert summary["published"] == 0 and summary["pending"] == 3

    recorder.restore_bus()
    summary = sweeper.handler({"time": "2026-12-01T10:01:00Z"}, Context())
    assert (summary["published"], summary["failed"], summary["pending"]) == (3, 0, 0)
    assert sweeper.handler({}, Context())["published"] == 0
    got = recorder.received()
    assert sorted(e["detail"]["event_id"] for e in got) == sorted(r["event_id"] for r in rows)
    assert_valid_events(got)


def test_crash_after_commit_before_publish_sweeper_publishes_exactly_the_missing_events(
    ingest: Any, sweeper: Any, s3: Any, out: Any, recorder: Recorder, monkeypatch: Any
) -> None:
    _deliver(ingest, s3)  # a first file, published normally
    first = {r["event_id"] for r in outbox(out)}
    assert len(recorder.received()) == len(first) == 3

    def crash(*args: Any, **kwargs: Any) -> None:
        raise SystemExit("the container died after the commit")

    monkeypatch.setattr(events, "publish_file", crash)
    with pytest.raises(SystemExit):
        _deliver(ingest, s3, LATER_KEY, LATER_BODY)
    monkeypatch.undo()
    assert _report(s3, LATER_KEY)["outcome"] == "applied"
    pending = [r for r in outbox(out) if r["published_at"] is None]
    assert [(r["card_id"], r["card_version"]) for r in pending] == [("QRK1001", 2)]
    assert pending[0]["detail"]["previous_status"] == "DELIVERED"
    assert pending[0]["detail"]["status"] == "RETURNED"
    missing = {r["event_id"] for r in pending}

    summary = sweeper.handler({}, Context())
    assert summary["published"] == len(missing)
    got = recorder.received()
    assert len(got) == len({e["detail"]["event_id"] for e in got}) == 3 + len(missing)
    assert {e["detail"]["event_id"] for e in got[3:]} == missing
    assert_valid_events(got)


def test_crash_after_commit_the_redelivered_message_publishes_what_is_missing(
    ingest: Any, s3: Any, out: Any, recorder: Recorder, monkeypatch: Any
) -> None:
    _deliver(ingest, s3)
    monkeypatch.setattr(events, "publish_report", lambda *a, **k: sys.exit("died"))
    with pytest.raises(SystemExit):
        _deliver(ingest, s3, LATER_KEY, LATER_BODY)
    monkeypatch.undo()
    missing = {r["event_id"] for r in outbox(out) if r["published_at"] is None}
    assert len(missing) == 1
    # SQS delivers the message again: a redelivery of an ingested object, which publishes
    # the file's rows still pending (and changes nothing else).
    event = _sqs_event(LATER_KEY)
    assert ingest.handler(event, Context()) == {"batchItemFailures": []}
    assert all(r["published_at"] is not None for r in outbox(out))
    got = recorder.received()
    assert len(got) == len({e["detail"]["event_id"] for e in got}) == 4
    assert {e["detail"]["event_id"] for e in got[3:]} == missing


def test_ingest_without_a_bus_leaves_events_pending(
    ingest: Any, s3: Any, out: Any, recorder: Recorder, monkeypatch: Any
) -> None:
    monkeypatch.delenv("EVENT_BUS_NAME")
    config.reset_settings_cache()
    assert _deliver(ingest, s3) == {"batchItemFailures": []}
    assert all(r["published_at"] is None and r["attempts"] == 0 for r in outbox(out))
    assert recorder.received() == []


def test_list_outbox_oldest_first_with_filters(out: Any, recorder: Recorder) -> None:
    ids = insert_rows(out, 3)
    with out.cursor() as cur:
        cur.execute("UPDATE status_outbox SET created_at = now() WHERE id = %s", (ids[2],))
    out.commit()
    events.publish_file(out, recorder.events, id_range=(ids[0], ids[0]), cfg=CFG)
    lines = list(events.list_outbox(out))
    assert [line["detail"]["card_id"] for line in lines] == ["CARD00000", "CARD00001", "CARD00002"]
    assert set(lines[0]) == {"event_id", "detail_type", "detail", "published_at"}
    assert lines[0]["detail_type"] == "CardStatusChanged"
    assert lines[0]["published_at"] is not None and lines[1]["published_at"] is None
    json.dumps(lines)  # JSON Lines as they are
    pending = list(events.list_outbox(out, pending=True))
    assert [line["detail"]["card_id"] for line in pending] == ["CARD00001", "CARD00002"]
    one = list(events.list_outbox(out, card_id="CARD00001"))
    assert [line["event_id"] for line in one] == [lines[1]["event_id"]]
    with out.cursor() as cur:
        cur.execute("SELECT now() - interval '1 minute'")
        since = cur.fetchone()[0]
    out.commit()
    assert [x["detail"]["card_id"] for x in events.list_outbox(out, since=since)] == ["CARD00002"]


# -- schema -----------------------------------------------------------------------------------


def test_schema_is_valid_and_its_examples_validate() -> None:
    v = validator()
    for example in v.schema["examples"]:
        v.validate(example)
    assert v.schema["additionalProperties"] is False
    assert not any("phone" in name for name in v.schema["properties"])


def test_schema_rejects_a_phone_and_a_missing_field() -> None:
    v = validator()
    example = dict(v.schema["examples"][0])
    assert not v.is_valid({**example, "phone": "+971585949014"})
    del example["card_version"]
    assert not v.is_valid(example)
