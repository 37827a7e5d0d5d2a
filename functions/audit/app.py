"""Audit function (README "Who looked at a card"): appends the api's lookup audit lines to
the lookup_audit table.

A CloudWatch Logs subscription on the api function's log group (infra/audit.py) delivers the
lines that carry an audit record (`{"audit": {...}}`, functions/api/audit_trail.py) in
batches, gzipped and base64-encoded; each batch becomes one INSERT (cardstatus.audit.append).
The function connects directly to the writer as the api's database role, which may append to
lookup_audit and nothing else that writes.

A batch that fails (database unreachable) fails the invocation: CloudWatch Logs invokes
asynchronously, so Lambda retries it twice and then hands it to the dead-letter queue (an
alarm). A retried batch may record a lookup twice; none is lost. A line that is not an
audit record is skipped and counted (AuditLinesSkipped), never logged: only its count is.

Metrics: AuditRecordsAppended, AuditLinesSkipped.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes import CloudWatchLogsEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from cardstatus import audit
from cardstatus.db import LazyConnection

logger = Logger()
metrics = Metrics()

DB = LazyConnection()


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    data = CloudWatchLogsEvent(event).parse_logs_data()
    records: list[audit.LookupRecord] = []
    skipped = 0
    if data.message_type == "DATA_MESSAGE":  # (CONTROL_MESSAGE: CloudWatch Logs' health check)
        records, skipped = audit.records_of(e.message for e in data.log_events)
    appended = _append(records) if records else 0
    metrics.add_metric(name="AuditRecordsAppended", unit=MetricUnit.Count, value=appended)
    metrics.add_metric(name="AuditLinesSkipped", unit=MetricUnit.Count, value=skipped)
    if skipped:
        logger.warning("lines that are not audit records were skipped", extra={"skipped": skipped})
    return {"appended": appended, "skipped": skipped}


def _append(records: list[audit.LookupRecord]) -> int:
    try:
        conn = DB.get()
        conn.autocommit = True  # the statement carries its own BEGIN READ WRITE ... COMMIT
        return audit.append(conn, records)
    except Exception:
        DB.discard()
        raise
