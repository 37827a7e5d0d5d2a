"""Every error answer of the status API: `{"error": {"code": ..., "message": ...}}`.

`register(app, db, requests)` installs the exception handlers on the resolver:
- every `cardstatus.errors.RequestError` (400, 404, ...): its own code, status and message;
- Powertools' request validation (a parameter or the JSON body breaks its documented rule):
  400 naming the parameter;
- no route: 405 on a known path with another method, 400 for a card id the route pattern
  refuses, else 404;
- the database is unreachable (`TRANSIENT_DB_ERRORS`): 503 with Retry-After, and the
  connection is dropped so the next invocation reconnects;
- anything else: 500 without details (the log has the redacted traceback).
"""

# No `from __future__ import annotations`: Powertools reads the handler signatures at runtime.

import json
import os
import re
import traceback
from collections.abc import Callable
from functools import cache
from http import HTTPStatus
from typing import Any

import psycopg2
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.metrics import MetricUnit, single_metric

from cardstatus import cards, request_guard
from cardstatus.db import TRANSIENT_DB_ERRORS, LazyConnection
from cardstatus.errors import InvalidParameter, RequestError, TooManyMismatches, error_body
from cardstatus.model import redact_phones
from functions.api.observability import RequestLog, masked

RETRY_AFTER_S = "5"

# Paths this API serves (with or without a trailing slash): other methods there get 405.
_KNOWN_PATH = re.compile(
    r"^/(get_card_status|cards|health|cards/[^/]+|files|files/[^/]+|files/[^/]+/rejects"
    r"|files/[^/]+/cards|files/[^/]+/void_preview|files/[^/]+/rejects\.csv"
    r"|stuck_cards|partners|partners/[^/]+|phone_conflicts)/?$"
)
_POST_PATH = re.compile(r"^/cards/search/?$")
_CARD_PATH = re.compile(r"^/cards/([^/]+)/?$")

# What a RequestValidationError on each parameter means, in words a caller can act on: the
# card routes' parameters here, the operations routes' in `param_message` (cardstatus.ops and
# .partners are imported by those routes only: cold start, lazy_routes.py).
PARAM_MESSAGES = {
    "card_id": cards.CARD_ID_MESSAGE,
    "user_phone": f"user_phone must be at most {cards.PHONE_MAX_LENGTH} characters",
    "body": "the body must be a JSON object with card_id and/or user_phone",
}


@cache
def _ops_param_messages() -> dict[str, str]:
    from cardstatus import ops, partners

    return {**ops.MESSAGES, "at": partners.AT_MESSAGE}


def param_message(name: str) -> str:
    """The message of a RequestValidationError on parameter `name`."""
    if name in PARAM_MESSAGES:
        return PARAM_MESSAGES[name]
    return _ops_param_messages().get(name, f"{name} is invalid")


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(error_body(code, message)),
        headers=headers,
    )


def repeated_parameter(event: dict[str, Any], requests: RequestLog) -> dict[str, Any] | None:
    """The 400 answer (a proxy response) when a query parameter is given more than once, else
    None. Checked before validation, which would otherwise judge the list of values."""
    for name, values in (event.get("multiValueQueryStringParameters") or {}).items():
        if values and len(values) > 1:
            safe = name if name.isidentifier() and len(name) <= 40 else "a parameter"
            message = f"{safe} given {len(values)} times; give it once"
            requests.record("invalid", parameter=safe)
            return {
                "statusCode": HTTPStatus.BAD_REQUEST,
                "headers": {"Content-Type": content_types.APPLICATION_JSON},
                "body": json.dumps(error_body("invalid_parameter", message)),
                "isBase64Encoded": False,
            }
    return None


def body_problem(event: dict[str, Any], requests: RequestLog) -> dict[str, Any] | None:
    """The 400 answer (a proxy response) when a POST to this API's JSON route is not JSON
    (Content-Type, nesting; cardstatus/request_guard.py), else None. Checked before
    Powertools parses the body, whose own answers for these would be 415 or a 500."""
    if str(event.get("httpMethod") or "").upper() != "POST":
        return None  # other methods there are 405s (route_not_found)
    if not _POST_PATH.match(str(event.get("path") or "")):
        return None
    problem = request_guard.json_body_problem(event)
    if problem is None:
        return None
    requests.record("invalid", parameter="body")
    return {
        "statusCode": HTTPStatus.BAD_REQUEST,
        "headers": {"Content-Type": content_types.APPLICATION_JSON},
        "body": json.dumps(error_body("invalid_parameter", problem)),
        "isBase64Encoded": False,
    }


def _validation_message(error: dict[str, Any]) -> tuple[str, str, str]:
    """(parameter, code, message) of Powertools' first validation error."""
    loc = [part for part in error.get("loc", ()) if isinstance(part, str)]
    name = loc[-1] if loc else "request"
    kind = error.get("type")
    if kind == "json_invalid" or loc == ["body"]:
        if kind == "missing":
            return "body", "missing_parameter", PARAM_MESSAGES["body"]
        return "body", "invalid_parameter", PARAM_MESSAGES["body"]
    if kind == "extra_forbidden":
        return name, "invalid_parameter", f"{name[:40]} is not a known field"
    if kind == "missing":
        return name, "missing_parameter", f"{name} is required"
    return name, "invalid_parameter", param_message(name)


def reject_unknown_parameters(app: APIGatewayRestResolver, next_middleware: Any) -> Any:
    """Middleware: a query parameter the route does not document is a 400 naming it (a typo
    such as `outcom=` must not silently widen an answer)."""
    route = app.context.get("_route")
    given = app.current_event.query_string_parameters or {}
    # Powertools runs its not-found answer as a route too (no parameters): leave it to 404/405.
    routed = route is not None and getattr(route.func, "__name__", "") != "not_found_handler"
    if route is not None and routed and given:
        known = {field.alias for field in route.dependant.query_params}
        unknown = sorted(name for name in given if name not in known)
        if unknown:
            name = unknown[0] if unknown[0].isidentifier() and len(unknown[0]) <= 40 else "?"
            accepted = ", ".join(sorted(known)) or "none"
            raise InvalidParameter(
                f"unknown query parameter {name}; this route takes: {accepted}", parameter=name
            )
    return next_middleware(app)


def register(
    app: APIGatewayRestResolver,
    db: LazyConnection,
    requests: RequestLog,
    on_not_found: Callable[[], None] | None = None,
) -> None:
    """Install the API's exception handlers (and the unknown-parameter check) on app.
    `on_not_found` runs before a 404 answer (the lookup audit)."""
    app.use(middlewares=[reject_unknown_parameters])
    answers = _ErrorAnswers(app, db, requests, on_not_found)
    app.exception_handler(RequestError)(answers.request_error)
    app.exception_handler(RequestValidationError)(answers.request_validation)
    app.not_found(answers.route_not_found)
    app.exception_handler([RecursionError, RequestUnsupportedContentType])(answers.bad_body)
    app.exception_handler(list(TRANSIENT_DB_ERRORS))(answers.database_unavailable)
    app.exception_handler(Exception)(answers.unexpected)


class _ErrorAnswers:
    """The exception handlers of one resolver: each records the request's outcome and
    answers with the error body."""

    def __init__(
        self,
        app: APIGatewayRestResolver,
        db: LazyConnection,
        requests: RequestLog,
        on_not_found: Callable[[], None] | None,
    ) -> None:
        self._app = app
        self._db = db
        self._requests = requests
        self._on_not_found = on_not_found

    def request_error(self, exc: RequestError) -> Response:
        if isinstance(exc, TooManyMismatches):
            return self.budget_spent(exc)
        outcome = "not_found" if exc.http_status == HTTPStatus.NOT_FOUND else "invalid"
        if outcome == "not_found" and self._on_not_found is not None:
            try:
                self._on_not_found()
            except TRANSIENT_DB_ERRORS as db_exc:
                return self.database_unavailable(db_exc)
        fields = {} if exc.parameter is None else {"parameter": exc.parameter}
        user_phone = masked(self._app.context.get("_user_phone"))
        self._requests.record(outcome, **fields, user_phone=user_phone)
        return error_response(exc.http_status, exc.code, exc.message)

    def budget_spent(self, exc: TooManyMismatches) -> Response:
        """429 + Retry-After, the LookupBudgetExceeded metric (alarm: infra/guard_alarms.py)
        and a log line naming the caller (an IAM ARN, never a phone)."""
        with single_metric(
            name="LookupBudgetExceeded",
            unit=MetricUnit.Count,
            value=1,
            namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "cardstatus"),
            default_dimensions={
                "service": os.environ.get("POWERTOOLS_SERVICE_NAME", "cardstatus-api")
            },
        ):
            pass
        self._requests.record(
            "budget_exceeded",
            caller=self._app.context.get("_caller"),
            retry_after_s=exc.retry_after_s,
        )
        return error_response(
            exc.http_status,
            exc.code,
            exc.message,
            headers={"Retry-After": str(exc.retry_after_s)},
        )

    def request_validation(self, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        name, code, message = _validation_message(dict(errors[0]) if errors else {})
        self._requests.record("invalid", parameter=name)
        return error_response(HTTPStatus.BAD_REQUEST, code, message)

    def route_not_found(self, exc: NotFoundError) -> Response:
        path = str(self._app.context.get("_path") or self._app.current_event.path)
        method = self._app.current_event.http_method.upper()
        allowed = ("POST",) if _POST_PATH.match(path) else ("GET", "HEAD")
        if (_POST_PATH.match(path) or _KNOWN_PATH.match(path)) and method not in allowed:
            self._requests.record("method_not_allowed", method=method)
            return error_response(
                HTTPStatus.METHOD_NOT_ALLOWED,
                "method_not_allowed",
                f"{method} is not allowed here; use {allowed[0]}",
                headers={"Allow": ", ".join(allowed)},
            )
        if _CARD_PATH.match(path):
            # /cards/<something the route pattern refuses> (control characters, quotes, ...).
            self._requests.record("invalid", parameter="card_id")
            return error_response(
                HTTPStatus.BAD_REQUEST, "invalid_parameter", PARAM_MESSAGES["card_id"]
            )
        self._requests.record("no_route", method=method)
        return error_response(HTTPStatus.NOT_FOUND, "not_found", "no such route")

    def bad_body(self, exc: Exception) -> Response:
        """A body the parser cannot take (behind body_problem's checks): 400, never 500."""
        self._requests.record("invalid", parameter="body", error_type=type(exc).__name__)
        return error_response(HTTPStatus.BAD_REQUEST, "invalid_parameter", request_guard.NOT_JSON)

    def database_unavailable(self, exc: Exception) -> Response:
        self._db.discard()  # the next invocation reconnects
        self._requests.record("unavailable", error_type=type(exc).__name__)
        return error_response(
            HTTPStatus.SERVICE_UNAVAILABLE,
            "database_unavailable",
            "the database is unavailable; retry later",
            headers={"Retry-After": RETRY_AFTER_S},
        )

    def unexpected(self, exc: Exception) -> Response:
        if isinstance(exc, psycopg2.Error):
            self._db.discard()  # do not reuse a connection in an unknown state
        self._requests.record(
            "error",
            error_type=type(exc).__name__,
            traceback=redact_phones("".join(traceback.format_exception(exc, limit=-4))),
        )
        return error_response(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", "internal error")
