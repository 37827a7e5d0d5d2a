"""Logs, metrics and traces of the status API.

- `logger` and `metrics` (Powertools); whatever reaches the log handler has phone-like
  digit runs masked (`RedactPhones`), a last line of defence behind the masking at the
  read boundary.
- `capture_lambda_handler`: X-Ray tracing unless POWERTOOLS_TRACE_DISABLED. The X-Ray SDK
  (with botocore) costs hundreds of milliseconds of cold start, so it is not even imported
  when tracing is disabled.
- `request_id`: the correlation id of a request's log lines.
- `RequestLog`: one metric and one log line per request, with the operation, the outcome
  and the duration; phones only ever in masked form.
"""

import os
import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.metrics import MetricUnit

from cardstatus.model import mask_phone, redact_phones

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "cardstatus-api"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "cardstatus"))


class RedactPhones:
    """Log filter: masks anything that could be a phone number in the formatted message."""

    def filter(self, record: Any) -> bool:
        message = record.getMessage()
        redacted = redact_phones(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


logger.registered_handler.addFilter(RedactPhones())


def tracing_enabled() -> bool:
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() not in {
        "1",
        "true",
        "yes",
        "on",
    }


def capture_lambda_handler(func: Any) -> Any:
    """The handler traced with X-Ray, or unchanged when tracing is disabled."""
    if not tracing_enabled():
        return func
    from aws_lambda_powertools import Tracer

    return Tracer().capture_lambda_handler(func)


def request_id(event: dict[str, Any]) -> Any:
    """The log lines' correlation id: API Gateway's request id, None when absent; what
    `inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)` finds,
    without importing Powertools' JMESPath engine (cold start, lazy_packages.py)."""
    context = event.get("requestContext")
    return context.get("requestId") if isinstance(context, dict) else None


def masked(raw: str | None) -> str | None:
    """A phone as logs may show it (last 4 digits), None when absent."""
    return mask_phone(raw) if raw else None


class RequestLog:
    """Per-request bookkeeping of one resolver: call `start()` when a request comes in and
    `record(outcome, ...)` once when it is answered."""

    def __init__(self, app: APIGatewayRestResolver) -> None:
        self._app = app
        self._started = time.perf_counter()

    def start(self) -> None:
        self._started = time.perf_counter()

    def record(self, outcome: str, **fields: Any) -> None:
        """One metric and one log line for the current request."""
        route = self._app.context.get("_route")  # set by Powertools when a route matched
        operation = getattr(getattr(route, "func", None), "__name__", "unknown")
        metrics.add_dimension(name="operation", value=operation)
        metrics.add_dimension(name="outcome", value=outcome)
        metrics.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
        fields["duration_ms"] = round((time.perf_counter() - self._started) * 1000, 3)
        logger.info("request", extra={"operation": operation, "outcome": outcome, **fields})
