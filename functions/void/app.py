"""Void function: `POST /files/{file_id}/void` with `{"reason": "..."}` → `cardstatus.void`.

A function of its own behind its own API method and IAM permission (README "Voiding a
file"): the read-only API function stays read-only, and this one connects to PostgreSQL as
`cardstatus_void` (IAM token, directly to the instance: a void is one long transaction with
temporary tables, which would pin an RDS Proxy connection). Thin: validate the body, take the
actor from the caller's IAM identity, call `void_retrying`, then (after commit) rewrite the
file's S3 report with its `voided` block. Errors are `{"error": {"code", "message"}}`.

Lambda handler: `functions.void.app.handler`.
"""

# No `from __future__ import annotations`: Powertools reads the route signatures at runtime.

import json
import os
import traceback
from http import HTTPStatus
from typing import Annotated, Any, Literal

import psycopg2
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from cardstatus.db import TRANSIENT_DB_ERRORS, LazyConnection, aws_client
from cardstatus.errors import RequestError, error_body
from cardstatus.model import redact_phones
from cardstatus.void import REASON_MAX_CHARS, VoidResult, void_retrying

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "cardstatus-void"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "cardstatus"))
app = APIGatewayRestResolver(enable_validation=True)

# One connection per warm container, opened on first use, replaced after a failure.
DB = LazyConnection()
_s3: Any = None

__all__ = ["DB", "app", "handler"]


def s3_client() -> Any:
    global _s3
    if _s3 is None:
        _s3 = aws_client("s3")
    return _s3


# --- request and answer ----------------------------------------------------------------------


class VoidIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(
        min_length=1,
        max_length=REASON_MAX_CHARS,
        description="Why the file is voided (kept with the file and in its report)",
        examples=["wrong file: a Delivered export uploaded as Returned"],
    )


class VoidOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    file_id: int
    voided: bool = Field(description="Always true: the file is voided (now or before)")
    events_removed: int = Field(description="Events only this file carried: deleted")
    events_remerged: int = Field(description="Shared events whose merged fields changed")
    copies_removed: int = Field(description="The file's copies of events (one per event)")
    cards_changed: int = Field(description="Cards recomputed to a different state or deleted")
    cards_deleted: int = Field(description="Cards left without any event: deleted")
    status_changes: int = Field(description="Cards whose current status changed (one event each)")
    voided_at: str = Field(description="When the void committed (ISO 8601, UTC)")
    voided_by: str = Field(description="Who voided it: the caller's IAM identity")
    reason: str


class VoidErrorDetail(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: Literal[
        "invalid_parameter",
        "missing_parameter",
        "not_found",
        "conflict",
        "database_unavailable",
        "internal_error",
    ]
    message: str


class VoidErrorResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")
    error: VoidErrorDetail


def _documented(description: str) -> OpenAPIResponse:
    return {
        "description": description,
        "content": {"application/json": {"model": VoidErrorResponse}},
    }


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(error_body(code, message)),
        headers=headers,
    )


@app.post(
    "/files/<file_id>/void",
    summary="Void an applied file: the state becomes what it would be had it never been applied",
    description=(
        "Events only this file carried are deleted, shared events are merged again from the "
        "other files' copies, every card it touched is recomputed (a card left without events "
        "is deleted), and each card whose current status changes emits CardStatusChanged. "
        "Idempotent: voiding a voided file answers the first void's result. Needs its own IAM "
        "permission (execute-api:Invoke on POST /files/*/void), not granted to API callers."
    ),
    operation_id="voidFile",
    tags=["files"],
    responses={
        200: {"description": "The file is voided"},
        400: _documented("Missing or invalid file_id or reason (the message names it)"),
        404: _documented("No file with this id"),
        409: _documented("The file was never applied (duplicate_file or rejected_file)"),
        500: _documented("Unexpected error (no details)"),
        503: _documented("Database unavailable; retry after the Retry-After header"),
    },
)
def void(
    file_id: Annotated[int, Path(ge=1, description="The file's id (`file_id` in its report)")],
    body: Annotated[VoidIn, Body()],
) -> VoidOut:
    actor = caller_identity(app.current_event.raw_event)
    result = void_retrying(DB.get(), file_id, body.reason, actor)
    _after_commit(result)
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


def caller_identity(event: dict[str, Any]) -> str:
    """The caller's IAM identity from the request context (IAM auth: userArn, else caller)."""
    identity = (event.get("requestContext") or {}).get("identity") or {}
    for name in ("userArn", "caller", "user"):
        value = identity.get(name)
        if value:
            return str(value)
    return "unknown"


def _after_commit(result: VoidResult) -> None:
    """The file's S3 report gets its `voided` block (also on a repeated void: it repairs a
    rewrite that failed). The database already holds it; a failure here is logged, not raised."""
    if not (result.bucket and result.object_key):
        return
    from cardstatus.config import settings
    from cardstatus.s3ingest import put_report

    try:
        put_report(s3_client(), result.bucket, result.object_key, result.report, settings())
    except Exception as exc:  # the void is committed; the S3 report is only a copy
        logger.warning(
            "could not rewrite the file's S3 report",
            extra={"file_id": result.file_id, "error": type(exc).__name__},
        )


# --- errors ------------------------------------------------------------------------------------


@app.exception_handler(RequestError)
def _request_error(exc: RequestError) -> Response:
    return _error(exc.http_status, exc.code, exc.message)


@app.exception_handler(RequestValidationError)
def _request_validation(exc: RequestValidationError) -> Response:
    errors = exc.errors()
    first = errors[0] if errors else {}
    loc = [str(part) for part in first.get("loc", ()) if part != "body"]
    name = loc[-1] if loc else "body"
    if first.get("type") in ("missing", "json_invalid"):
        code = "missing_parameter" if first.get("type") == "missing" else "invalid_parameter"
        message = f"{name} is required" if code == "missing_parameter" else "the body is not JSON"
    else:
        code, message = "invalid_parameter", f"{name} is invalid"
        if name == "reason":
            message = f"reason must be 1 to {REASON_MAX_CHARS} characters"
        elif name == "file_id":
            message = "file_id must be a positive integer"
    return _error(HTTPStatus.BAD_REQUEST, code, message)


@app.not_found
def _route_not_found(exc: NotFoundError) -> Response:
    return _error(HTTPStatus.NOT_FOUND, "not_found", "no such route")


@app.exception_handler(list(TRANSIENT_DB_ERRORS))
def _database_unavailable(exc: Exception) -> Response:
    DB.discard()  # the next invocation reconnects
    return _error(
        HTTPStatus.SERVICE_UNAVAILABLE,
        "database_unavailable",
        "the database is unavailable; retry later",
        headers={"Retry-After": "5"},
    )


@app.exception_handler(Exception)
def _unexpected(exc: Exception) -> Response:
    if isinstance(exc, psycopg2.Error):
        DB.discard()  # do not reuse a connection in an unknown state
    logger.error(
        "void failed",
        extra={
            "error_type": type(exc).__name__,
            "traceback": redact_phones("".join(traceback.format_exception(exc, limit=-4))),
        },
    )
    return _error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", "internal error")


# --- entry point -------------------------------------------------------------------------------


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False, clear_state=True
)
@metrics.log_metrics()
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
