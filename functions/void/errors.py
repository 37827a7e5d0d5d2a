"""Every error answer of the void function: `{"error": {"code": ..., "message": ...}}`.

`register(app, db, logger)` installs the exception handlers on the resolver:
- every `cardstatus.errors.RequestError` (400, 404, 409): its own code, status and message;
- Powertools' request validation (file_id or the body breaks its documented rule): 400;
- no route: 404;
- the database is unreachable (`TRANSIENT_DB_ERRORS`): 503 with Retry-After, and the
  connection is dropped so the next invocation reconnects;
- anything else: 500 without details (the log has the redacted traceback).
"""

# No `from __future__ import annotations`: Powertools reads the handler signatures at runtime.

import json
import traceback
from http import HTTPStatus
from typing import Any

import psycopg2
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)

from cardstatus import request_guard
from cardstatus.db import TRANSIENT_DB_ERRORS, LazyConnection
from cardstatus.errors import RequestError, error_body
from cardstatus.model import redact_phones
from cardstatus.void import REASON_MAX_CHARS


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(error_body(code, message)),
        headers=headers,
    )


def body_problem(event: dict[str, Any]) -> dict[str, Any] | None:
    """The 400 answer (a proxy response) when the body is not JSON as it must be (Content-Type
    application/json, bounded nesting: cardstatus/request_guard.py), else None. Checked before
    Powertools parses it (its answers would be 415, or 500 for a deep array)."""
    problem = request_guard.json_body_problem(event)
    if problem is None:
        return None
    return {
        "statusCode": HTTPStatus.BAD_REQUEST,
        "headers": {"Content-Type": content_types.APPLICATION_JSON},
        "body": json.dumps(error_body("invalid_parameter", problem)),
        "isBase64Encoded": False,
    }


def register(app: APIGatewayRestResolver, db: LazyConnection, logger: Logger) -> None:
    @app.exception_handler(RequestError)
    def _request_error(exc: RequestError) -> Response:
        return error(exc.http_status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    def _request_validation(exc: RequestValidationError) -> Response:
        errors = exc.errors()
        first = errors[0] if errors else {}
        loc = [str(part) for part in first.get("loc", ()) if part != "body"]
        name = loc[-1] if loc else "body"
        if first.get("type") in ("missing", "json_invalid"):
            code = "missing_parameter" if first.get("type") == "missing" else "invalid_parameter"
            message = (
                f"{name} is required" if code == "missing_parameter" else "the body is not JSON"
            )
        else:
            code, message = "invalid_parameter", f"{name} is invalid"
            if name == "reason":
                message = f"reason must be 1 to {REASON_MAX_CHARS} characters"
            elif name == "file_id":
                message = "file_id must be a positive integer"
        return error(HTTPStatus.BAD_REQUEST, code, message)

    @app.exception_handler([RecursionError, RequestUnsupportedContentType])
    def _bad_body(exc: Exception) -> Response:
        # Behind body_problem's checks: a body the parser cannot take is a 400, never a 500.
        return error(HTTPStatus.BAD_REQUEST, "invalid_parameter", request_guard.NOT_JSON)

    @app.not_found
    def _route_not_found(exc: NotFoundError) -> Response:
        return error(HTTPStatus.NOT_FOUND, "not_found", "no such route")

    @app.exception_handler(list(TRANSIENT_DB_ERRORS))
    def _database_unavailable(exc: Exception) -> Response:
        db.discard()  # the next invocation reconnects
        return error(
            HTTPStatus.SERVICE_UNAVAILABLE,
            "database_unavailable",
            "the database is unavailable; retry later",
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response:
        if isinstance(exc, psycopg2.Error):
            db.discard()  # do not reuse a connection in an unknown state
        logger.error(
            "void failed",
            extra={
                "error_type": type(exc).__name__,
                "traceback": redact_phones("".join(traceback.format_exception(exc, limit=-4))),
            },
        )
        return error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", "internal error")
