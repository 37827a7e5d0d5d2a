"""What the void function does once the void committed, best effort (the database already
holds the void; nothing here fails the request):

- `rewrite_report`: the file's S3 report gets its `voided` block (also on a repeated void: it
  repairs a rewrite that failed);
- `publish_events`: the void's status-change events (its outbox id range) go to the bus, like
  the ingest function's, for at most PUBLISH_MAX_S and never into the function's last seconds
  (API Gateway waits 29 s at most); what is left stays pending for the sweeper.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from cardstatus import events
from cardstatus.config import event_settings, settings
from cardstatus.db import LazyConnection
from cardstatus.model import redact_phones
from cardstatus.s3ingest import put_report
from cardstatus.void import VoidResult

PUBLISH_MAX_S = 5.0
MIN_REMAINING_MS = 3000


def rewrite_report(result: VoidResult, s3: Callable[[], Any], logger: Logger) -> None:
    if not (result.bucket and result.object_key):
        return
    try:
        put_report(s3(), result.bucket, result.object_key, result.report, settings())
    except Exception as exc:  # the void is committed; the S3 report is only a copy
        logger.warning(
            "could not rewrite the file's S3 report",
            extra={"file_id": result.file_id, "error": type(exc).__name__},
        )


def publish_events(
    result: VoidResult,
    db: LazyConnection,
    client: Callable[[], Any],
    context: Any,
    metrics: Metrics,
    logger: Logger,
) -> None:
    cfg = event_settings()
    if not cfg.enabled or result.outbox_ids is None:
        return
    budget_s = min(cfg.publish_budget_s, PUBLISH_MAX_S)
    if context is not None:
        budget_s = min(budget_s, (context.get_remaining_time_in_millis() - MIN_REMAINING_MS) / 1e3)
    try:
        published = events.publish_file(
            db.get(),
            client(),
            id_range=result.outbox_ids,
            cfg=cfg,
            deadline=time.monotonic() + max(budget_s, 0.0),
        )
    except Exception as exc:
        db.discard()
        metrics.add_metric(name="EventsPublishFailed", unit=MetricUnit.Count, value=1)
        logger.warning(
            "could not publish the void's events; the sweeper will",
            extra={"file_id": result.file_id, "error": redact_phones(str(exc))[:200]},
        )
        return
    metrics.add_metric(name="EventsPublished", unit=MetricUnit.Count, value=published.published)
    metrics.add_metric(name="EventsPublishFailed", unit=MetricUnit.Count, value=published.failed)
    if published.failed or published.error or published.timed_out:
        logger.warning(
            "some events left pending for the sweeper",
            extra={
                "file_id": result.file_id,
                "published": published.published,
                "failed": published.failed,
                "error": published.error,
                "timed_out": published.timed_out,
            },
        )
