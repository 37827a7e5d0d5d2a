"""(3) Faults: every one ends in a correct retry or a clear `rejected_file` report, never in
half-applied data. tests/test_pipeline.py already kills the connection once mid-COPY and once
while APPLY waits for a lock; this file kills it before *every* database call of the pipeline,
cuts it at the network level, takes PostgreSQL down, times statements out, and breaks S3."""

from __future__ import annotations

import dataclasses
import io
import json
from typing import Any

import psycopg2
import pytest
import rel_support as rs

from cardstatus import config
from cardstatus.config import load_settings
from cardstatus.ingest import SourceInfo, ingest

GOOD = (
    b"Card ID,User contact,Timestamp,Comment\r\n"
    b"ZYW8827,0585949014,2024-03-05T06:00:00Z,ok\r\n"
    b"ZYW8890,+971534534534,05-03-2024 10:07,\r\n"
    b"Q1,9.7E+11,2024-03-05T06:00:00Z,bad phone\r\n"
)
WITH_REJECTS = (
    b"Card ID;Phone;Timestamp\n"
    b"ZYW8827;585949014;2024-03-06T06:00:00Z\n"
    b"bad id!;585949014;2024-03-06T06:00:00Z\n"
    b"C-100;;never\n"
)
NO_CARD_COLUMN = b"Phone,Timestamp\n0585949014,2024-03-05T06:00:00Z\n"


def _files(conn: Any) -> list[tuple[str, str]]:
    with conn.cursor() as cur:
        cur.execute("SELECT object_key, outcome::text FROM ingested_file ORDER BY object_key, id")
        rows = cur.fetchall()
    conn.commit()
    return rows


def _settled(state: tuple[Any, ...]) -> tuple[Any, ...]:
    """A state without files in progress (the row a killed run leaves until its retry)."""
    files = [f for f in state[-2] if f[1] != "in_progress"]
    return (*state[:-2], files, state[-1])


def _full_state(conn: Any) -> tuple[Any, ...]:
    return (*rs.db_state(conn), _files(conn), rs.table_count(conn, "rejected_row"))


# (what is already in the database, then the file under test): each outcome path of ingest().
SCENARIOS = {
    "applied": ([], ("incoming/acme/a - delivered.csv", GOOD)),
    "applied_with_rejects": ([], ("incoming/acme/r - returned.csv", WITH_REJECTS)),
    "duplicate_file": (
        [("incoming/acme/a - delivered.csv", GOOD)],
        ("incoming/acme/a again - delivered.csv", GOOD),
    ),
    "redelivered": (
        [("incoming/acme/a - delivered.csv", GOOD)],
        ("incoming/acme/a - delivered.csv", GOOD),
    ),
    "rejected_file": ([], ("incoming/acme/n - delivered.csv", NO_CARD_COLUMN)),
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_killed_before_every_database_call_then_retried_exactly_once(
    db_url: str, db: Any, scenario: str
) -> None:
    before, (key, data) = SCENARIOS[scenario]

    def setup() -> tuple[Any, ...]:
        rs.reset(db)
        for k, d in before:
            rs.ingest_bytes(db, d, k)
        return _full_state(db)

    def run(kill_at: int | None) -> tuple[rs.FaultPlan, Any]:
        plan = rs.FaultPlan(db, kill_at)
        conn = rs.fault_connection(db_url, plan)
        try:
            return plan, rs.ingest_bytes(conn, data, key)
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
            return plan, exc
        finally:
            conn.close()

    setup()
    plan, expected_report = run(None)
    expected = _full_state(db)
    steps = len(plan.calls)
    assert steps >= 1 and isinstance(expected_report, dict)
    for kill_at in range(steps):
        initial = setup()
        plan, result = run(kill_at)
        assert plan.killed
        if kill_at == steps - 1 and plan.calls[-1] != "commit" and isinstance(result, dict):
            pass  # nothing left to fail after the last call
        else:
            assert isinstance(result, Exception), (kill_at, plan.calls, result)
            # Nothing half-applied: at most the run's in-progress row (committed before the
            # rows are read) is left, and the retry removes it (its run's lock died with it).
            killed = _full_state(db)
            assert _settled(killed) == initial, (kill_at, plan.calls)
            assert [f for f in killed[-2] if f not in initial[-2]] in ([], [(key, "in_progress")])
        _, retried = run(None)  # SQS redelivers the message
        assert isinstance(retried, dict), retried
        assert retried["outcome"] == expected_report["outcome"]
        assert retried["counts"] == expected_report["counts"]
        assert _full_state(db) == expected, (kill_at, plan.calls)
        rs.count("retries_after_fault")


def _notify(app: Any, s3: Any, keys: list[str], ctx: Any = None, receives: int = 1) -> set[str]:
    """Deliver one SQS message per key through the handler; the keys of failed messages."""
    messages = [(f"m-{i}", rs.s3_notification(rs.BUCKET, k), receives) for i, k in enumerate(keys)]
    result = app.handler(rs.sqs_event(messages), ctx or rs.FakeContext())
    failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    return {keys[int(mid[2:])] for mid in failed}


def _report(s3: Any, key: str) -> dict[str, Any]:
    return json.loads(s3.get_object(Bucket=rs.BUCKET, Key=f"reports/{key}.json")["Body"].read())


def _put(s3: Any, key: str, data: bytes) -> None:
    s3.put_object(Bucket=rs.BUCKET, Key=key, Body=data)


def _big(rows: int, first: int = 0) -> bytes:
    lines = ["Card ID,User contact,Timestamp"]
    lines += [
        f"K{i:07d},05{i % 10}1234567,2024-01-01T10:{i % 60:02d}:00Z"
        for i in range(first, first + rows)
    ]
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def proxy(pg_admin_url: str) -> Any:
    p = rs.PgProxy(pg_admin_url)
    yield p
    p.close()


@pytest.mark.timeout(180)
def test_postgres_down_at_batch_start_then_network_cut_mid_copy(
    ingest_app: Any,
    s3: Any,
    db: Any,
    db_url: str,
    proxy: rs.PgProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dbname = psycopg2.extensions.parse_dsn(db_url)["dbname"]
    monkeypatch.setenv("DATABASE_URL", proxy.url(dbname))
    config.reset_settings_cache()
    ingest_app.DB.reset_settings(None)
    keys = ["incoming/acme/one - pickup.csv", "incoming/acme/two - delivered.csv"]
    _put(s3, keys[0], _big(200, 0))
    _put(s3, keys[1], _big(200, 100))

    proxy.go_down()
    assert _notify(ingest_app, s3, keys) == set(keys)  # the whole batch fails, nothing lost
    for key in keys:
        report = _report(s3, key)
        assert report["outcome"] == "error" and "database unavailable" in report["reason"]
    assert rs.table_count(db, "ingested_file") == 0

    proxy.come_up()
    assert _notify(ingest_app, s3, keys, receives=2) == set()
    assert [o for _, o in _files(db)] == ["applied", "applied"]
    assert rs.table_count(db, "card_event") == 400

    big_key = "incoming/acme/big - returned.csv"
    _put(s3, big_key, _big(60_000))
    ingest_app.DB.discard()
    proxy.cut_after_bytes = 400_000  # the connection dies part-way through COPY
    assert _notify(ingest_app, s3, [big_key]) == {big_key}
    assert rs.table_count(db, "card_event") == 400
    # The cut run's in-progress row is all that is left of it (its retry removes it).
    assert _files(db)[0] == (big_key, "in_progress") and len(_files(db)) == 3
    proxy.cut_after_bytes = None
    assert _notify(ingest_app, s3, [big_key], receives=2) == set()
    assert _notify(ingest_app, s3, [big_key], receives=3) == set()  # a late duplicate message
    assert rs.table_count(db, "card_event") == 60_400
    assert [o for k, o in _files(db) if k == big_key] == ["applied"]


@pytest.mark.timeout(120)
def test_statement_timeout_mid_apply_fails_the_message_and_the_retry_applies_once(
    ingest_app: Any, s3: Any, db: Any, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_STATEMENT_TIMEOUT_MS", "300")
    config.reset_settings_cache()
    ingest_app.DB.reset_settings(None)
    key = "incoming/acme/t - delivered.csv"
    _put(s3, key, _big(2000))
    blocker = psycopg2.connect(db_url)
    with blocker.cursor() as cur:
        cur.execute("LOCK TABLE card IN EXCLUSIVE MODE")  # APPLY waits, then times out
    try:
        assert _notify(ingest_app, s3, [key]) == {key}
        rs.count("faults_injected")
    finally:
        blocker.rollback()
        blocker.close()
    report = _report(s3, key)
    assert report["outcome"] == "error" and "statement timeout" in report["reason"]
    assert rs.table_count(db, "card_event") == 0 and _files(db) == []
    # The retry runs with an ordinary timeout: 300 ms was only there to make the blocked APPLY
    # give up quickly, and a busy machine can take longer than that for the unblocked one.
    monkeypatch.setenv("DB_STATEMENT_TIMEOUT_MS", "60000")
    config.reset_settings_cache()
    ingest_app.DB.reset_settings(None)
    assert _notify(ingest_app, s3, [key], receives=2) == set()
    assert _report(s3, key)["outcome"] == "applied"
    assert rs.table_count(db, "card_event") == 2000


def test_lambda_running_out_of_time_half_way_leaves_exactly_the_rest_for_retry(
    ingest_app: Any, s3: Any, db: Any
) -> None:
    keys = [f"incoming/acme/f{i} - pickup.csv" for i in range(4)]
    for i, key in enumerate(keys):
        _put(s3, key, _big(50, i * 50))
    # Plenty of time for two messages, then less than INGEST_MIN_REMAINING_MS.
    ctx = rs.FakeContext([300_000, 300_000, 5_000])
    failed = _notify(ingest_app, s3, keys, ctx)
    assert failed == set(keys[2:])
    rs.count("faults_injected")
    assert sorted(k for k, _ in _files(db)) == keys[:2]
    assert rs.table_count(db, "card_event") == 100
    # SQS redelivers only the failed ones... and, being at-least-once, maybe the others too.
    assert _notify(ingest_app, s3, keys, receives=2) == set()
    assert sorted(k for k, _ in _files(db)) == keys
    assert rs.table_count(db, "card_event") == 200


def test_object_deleted_before_read(ingest_app: Any, s3: Any, db: Any) -> None:
    key = "incoming/acme/gone - delivered.csv"
    version = s3.put_object(Bucket=rs.BUCKET, Key=key, Body=GOOD)["VersionId"]
    s3.delete_object(Bucket=rs.BUCKET, Key=key)  # a delete marker: the version still exists
    # Without a version id the object is gone: a rejected report, the message succeeds.
    assert _notify(ingest_app, s3, [key]) == set()
    assert "no longer exists" in _report(s3, key)["reason"]
    # With the event's version id, the original bytes are still readable and are applied.
    body = rs.s3_notification(rs.BUCKET, key, versionId=version)
    assert ingest_app.handler(rs.sqs_event([("m", body, 1)]), rs.FakeContext()) == {
        "batchItemFailures": []
    }
    assert _report(s3, key)["outcome"] == "applied"
    rs.count("faults_injected")


def test_object_version_deleted_before_read_is_a_rejected_report_not_a_poison_message(
    ingest_app: Any, s3: Any, db: Any
) -> None:
    key = "incoming/acme/purged - delivered.csv"
    version = s3.put_object(Bucket=rs.BUCKET, Key=key, Body=GOOD)["VersionId"]
    s3.delete_object(Bucket=rs.BUCKET, Key=key, VersionId=version)  # permanently deleted
    body = rs.s3_notification(rs.BUCKET, key, versionId=version)
    result = ingest_app.handler(rs.sqs_event([("m", body, 1)]), rs.FakeContext())
    assert result == {"batchItemFailures": []}
    report = _report(s3, key)
    assert report["outcome"] == "rejected_file" and "no longer exists" in report["reason"]
    assert _files(db) == [(key, "rejected_file")]
    rs.count("faults_injected")


class _NoRead:
    def read(self, size: int = -1) -> bytes:
        raise AssertionError("an object over the limit must not be read")


def test_object_larger_than_the_limit_is_rejected_without_reading_it(db: Any) -> None:
    cfg = dataclasses.replace(load_settings(), max_object_bytes=1000)
    source = SourceInfo(key="incoming/acme/huge - pickup.csv", partner="acme", size_bytes=1001)
    report = ingest(db, _NoRead(), source, cfg)
    assert report["outcome"] == "rejected_file"
    assert "larger than the limit" in report["reason"]
    assert _files(db) == [(source.key, "rejected_file")]
    rs.count("faults_injected")


def test_object_growing_past_the_limit_while_streamed_is_rejected(db: Any) -> None:
    """Size unknown up front (or wrong): the limit is enforced on the bytes actually read."""
    cfg = dataclasses.replace(load_settings(), max_object_bytes=200_000)
    data = _big(20_000)
    source = SourceInfo(key="incoming/acme/grows - pickup.csv", partner="acme", size_bytes=None)
    report = ingest(db, io.BytesIO(data), source, cfg)
    assert report["outcome"] == "rejected_file", report
    assert "larger than the limit" in report["reason"]
    assert rs.table_count(db, "card_event") == 0
    rs.count("faults_injected")


def test_an_unterminated_quote_to_the_end_rejects_its_row_not_the_file(db: Any) -> None:
    data = b'Card ID,Timestamp\nA1,2024-03-05T06:00:00Z\nB2,"2024' + b"x" * 20_000 + b"\n"
    report = rs.ingest_bytes(db, data, "incoming/acme/unterminated - delivered.csv")
    assert report["outcome"] == "applied", report
    assert report["counts"]["rejected"] == 1 and report["rejects"][0]["line"] == 3
    assert "over the limit of 10,000" in report["rejects"][0]["reason"]
    assert rs.table_count(db, "card_event") == 1


class _FlakyS3:
    """The test's moto S3 client, with bodies of chosen keys failing mid-stream."""

    def __init__(self, real: Any, failures: dict[str, int]) -> None:
        self._real = real
        self.failures = failures  # key → remaining reads that fail
        self.exceptions = real.exceptions

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def get_object(self, **kwargs: Any) -> Any:
        obj = self._real.get_object(**kwargs)
        if self.failures.get(kwargs["Key"], 0) > 0:
            self.failures[kwargs["Key"]] -= 1
            data = obj["Body"].read()
            obj["Body"] = rs.RaisingBody(data, len(data) // 2)
        return obj


def test_s3_read_error_half_way_fails_the_message_and_the_retry_applies_once(
    ingest_app: Any, s3: Any, db: Any
) -> None:
    key = "incoming/acme/flaky - delivered.csv"
    _put(s3, key, _big(30_000))
    ingest_app._s3 = _FlakyS3(s3, {key: 2})
    assert _notify(ingest_app, s3, [key]) == {key}
    report = _report(s3, key)
    assert report["outcome"] == "error"
    assert "ConnectionResetError" in report["reason"], report  # the real cause, not "database"
    assert rs.table_count(db, "card_event") == 0 and _files(db) == []
    assert _notify(ingest_app, s3, [key], receives=2) == {key}
    assert _notify(ingest_app, s3, [key], receives=3) == set()
    assert _report(s3, key)["outcome"] == "applied"
    assert rs.table_count(db, "card_event") == 30_000
    assert _files(db) == [(key, "applied")]


def test_s3_read_error_at_pipeline_level_keeps_its_type_and_leaves_nothing(db: Any) -> None:
    data = _big(30_000)
    source = SourceInfo(key="incoming/acme/x - delivered.csv", partner="acme")
    with pytest.raises(ConnectionResetError):
        ingest(db, rs.RaisingBody(data, 300_000), source, load_settings())
    assert db.closed == 0
    assert rs.table_count(db, "card_event") == 0 and _files(db) == []
    assert ingest(db, io.BytesIO(data), source, load_settings())["outcome"] == "applied"
