"""Void function: `POST /files/{file_id}/void` with `{"reason": "..."}` → `cardstatus.void`,
and `POST /privacy/erase` → `cardstatus.erasure` (README "Privacy": its own IAM permission).

A function of its own behind its own API method and IAM permission (README "Voiding a
file"): the read-only API function stays read-only, and this one connects to PostgreSQL as
`cardstatus_void` (IAM token, directly to the instance: a void is one long transaction with
temporary tables, which would pin an RDS Proxy connection). Thin: validate the body, take the
actor from the caller's IAM identity, call `void_retrying`, then (after commit) rewrite the
file's S3 report with its `voided` block and publish the void's status-change events (best
effort: what is left pending goes to the sweeper; functions/void/aftercommit.py). Models and
documented responses: functions/void/schemas.py; error answers (`{"error": {"code",
"message"}}`): functions/void/errors.py.

Lambda handler: `functions.void.app.handler`.
"""

# No `from __future__ import annotations`: Powertools reads the route signatures at runtime.

import os
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from cardstatus import erasure, events
from cardstatus.db import LazyConnection, aws_client
from cardstatus.errors import InvalidParameter
from cardstatus.void import void_retrying
from functions.void import aftercommit, errors
from functions.void.schemas import (
    ERASE_ROUTE,
    ERASE_ROUTE_PATH,
    VOID_ROUTE,
    VOID_ROUTE_PATH,
    EraseIn,
    EraseOut,
    VoidIn,
    VoidOut,
)

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "cardstatus-void"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "cardstatus"))
app = APIGatewayRestResolver(enable_validation=True)

# One connection per warm container, opened on first use, replaced after a failure; the AWS
# clients likewise (tests put moto's in their place).
DB = LazyConnection()
_s3: Any = None
_events: Any = None

errors.register(app, DB, logger)

__all__ = ["DB", "app", "handler"]


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


@app.post(VOID_ROUTE_PATH, **VOID_ROUTE)
def void(
    file_id: Annotated[int, Path(ge=1, description="The file's id (`file_id` in its report)")],
    body: Annotated[VoidIn, Body()],
) -> VoidOut:
    actor = caller_identity(app.current_event.raw_event)
    result = void_retrying(DB.get(), file_id, body.reason, actor)
    aftercommit.rewrite_report(result, s3_client, logger)
    aftercommit.publish_events(result, DB, events_client, app.lambda_context, metrics, logger)
    logger.info(
        "file voided",
        extra={
            "file_id": file_id,
            "already_voided": result.already_voided,
            "status_changes": result.status_changes,
            "actor": actor,
        },
    )
    metrics.add_metric("FilesVoided", MetricUnit.Count, 0 if result.already_voided else 1)
    return result.to_json()  # type: ignore[return-value]  # validated by Powertools


OPERATOR_HEADER = "x-cardstatus-operator"
OPERATOR_MAX_CHARS = 100


@app.post(ERASE_ROUTE_PATH, **ERASE_ROUTE)
def erase(body: Annotated[EraseIn, Body()]) -> EraseOut:
    """Erasure on request (README "Privacy"): cardstatus.erasure, as this function's role."""
    if (body.phone is None) == (body.card_id is None):
        raise InvalidParameter("give exactly one of phone and card_id", parameter="phone")
    actor = caller_identity(app.current_event.raw_event)
    if body.phone is not None:
        result = erasure.erase_phone(DB.get(), body.phone, body.reason, actor)
    else:
        result = erasure.erase_card(DB.get(), body.card_id, body.reason, actor)
    logger.info("erased on request", extra={**result.to_json(), "actor": actor})  # no number
    metrics.add_metric("ErasureRequests", MetricUnit.Count, 1)
    return {**result.to_json(), "requested_by": actor}  # type: ignore[return-value]


def caller_identity(event: dict[str, Any]) -> str:
    """Who voids: the caller's IAM identity from the request context (userArn, else caller).
    The console sends the operator's name in X-Cardstatus-Operator: it is added after the
    IAM identity (a shared role names the person), and stands alone only where there is no
    IAM identity (the local server)."""
    identity = (event.get("requestContext") or {}).get("identity") or {}
    iam = next((str(identity[n]) for n in ("userArn", "caller", "user") if identity.get(n)), None)
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    raw = str(headers.get(OPERATOR_HEADER) or "")
    operator = " ".join("".join(c if c.isprintable() else " " for c in raw).split())
    operator = operator[:OPERATOR_MAX_CHARS]
    if iam and operator and operator != iam:
        return f"{iam} (operator: {operator})"
    return iam or operator or "unknown"


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False, clear_state=True
)
@metrics.log_metrics()
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    refused = errors.body_problem(event)
    if refused is not None:
        return refused
    return app.resolve(event, context)
