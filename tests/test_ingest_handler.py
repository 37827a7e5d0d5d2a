"""The ingest Lambda handler with the events/ samples, moto S3 and a real PostgreSQL."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from functools import partial
from typing import Any

import boto3
import pytest
from lambda_context import FakeLambdaContext
from moto import mock_aws

from cardstatus import config
from fixture_paths import EVENTS

SAMPLE_FILES = EVENTS / "partner_files"
BUCKET = "cardstatus-local-partner-files"
DELIVERED_KEY = "incoming/acme/Sample Card Status Info - Delivered.csv"
PICKUP_KEY = "incoming/acme/Sample Card Status Info - Pickup.csv"


FakeContext = partial(FakeLambdaContext, function_name="cardstatus-ingest")


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / "ingest" / name).read_text())


@pytest.fixture
def s3(db_url: str) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield client


def put(s3: Any, key: str, source_name: str) -> None:
    s3.put_object(Bucket=BUCKET, Key=key, Body=(SAMPLE_FILES / source_name).read_bytes())


def report_in_s3(s3: Any, key: str) -> dict[str, Any]:
    body = s3.get_object(Bucket=BUCKET, Key=f"reports/{key}.json")["Body"].read()
    return json.loads(body)


def files_in_db(db: Any) -> list[tuple]:
    with db.cursor() as cur:
        cur.execute(
            "SELECT object_key, outcome::text, rows_accepted FROM ingested_file ORDER BY id"
        )
        rows = cur.fetchall()
    db.commit()
    return rows


def test_put_notification_with_spaces_in_key_is_ingested_and_reported(
    ingest_app: Any, s3: Any, db: Any
) -> None:
    put(s3, DELIVERED_KEY, "acme utf8-bom semicolon - Delivered.csv")
    result = ingest_app.handler(load_event("sqs_s3_put.json"), FakeContext())
    assert result == {"batchItemFailures": []}
    report = report_in_s3(s3, DELIVERED_KEY)
    assert report["outcome"] == "applied"
    assert report["file"]["partner"] == "acme"
    assert report["counts"]["accepted"] == 3
    assert files_in_db(db) == [(DELIVERED_KEY, "applied", 3)]


def test_redelivery_of_the_same_message_is_a_no_op(ingest_app: Any, s3: Any, db: Any) -> None:
    put(s3, DELIVERED_KEY, "acme utf8-bom semicolon - Delivered.csv")
    event = load_event("sqs_s3_put.json")
    ingest_app.handler(event, FakeContext())
    first = report_in_s3(s3, DELIVERED_KEY)
    ingest_app.handler(copy.deepcopy(event), FakeContext())
    assert files_in_db(db) == [(DELIVERED_KEY, "applied", 3)]
    assert report_in_s3(s3, DELIVERED_KEY) == first


def test_s3_test_event_is_ignored(ingest_app: Any, s3: Any, db: Any) -> None:
    result = ingest_app.handler(load_event("sqs_s3_test_event.json"), FakeContext())
    assert result == {"batchItemFailures": []}
    assert files_in_db(db) == []


def test_a_folder_marker_is_not_a_file_and_gets_no_report(
    ingest_app: Any, s3: Any, db: Any
) -> None:
    # Ops who "Create folder" in the S3 console make an empty object named incoming/acme/.
    result = ingest_app.handler(load_event("sqs_s3_folder_marker.json"), FakeContext())
    assert result == {"batchItemFailures": []}
    assert files_in_db(db) == []
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="reports/").get("Contents", [])
    assert listed == []


def test_poison_message_fails_alone_and_the_good_file_commits(
    ingest_app: Any, s3: Any, db: Any
) -> None:
    put(s3, PICKUP_KEY, "acme unicode text - Pickup.csv")
    result = ingest_app.handler(load_event("sqs_batch_with_poison.json"), FakeContext())
    assert result == {
        "batchItemFailures": [{"itemIdentifier": "a1b2c3d4-0000-4000-8000-000000000002"}]
    }
    assert files_in_db(db) == [(PICKUP_KEY, "applied", 3)]


def test_a_bad_file_is_a_rejected_report_not_a_failed_message(
    ingest_app: Any, s3: Any, db: Any
) -> None:
    put(s3, DELIVERED_KEY, "acme no card column - Delivered.csv")
    result = ingest_app.handler(load_event("sqs_s3_put.json"), FakeContext())
    assert result == {"batchItemFailures": []}
    report = report_in_s3(s3, DELIVERED_KEY)
    assert report["outcome"] == "rejected_file"
    assert "card id" in report["reason"]


def test_object_deleted_before_read_gets_a_rejected_report(
    ingest_app: Any, s3: Any, db: Any
) -> None:
    result = ingest_app.handler(load_event("sqs_s3_put.json"), FakeContext())
    assert result == {"batchItemFailures": []}
    assert report_in_s3(s3, DELIVERED_KEY)["outcome"] == "rejected_file"
    assert files_in_db(db)[0][1] == "rejected_file"


def test_database_down_fails_the_message_with_a_report_and_recovers_next_time(
    ingest_app: Any, s3: Any, db: Any, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(s3, DELIVERED_KEY, "acme utf8-bom semicolon - Delivered.csv")
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1")
    config.reset_settings_cache()
    ingest_app.DB.reset_settings(None)
    result = ingest_app.handler(load_event("sqs_s3_put.json"), FakeContext())
    assert result["batchItemFailures"] == [
        {"itemIdentifier": "059f36b4-87a3-44ab-83d2-661975830a7d"}
    ]
    failed = report_in_s3(s3, DELIVERED_KEY)
    assert failed["outcome"] == "error" and "database unavailable" in failed["reason"]

    monkeypatch.setenv("DATABASE_URL", db_url)
    config.reset_settings_cache()
    result = ingest_app.handler(load_event("sqs_s3_put.json"), FakeContext())
    assert result == {"batchItemFailures": []}
    assert report_in_s3(s3, DELIVERED_KEY)["outcome"] == "applied"


def test_dropped_connection_is_replaced_on_the_next_invocation(
    ingest_app: Any, s3: Any, db: Any
) -> None:
    put(s3, DELIVERED_KEY, "acme utf8-bom semicolon - Delivered.csv")
    ingest_app.handler(load_event("sqs_s3_test_event.json"), FakeContext())
    first = ingest_app.DB.get()
    with db.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", (first.get_backend_pid(),))
    db.commit()
    result = ingest_app.handler(load_event("sqs_s3_put.json"), FakeContext())
    # The dead connection fails this message (retried by SQS); the next delivery reconnects.
    if result["batchItemFailures"]:
        result = ingest_app.handler(load_event("sqs_s3_put.json"), FakeContext())
    assert result == {"batchItemFailures": []}
    assert ingest_app.DB.get() is not first
    assert files_in_db(db) == [(DELIVERED_KEY, "applied", 3)]


def test_low_remaining_time_leaves_messages_for_retry_without_touching_them(
    ingest_app: Any, s3: Any, db: Any
) -> None:
    put(s3, PICKUP_KEY, "acme unicode text - Pickup.csv")
    event = load_event("sqs_batch_with_poison.json")
    result = ingest_app.handler(event, FakeContext(remaining_ms=1000))
    failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    assert failed == {r["messageId"] for r in event["Records"]}
    assert files_in_db(db) == []


def test_redelivery_counts_no_metric_and_leaves_the_s3_report_alone(
    ingest_app: Any, s3: Any, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(s3, DELIVERED_KEY, "acme utf8-bom semicolon - Delivered.csv")
    event = load_event("sqs_s3_put.json")
    ingest_app.handler(event, FakeContext())
    s3.delete_object(Bucket=BUCKET, Key=f"reports/{DELIVERED_KEY}.json")
    metrics: list[str] = []
    monkeypatch.setattr(ingest_app.metrics, "add_metric", lambda name, **_: metrics.append(name))
    result = ingest_app.handler(copy.deepcopy(event), FakeContext())
    assert result == {"batchItemFailures": []}
    assert metrics == []
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="reports/").get("KeyCount", 0)
    assert listed == 0  # not rewritten
    assert files_in_db(db) == [(DELIVERED_KEY, "applied", 3)]
