"""Status API: API Gateway (REST, proxy integration) -> this Lambda -> PostgreSQL via RDS Proxy.

Thin by design: each route validates its parameters, calls one function of
`cardstatus.cards` and shapes the answer. Every error, including Powertools' own
validation and routing errors, is `{"error": {"code": ..., "message": ...}}`.

Routes: GET /get_card_status, GET /cards/{card_id}, GET /cards?user_phone=…, GET /health.
The OpenAPI document (docs/openapi.json) is generated from this module: `openapi_json()`.
"""

# No `from __future__ import annotations`: Powertools reads the route signatures at runtime.

import json
import os
import re
import time
import traceback
from http import HTTPStatus
from typing import Annotated, Any, Literal

import psycopg2
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from cardstatus import cards
from cardstatus.db import DatabaseUnavailable, LazyConnection
from cardstatus.model import CARD_ID_RE, mask_phone, redact_phones

API_TITLE = "cardstatus"
API_VERSION = "1.0.0"
RETRY_AFTER_S = "5"

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "cardstatus-api"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "cardstatus"))


def _tracing_enabled() -> bool:
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() not in {
        "1",
        "true",
        "yes",
        "on",
    }


def _capture_lambda_handler(func: Any) -> Any:
    """X-Ray tracing unless POWERTOOLS_TRACE_DISABLED: the X-Ray SDK (with botocore) costs
    hundreds of milliseconds of cold start, so it is not even imported when disabled."""
    if not _tracing_enabled():
        return func
    from aws_lambda_powertools import Tracer

    return Tracer().capture_lambda_handler(func)


app = APIGatewayRestResolver(enable_validation=True)

_request_started = time.perf_counter()

# One connection per warm container, opened on first use, replaced after a failure.
DB = LazyConnection()


# --- log redaction ------------------------------------------------------------------------


class _RedactPhones:
    """Last line of defence: whatever reaches the log handler has phone-like digit runs masked."""

    def filter(self, record: Any) -> bool:
        message = record.getMessage()
        redacted = redact_phones(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


logger.registered_handler.addFilter(_RedactPhones())


# --- response models (the OpenAPI schemas) ------------------------------------------------

Status = Literal["PICKED_UP", "DELIVERY_EXCEPTION", "DELIVERED", "RETURNED"]
Reason = Literal["recipient_unavailable", "refused", "address_problem", "other"]
ErrorCode = Literal[
    "invalid_parameter",
    "missing_parameter",
    "not_found",
    "method_not_allowed",
    "database_unavailable",
    "internal_error",
]
UtcTime = Annotated[
    str,
    Field(
        pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$",
        description="ISO 8601, UTC",
        examples=["2023-11-14T12:34:56Z"],
    ),
]
CARD_ID_PATTERN = f"^{CARD_ID_RE.pattern}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HistoryEntry(_Strict):
    status: Status
    at: UtcTime
    comment: str | None = Field(description="The partner's raw comment")
    reason: Reason | None = Field(description="Normalised exception reason")
    partner: str


class Card(_Strict):
    card_id: str = Field(examples=["ZYW8890"])
    status: Status
    status_at: UtcTime
    comment: str | None
    reason: Reason | None
    user_phone: str | None = Field(
        description="Masked: only the last 4 digits", examples=["********9014"]
    )
    picked_up_at: UtcTime | None
    delivered_at: UtcTime | None
    returned_at: UtcTime | None
    exception_count: int = Field(ge=0)
    history: list[HistoryEntry] = Field(description="Every event of the card, newest first")


class CardSummary(_Strict):
    card_id: str
    status: Status
    status_at: UtcTime


class CardStatus(Card):
    other_cards: list[CardSummary] = Field(
        description="Other cards of the same phone, latest status first"
    )


class CardList(_Strict):
    cards: list[Card] = Field(description="Cards of the phone, latest status first")


class Health(_Strict):
    status: Literal["ok"]
    database: Literal["ok"]


class ErrorDetail(_Strict):
    code: ErrorCode
    message: str


class ErrorResponse(_Strict):
    error: ErrorDetail


def _error_response(description: str) -> OpenAPIResponse:
    return {"description": description, "content": {"application/json": {"model": ErrorResponse}}}


_ERRORS_400 = _error_response("Missing or invalid parameter (the message names it)")
_ERRORS_404 = _error_response("No card matches (no hint which identifier exists)")
_ERRORS_500 = _error_response("Unexpected error (no details)")
_ERRORS_503: OpenAPIResponse = {
    **_error_response("Database unavailable; retry after the Retry-After header"),
    "headers": {
        "Retry-After": {
            "description": "Seconds to wait before retrying",
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        }
    },
}

# Parameter documentation shared by the routes.
CardIdQuery = Annotated[
    str | None,
    Query(
        description="Card id: 1-64 ASCII letters, digits, '_' or '-'",
        max_length=cards.CARD_ID_MAX_LENGTH,
        pattern=CARD_ID_PATTERN,
        openapi_examples={"card": {"summary": "A card id", "value": "ZYW8827"}},
    ),
]
PhoneQuery = Annotated[
    str | None,
    Query(
        description=(
            "User phone in any form: national (585949014), with trunk 0, with country code "
            "(971…, +971…, 00971…), spaces, dashes or brackets. Default region AE."
        ),
        max_length=cards.PHONE_MAX_LENGTH,
        openapi_examples={
            "national": {"summary": "9 digits, no country code", "value": "585949014"},
            "international": {"summary": "E.164", "value": "+971585949014"},
        },
    ),
]


# --- per-request bookkeeping ---------------------------------------------------------------


def _record(outcome: str, **fields: Any) -> None:
    """One metric and one log line per request; phones only ever in masked form."""
    route = app.context.get("_route")
    operation = getattr(getattr(route, "func", None), "__name__", "unknown")
    metrics.add_dimension(name="operation", value=operation)
    metrics.add_dimension(name="outcome", value=outcome)
    metrics.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
    fields["duration_ms"] = round((time.perf_counter() - _request_started) * 1000, 3)
    logger.info("request", extra={"operation": operation, "outcome": outcome, **fields})


def _masked(raw: str | None) -> str | None:
    return mask_phone(raw) if raw else None


def _connection() -> Any:
    conn = DB.get()
    if not conn.autocommit:
        # Client-side flag only (no SET is sent): single statements, no BEGIN/ROLLBACK round trips.
        conn.autocommit = True
    return conn


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({"error": {"code": code, "message": message}}),
        headers=headers,
    )


# --- routes --------------------------------------------------------------------------------


@app.get(
    "/get_card_status",
    summary="Current status of a card, by card id and/or user phone",
    description=(
        "At least one of card_id and user_phone. By phone with several cards: the card with "
        "the latest status plus other_cards. With both, the card must belong to that phone "
        "(else 404)."
    ),
    operation_id="getCardStatus",
    tags=["cards"],
    responses={
        200: {"description": "The card, with the phone's other cards"},
        400: _ERRORS_400,
        404: _ERRORS_404,
        500: _ERRORS_500,
        503: _ERRORS_503,
    },
)
def get_card_status(card_id: CardIdQuery = None, user_phone: PhoneQuery = None) -> CardStatus:
    app.append_context(_user_phone=user_phone, _card_id=card_id)
    valid_id, e164 = cards.status_query(card_id, user_phone)  # 400s before any database work
    body = cards.card_status(_connection(), valid_id, e164)
    _record("found", card_id=body["card_id"], user_phone=_masked(user_phone))
    return body  # type: ignore[return-value]  # validated and serialised by Powertools


@app.get(
    "/cards/<card_id>",
    summary="One card by id",
    operation_id="getCard",
    tags=["cards"],
    responses={
        200: {"description": "The card"},
        400: _ERRORS_400,
        404: _ERRORS_404,
        500: _ERRORS_500,
        503: _ERRORS_503,
    },
)
def get_card(
    card_id: Annotated[
        str,
        Path(
            description="Card id: 1-64 ASCII letters, digits, '_' or '-'",
            max_length=cards.CARD_ID_MAX_LENGTH,
            pattern=CARD_ID_PATTERN,
            openapi_examples={"card": {"summary": "A card id", "value": "ZYW8827"}},
        ),
    ],
) -> Card:
    app.append_context(_card_id=card_id)
    body = cards.card_by_id(_connection(), cards.validate_card_id(card_id))
    _record("found", card_id=card_id)
    return body  # type: ignore[return-value]


@app.get(
    "/cards",
    summary="All cards of a user phone",
    operation_id="listCards",
    tags=["cards"],
    responses={
        200: {"description": "The phone's cards, latest status first"},
        400: _ERRORS_400,
        404: _ERRORS_404,
        500: _ERRORS_500,
        503: _ERRORS_503,
    },
)
def list_cards(user_phone: PhoneQuery = None) -> CardList:
    app.append_context(_user_phone=user_phone)
    e164 = cards.parse_phone(user_phone)
    body = cards.phone_cards(_connection(), e164)
    _record("found", count=len(body["cards"]), user_phone=_masked(user_phone))
    return body  # type: ignore[return-value]


@app.get(
    "/health",
    summary="Liveness with a database round trip",
    operation_id="health",
    tags=["ops"],
    responses={
        200: {"description": "The database answers"},
        500: _ERRORS_500,
        503: _ERRORS_503,
    },
)
def health() -> Health:
    cards.ping(_connection())
    _record("ok")
    return {"status": "ok", "database": "ok"}  # type: ignore[return-value]


# --- errors --------------------------------------------------------------------------------

# Paths this API serves (with or without a trailing slash): other methods there get 405.
_KNOWN_PATH = re.compile(r"^/(get_card_status|cards|health|cards/[^/]+)/?$")
_CARD_PATH = re.compile(r"^/cards/([^/]+)/?$")

# What a RequestValidationError on each parameter means, in words a caller can act on.
_PARAM_MESSAGES = {
    "card_id": "card_id must be 1-64 characters: ASCII letters, digits, '_' or '-', "
    "starting with a letter or digit",
    "user_phone": f"user_phone must be at most {cards.PHONE_MAX_LENGTH} characters",
}


@app.exception_handler(cards.InvalidParameter)
def _invalid_parameter(exc: cards.InvalidParameter) -> Response:
    _record("invalid", parameter=exc.name, user_phone=_masked(app.context.get("_user_phone")))
    return _error(HTTPStatus.BAD_REQUEST, exc.code, exc.message)


@app.exception_handler(RequestValidationError)
def _request_validation(exc: RequestValidationError) -> Response:
    errors = exc.errors()
    first = errors[0] if errors else {}
    loc = [str(part) for part in first.get("loc", ())]
    name = loc[-1] if loc else "request"
    if first.get("type") == "missing":
        code, message = "missing_parameter", f"{name} is required"
    else:
        code = "invalid_parameter"
        message = _PARAM_MESSAGES.get(name, f"{name} is invalid")
    _record("invalid", parameter=name)
    return _error(HTTPStatus.BAD_REQUEST, code, message)


@app.exception_handler(cards.CardNotFound)
def _card_not_found(exc: cards.CardNotFound) -> Response:
    _record("not_found", user_phone=_masked(app.context.get("_user_phone")))
    return _error(HTTPStatus.NOT_FOUND, "not_found", cards.CardNotFound.message)


@app.not_found
def _route_not_found(exc: NotFoundError) -> Response:
    path = str(app.context.get("_path") or app.current_event.path)
    method = app.current_event.http_method.upper()
    if _KNOWN_PATH.match(path) and method != "GET":
        _record("method_not_allowed", method=method)
        return _error(
            HTTPStatus.METHOD_NOT_ALLOWED,
            "method_not_allowed",
            f"{method} is not allowed here; use GET",
            headers={"Allow": "GET"},
        )
    if _CARD_PATH.match(path):
        # /cards/<something the route pattern refuses> (control characters, quotes, ...).
        _record("invalid", parameter="card_id")
        return _error(HTTPStatus.BAD_REQUEST, "invalid_parameter", _PARAM_MESSAGES["card_id"])
    _record("no_route", method=method)
    return _error(HTTPStatus.NOT_FOUND, "not_found", "no such route")


@app.exception_handler([DatabaseUnavailable, psycopg2.OperationalError, psycopg2.InterfaceError])
def _database_unavailable(exc: Exception) -> Response:
    DB.discard()  # the next invocation reconnects
    _record("unavailable", error_type=type(exc).__name__)
    return _error(
        HTTPStatus.SERVICE_UNAVAILABLE,
        "database_unavailable",
        "the database is unavailable; retry later",
        headers={"Retry-After": RETRY_AFTER_S},
    )


@app.exception_handler(Exception)
def _unexpected(exc: Exception) -> Response:
    if isinstance(exc, psycopg2.Error):
        DB.discard()  # do not reuse a connection in an unknown state
    _record(
        "error",
        error_type=type(exc).__name__,
        traceback=redact_phones("".join(traceback.format_exception(exc, limit=-4))),
    )
    return _error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", "internal error")


# --- entry points --------------------------------------------------------------------------


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_REST, log_event=False, clear_state=True
)
@_capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    global _request_started
    _request_started = time.perf_counter()
    return app.resolve(event, context)


def openapi_schema() -> dict[str, Any]:
    """The OpenAPI 3 document of this API as a dict.

    Powertools documents its own 422 validation answer on every route; this API answers
    400 with the common error body instead, so those entries are removed.
    """
    doc = json.loads(
        app.get_openapi_json_schema(
            title=API_TITLE,
            version=API_VERSION,
            description=(
                "Delivery status of payment cards. Internal callers sign requests with "
                "AWS SigV4 (API Gateway IAM authorisation). Every error is "
                '{"error": {"code": ..., "message": ...}}.'
            ),
        )
    )
    for operations in doc.get("paths", {}).values():
        for operation in operations.values():
            operation.get("responses", {}).pop("422", None)
    schemas = doc["components"]["schemas"]
    reachable = _referenced_schemas(doc["paths"], schemas)
    for name in [n for n in schemas if n not in reachable]:
        del schemas[name]  # Powertools' validation-error schemas, now unused
    doc["components"]["securitySchemes"] = {
        "sigv4": {
            "type": "apiKey",
            "name": "Authorization",
            "in": "header",
            "description": "AWS Signature Version 4 (IAM)",
        }
    }
    doc["security"] = [{"sigv4": []}]
    return doc


def _referenced_schemas(root: Any, schemas: dict[str, Any]) -> set[str]:
    """Names of the component schemas reachable from root through $ref."""
    prefix = "#/components/schemas/"
    found: set[str] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(prefix) and ref[len(prefix) :] not in found:
                name = ref[len(prefix) :]
                found.add(name)
                stack.append(schemas.get(name))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def openapi_json() -> str:
    """docs/openapi.json, byte for byte (`make openapi` writes it)."""
    return json.dumps(openapi_schema(), indent=2, ensure_ascii=False) + "\n"
