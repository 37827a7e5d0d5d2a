"""Ingest Lambda: SQS messages carrying S3 notifications → one file each through the pipeline.

Partial batch responses: only the messages whose file failed for an infrastructure reason are
retried (and, after the queue's maxReceiveCount, moved to the DLQ). A bad file is not a failure:
it gets a `rejected_file` report and its message succeeds. This file parses the event and calls
the pipeline; metrics, logs, failure reports and event publishing are in reporting.py.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from cardstatus import events
from cardstatus.config import settings
from cardstatus.db import TRANSIENT_DB_ERRORS, LazyConnection, aws_client, connect
from cardstatus.s3ingest import S3ObjectRef, ingest_s3_object, s3_key_from_event
from functions.ingest import reporting
from functions.ingest.reporting import logger, metrics

# Report every failed message individually, even when all of them failed.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

DB = LazyConnection()
_s3: Any = None
_events: Any = None
# Stop taking new messages when less than this is left; they are retried by SQS instead.
MIN_REMAINING_MS = int(os.environ.get("INGEST_MIN_REMAINING_MS", "20000"))


def s3_client() -> Any:
    global _s3
    if _s3 is None:
        _s3 = aws_client("s3")
    return _s3


def events_client() -> Any:
    global _events
    if _events is None:
        _events = events.events_client()
    return _events


def objects_in(body: dict[str, Any]) -> list[S3ObjectRef]:
    """The files an S3 notification names; none for s3:TestEvent or a folder marker."""
    if body.get("Event") == "s3:TestEvent":
        return []
    refs = []
    for rec in body.get("Records", []):
        if not str(rec.get("eventName", "")).startswith("ObjectCreated"):
            continue
        obj = rec["s3"]["object"]
        if obj["key"].endswith("/"):  # a folder marker (S3 console "Create folder"): no file
            continue
        refs.append(
            S3ObjectRef(
                bucket=rec["s3"]["bucket"]["name"],
                key=s3_key_from_event(obj["key"]),
                version_id=obj.get("versionId"),
                etag=obj.get("eTag"),
                size=obj.get("size"),
            )
        )
    return refs


def record_handler(record: SQSRecord, lambda_context: LambdaContext | None = None) -> None:
    """One SQS message. Powertools passes the invocation's context as `lambda_context`."""
    if (
        lambda_context is not None
        and lambda_context.get_remaining_time_in_millis() < MIN_REMAINING_MS
    ):
        raise TimeoutError("not enough time left in this invocation; message left for a retry")
    body = json.loads(record.body)
    refs = objects_in(body)
    if not refs:
        logger.info("ignoring message without created objects", extra={"event": body.get("Event")})
        return
    for ref in refs:
        _ingest_one(ref, int(record.attributes.approximate_receive_count or 0), lambda_context)


def _ingest_one(
    ref: S3ObjectRef, attempt: int, lambda_context: LambdaContext | None = None
) -> None:
    cfg = settings()
    try:
        report = ingest_s3_object(
            DB.get(), s3_client(), ref, cfg, progress_conn=functools.partial(connect, cfg)
        )
    except TRANSIENT_DB_ERRORS as exc:
        DB.discard()
        reason = f"database unavailable: {str(exc).splitlines()[0][:200]}"
        reporting.file_failed(ref, reason, attempt, s3_client)
        raise
    except Exception as exc:
        DB.discard()
        reason = f"{exc.__class__.__name__}: {str(exc)[:200]}"
        reporting.file_failed(ref, reason, attempt, s3_client)
        raise
    if report.get("redelivery"):
        # Counted and reported when first ingested (README "Partner files and reports");
        # its events are published again: what a crash after its commit left pending.
        reporting.redelivery(ref, report)
    else:
        reporting.file_ingested(ref, report)
    reporting.publish_events(report, DB, events_client, lambda_context, MIN_REMAINING_MS)


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
