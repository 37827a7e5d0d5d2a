"""What the ingest handler tells the outside about a file: metrics, logs, the failure report
in S3, and the file's status-change events (README "Partner files and reports", "Events").

The handler (app.py) parses the SQS event and calls the pipeline; everything here runs after
the pipeline answered and never changes what was ingested."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from cardstatus import events
from cardstatus.config import event_settings, settings
from cardstatus.db import LazyConnection
from cardstatus.model import redact_phones
from cardstatus.s3ingest import S3ObjectRef, failure_report, put_report

logger = Logger()
metrics = Metrics()


def file_ingested(ref: S3ObjectRef, report: dict[str, Any]) -> None:
    """Metrics and the log line of one file the pipeline answered (applied, duplicate, rejected)."""
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
            "key": redact_phones(ref.key),  # partners name files after customers too
            "outcome": report["outcome"],
            "counts": counts,
            "reason": report.get("reason"),
            "timings": report.get("timings"),
        },
    )


def redelivery(ref: S3ObjectRef, report: dict[str, Any]) -> None:
    """An object ingested before: counted and reported when first ingested, only logged here."""
    logger.info(
        "redelivery of an ingested object; nothing to do",
        extra={
            "key": redact_phones(ref.key),
            "outcome": report["outcome"],
            "file_id": report.get("file_id"),
        },
    )


def file_failed(ref: S3ObjectRef, reason: str, attempt: int, s3_client: Callable[[], Any]) -> None:
    """A file that failed for an infrastructure reason (it is retried): the log line and a
    `failed` report in S3, best effort."""
    reason = redact_phones(reason)  # driver errors can quote row values
    logger.error(
        "file failed; it will be retried",
        extra={"key": redact_phones(ref.key), "attempt": attempt, "reason": reason},
    )
    try:
        put_report(
            s3_client(), ref.bucket, ref.key, failure_report(ref, reason, attempt), settings()
        )
    except Exception:  # the report is best effort; the retry is what matters
        logger.warning("could not write the failure report", extra={"key": redact_phones(ref.key)})


def publish_events(
    report: dict[str, Any],
    db: LazyConnection,
    events_client: Callable[[], Any],
    lambda_context: LambdaContext | None,
    reserve_ms: int,
) -> None:
    """After the file's commit: publish its status-change events, best effort (README Events).

    Publishing stops `reserve_ms` before the invocation's end (without a Lambda context, only
    the events settings' budget limits it). Whatever is not published here (bus down, time
    budget spent) stays pending in the outbox and the sweeper function publishes it; nothing
    here fails or retries the file."""
    cfg = event_settings()
    if not cfg.enabled or report.get("outcome") != "applied":
        return
    budget_s = cfg.publish_budget_s
    if lambda_context is not None:
        left_ms = lambda_context.get_remaining_time_in_millis() - reserve_ms
        budget_s = min(budget_s, left_ms / 1e3)
    try:
        result = events.publish_report(
            db.get(),
            events_client(),
            report,
            cfg=cfg,
            deadline=time.monotonic() + max(budget_s, 0.0),
        )
    except Exception as exc:
        db.discard()
        metrics.add_metric(name="EventsPublishFailed", unit=MetricUnit.Count, value=1)
        logger.warning(
            "could not publish the file's events; the sweeper will",
            extra={"file_id": report.get("file_id"), "error": redact_phones(str(exc))[:200]},
        )
        return
    if result is not None:  # None: the file changed no card's status
        _events_published(report, result)


def _events_published(report: dict[str, Any], result: events.PublishResult) -> None:
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
