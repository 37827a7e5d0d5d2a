"""Ingest Lambda: SQS messages carrying S3 notifications → one file each through the pipeline.

Partial batch responses: only the messages whose file failed for an infrastructure reason are
retried (and, after the queue's maxReceiveCount, moved to the DLQ). A bad file is not a failure:
it gets a `rejected_file` report and its message succeeds.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from cardstatus import events
from cardstatus.config import event_settings, settings
from cardstatus.db import TRANSIENT_DB_ERRORS, LazyConnection, aws_client
from cardstatus.model import redact_phones
from cardstatus.s3ingest import (
    S3ObjectRef,
    failure_report,
    ingest_s3_object,
    put_report,
    s3_key_from_event,
)

logger = Logger()
metrics = Metrics()
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
    """The objects an S3 notification names; none for s3:TestEvent."""
    if body.get("Event") == "s3:TestEvent":
        return []
    refs = []
    for rec in body.get("Records", []):
        if not str(rec.get("eventName", "")).startswith("ObjectCreated"):
            continue
        obj = rec["s3"]["object"]
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
        report = ingest_s3_object(DB.get(), s3_client(), ref, cfg)
    except TRANSIENT_DB_ERRORS as exc:
        DB.discard()
        _report_failure(ref, f"database unavailable: {str(exc).splitlines()[0][:200]}", attempt)
        raise
    except Exception as exc:
        DB.discard()
        _report_failure(ref, f"{exc.__class__.__name__}: {str(exc)[:200]}", attempt)
        raise
    if report.get("redelivery"):
        # Counted and reported when first ingested (README "Partner files and reports").
        logger.info(
            "redelivery of an ingested object; nothing to do",
            extra={"key": ref.key, "outcome": report["outcome"], "file_id": report.get("file_id")},
        )
        _publish_events(report, lambda_context)  # what a crash after its commit left pending
        return
    counts = report.get("counts", {})
    metrics.add_metric(name=f"Files_{report['outcome']}", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="RowsAccepted", unit=MetricUnit.Count, value=counts.get("accepted", 0))
    metrics.add_metric(
        name="RowsDuplicate", unit=MetricUnit.Count, value=counts.get("duplicate", 0)
    )
    metrics.add_metric(name="RowsRejected", unit=MetricUnit.Count, value=counts.get("rejected", 0))
    logger.info(
        "file ingested",
        extra={
            "key": ref.key,
            "outcome": report["outcome"],
            "counts": counts,
            "reason": report.get("reason"),
            "timings": report.get("timings"),
        },
    )
    _publish_events(report, lambda_context)


def _publish_events(report: dict[str, Any], lambda_context: LambdaContext | None) -> None:
    """After the file's commit: publish its status-change events, best effort (README Events).

    Whatever is not published here (bus down, time budget spent) stays pending in the outbox
    and the sweeper function publishes it; nothing here fails or retries the file."""
    cfg = event_settings()
    if not cfg.enabled or report.get("outcome") != "applied":
        return
    budget_s = cfg.publish_budget_s
    if lambda_context is not None:
        left_ms = lambda_context.get_remaining_time_in_millis() - MIN_REMAINING_MS
        budget_s = min(budget_s, left_ms / 1e3)
    try:
        result = events.publish_report(
            DB.get(),
            events_client(),
            report,
            cfg=cfg,
            deadline=time.monotonic() + max(budget_s, 0.0),
        )
    except Exception as exc:
        DB.discard()
        metrics.add_metric(name="EventsPublishFailed", unit=MetricUnit.Count, value=1)
        logger.warning(
            "could not publish the file's events; the sweeper will",
            extra={"file_id": report.get("file_id"), "error": redact_phones(str(exc))[:200]},
        )
        return
    if result is None:  # the file changed no card's status
        return
    metrics.add_metric(name="EventsPublished", unit=MetricUnit.Count, value=result.published)
    metrics.add_metric(name="EventsPublishFailed", unit=MetricUnit.Count, value=result.failed)
    if result.failed or result.error or result.timed_out:
        logger.warning(
            "some events left pending for the sweeper",
            extra={
                "file_id": report.get("file_id"),
                "published": result.published,
                "failed": result.failed,
                "error": result.error,
                "timed_out": result.timed_out,
            },
        )


def _report_failure(ref: S3ObjectRef, reason: str, attempt: int) -> None:
    reason = redact_phones(reason)  # driver errors can quote row values
    logger.error(
        "file failed; it will be retried",
        extra={"key": ref.key, "attempt": attempt, "reason": reason},
    )
    try:
        put_report(
            s3_client(), ref.bucket, ref.key, failure_report(ref, reason, attempt), settings()
        )
    except Exception:  # the report is best effort; the retry is what matters
        logger.warning("could not write the failure report", extra={"key": ref.key})


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
