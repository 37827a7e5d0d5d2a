"""Status API: API Gateway (REST, proxy integration) -> this Lambda -> PostgreSQL via RDS Proxy.

Thin by design: each route validates its parameters, calls one function of
`cardstatus.cards` (card routes, here) or `cardstatus.ops` (operations routes,
ops_routes.py) and shapes the answer. Every error, including Powertools' own
validation and routing errors, is `{"error": {"code": ..., "message": ...}}` (errors.py).
Response models and documented parameters: schemas.py; logs, metrics, traces:
observability.py. Lambda handler: `functions.api.app.handler`.

Routes: GET /get_card_status, POST /cards/search, GET /cards/{card_id},
GET /cards?user_phone=…; GET /health, /files, /files/{file_id}, /files/{file_id}/rejects,
/stuck_cards (ops_routes.py); GET /files/{file_id}/cards, /void_preview, /rejects.csv
(file_routes.py); GET /partners, /partners/{partner} (partner_routes.py);
GET /phone_conflicts (phone_conflict_routes.py).
HEAD works wherever GET does.
The OpenAPI document (docs/openapi.json) is generated from this module by
`cardstatus_dev.openapi` (`make openapi`).
"""

# No `from __future__ import annotations`: Powertools reads the route signatures at runtime.

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.utilities.typing import LambdaContext

from cardstatus import cards, lookup_budget
from cardstatus.db import ReadWriteConnections
from functions.api import errors, snapstart
from functions.api.audit_trail import AuditLines, LookupAudit
from functions.api.lazy_routes import LazyRoutesResolver
from functions.api.observability import (
    RequestLog,
    capture_lambda_handler,
    logger,
    masked,
    metrics,
    request_id,
)
from functions.api.schemas import (
    CARD_ERRORS,
    PAIR_LOOKUP_ERRORS,
    CardIdPath,
    CardIdQuery,
    CardListOut,
    CardOut,
    CardSearchIn,
    CardStatusOut,
    PhoneQuery,
)

app = LazyRoutesResolver(enable_validation=True)
requests = RequestLog(app)

# Per warm container: the writer connection (DB.get(): the mismatch budget) and, with
# DB_READ_HOST, a second one to the reader (DB.read(): the lookups and the ops routes);
# without it both are one connection. Opened on first use, replaced after a
# failure (README "Database connections", cardstatus/db.py ReadWriteConnections).
DB = ReadWriteConnections()

snapstart.register(app, DB)  # SnapStart runtime hooks (no-op outside Lambda)

__all__ = ["DB", "app", "handler", "logger", "metrics"]


# The clock of the per-caller lookup budget (tests inject one; cardstatus/lookup_budget.py).
budget_clock: lookup_budget.Clock = lookup_budget.utc_now


def _count_pair_lookup(mismatch: bool) -> None:
    """Charge a card-id + phone lookup to the caller's budget (429 once it is spent)."""
    caller = lookup_budget.caller_of(app.current_event.raw_event)
    app.append_context(_caller=caller)
    lookup_budget.spend(
        _connection(),
        caller,
        mismatch=mismatch,
        budget=lookup_budget.Budget.from_settings(),
        clock=budget_clock,
    )


def _autocommit(conn: Any) -> Any:
    if not conn.autocommit:
        # Client-side flag only (no SET is sent): single statements, no BEGIN/ROLLBACK round trips.
        conn.autocommit = True
    return conn


def _connection() -> Any:
    """The writer: the mismatch budget."""
    return _autocommit(DB.get())


def _read_connection() -> Any:
    """The reader when there is one (else the writer): lookups and ops routes."""
    return _autocommit(DB.read())


# Every card lookup, answered or 404: one line each, no database work (audit_trail.py).
audit_lines = AuditLines()
audit_trail = LookupAudit(app, audit_lines)
errors.register(app, DB, requests, on_not_found=audit_trail.not_found)
# The operations routes: imported when a request first needs them (cold start, lazy_routes.py).
app.include_lazily("functions.api.ops_routes", _read_connection, requests)
app.include_lazily("functions.api.file_routes", _read_connection, requests)
app.include_lazily("functions.api.partner_routes", _read_connection, requests)  # /partners...
app.include_lazily("functions.api.phone_conflict_routes", _read_connection, requests)

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
        **PAIR_LOOKUP_ERRORS,
    },
)
def get_card_status(card_id: CardIdQuery = None, user_phone: PhoneQuery = None) -> CardStatusOut:
    app.append_context(_user_phone=user_phone, _card_id=card_id)
    valid_id, e164 = cards.status_query(card_id, user_phone)  # 400s before any database work
    body = cards.card_status(
        _read_connection(), valid_id, e164, count_pair_lookup=_count_pair_lookup
    )
    audit_trail.answered([body["card_id"], *(c["card_id"] for c in body["other_cards"])])
    requests.record("found", card_id=body["card_id"], user_phone=masked(user_phone))
    return body  # type: ignore[return-value]  # validated and serialised by Powertools


@app.post(
    "/cards/search",
    summary="GET /get_card_status with the parameters in a JSON body (no phone in the URL)",
    operation_id="searchCards",
    tags=["cards"],
    responses={200: {"description": "As GET /get_card_status"}, **PAIR_LOOKUP_ERRORS},
)
def search_cards(query: Annotated[CardSearchIn, Body()]) -> CardStatusOut:
    return get_card_status(query.card_id, query.user_phone)


@app.get(
    "/cards/<card_id>",
    summary="One card by id",
    operation_id="getCard",
    tags=["cards"],
    responses={200: {"description": "The card"}, **CARD_ERRORS},
)
def get_card(card_id: CardIdPath) -> CardOut:
    app.append_context(_card_id=card_id)
    body = cards.card_by_id(_read_connection(), card_id)  # validates it
    audit_trail.answered([body["card_id"]])
    requests.record("found", card_id=card_id)
    return body  # type: ignore[return-value]


@app.get(
    "/cards",
    summary="All cards of a user phone",
    operation_id="listCards",
    tags=["cards"],
    responses={200: {"description": "The phone's cards, latest status first"}, **CARD_ERRORS},
)
def list_cards(user_phone: PhoneQuery = None) -> CardListOut:
    app.append_context(_user_phone=user_phone)
    e164 = cards.parse_phone(user_phone)
    body = cards.phone_cards(_read_connection(), e164)  # {"cards": []} for a phone without cards
    audit_trail.answered(c["card_id"] for c in body["cards"])
    requests.record("found", count=len(body["cards"]), user_phone=masked(user_phone))
    return body  # type: ignore[return-value]


# --- entry point ---------------------------------------------------------------------------


@logger.inject_lambda_context(log_event=False, clear_state=True)
@capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    logger.set_correlation_id(request_id(event))  # not correlation_id_path: no JMESPath
    requests.start()
    refused = errors.repeated_parameter(event, requests) or errors.body_problem(event, requests)
    if refused is not None:
        return refused
    if event.get("httpMethod") == "HEAD":  # answered as GET, without the body
        return {**app.resolve({**event, "httpMethod": "GET"}, context), "body": ""}
    return app.resolve(event, context)
