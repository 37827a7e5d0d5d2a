"""Operations routes of the status API (README "Operations"): what became of the files, and
which cards are stuck with the courier. Same IAM auth, error model and OpenAPI document as the
card routes; each route validates its parameters, calls one `cardstatus.ops` function and
returns its answer.

The routes live on a Powertools `Router`; `register(app, connection, requests)` (app.py calls
it once) gives them the resolver's connection and request log and includes them in it.
POST /files/{file_id}/void is not here: it is its own function with its own IAM permission.
"""

# No `from __future__ import annotations`: Powertools reads the route signatures at runtime.

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from cardstatus import cards, ops
from functions.api.observability import RequestLog
from functions.api.ops_schemas import (
    CursorQuery,
    FileIdPath,
    FileListOut,
    FileReportOut,
    HasRejectsQuery,
    HealthOut,
    LimitQuery,
    OlderThanQuery,
    OutcomeQuery,
    PartnerQuery,
    RejectListOut,
    SinceQuery,
    StuckCardListOut,
    StuckStatusQuery,
)
from functions.api.schemas import ERRORS_500, ERRORS_503, FILE_ERRORS, LIST_ERRORS

router = APIGatewayRouter()


class _Bound:
    """What the routes answer with, set by `register`: the resolver's connection and log."""

    connection: Callable[[], Any]
    requests: RequestLog


_bound = _Bound()


def register(
    app: APIGatewayRestResolver, connection: Callable[[], Any], requests: RequestLog
) -> None:
    """Add the routes below (GET /health, /files, /files/{file_id}, /files/{file_id}/rejects,
    /stuck_cards, in that order in the OpenAPI document) to app."""
    _bound.connection, _bound.requests = connection, requests
    app.include_router(router)


@router.get(
    "/health",
    summary="Liveness with a database round trip",
    operation_id="health",
    tags=["ops"],
    responses={200: {"description": "The database answers"}, 500: ERRORS_500, 503: ERRORS_503},
)
def health() -> HealthOut:
    cards.ping(_bound.connection())
    _bound.requests.record("ok")
    return {"status": "ok", "database": "ok"}  # type: ignore[return-value]


@router.get(
    "/files",
    summary="Recent ingested files, newest first",
    description="Each file's outcome and counts; filters combine. Paged: see next_cursor.",
    operation_id="listFiles",
    tags=["ops"],
    responses={200: {"description": "One page of files"}, **LIST_ERRORS},
)
def list_files(
    partner: PartnerQuery = None,
    outcome: OutcomeQuery = None,
    since: SinceQuery = None,
    limit: LimitQuery = None,
    cursor: CursorQuery = None,
    has_rejects: HasRejectsQuery = None,
) -> FileListOut:
    body = ops.list_files(_bound.connection(), partner, outcome, since, limit, cursor, has_rejects)
    _bound.requests.record("found", count=len(body["files"]))
    return body  # type: ignore[return-value]  # validated and serialised by Powertools


@router.get(
    "/files/<file_id>",
    summary="One file's full report",
    description=(
        "The report ingestion stored (counts, first rejects and warnings, encoding, "
        "timings, ...) with the file id and, once voided, when, by whom and why."
    ),
    operation_id="getFile",
    tags=["ops"],
    responses={200: {"description": "The report"}, **FILE_ERRORS},
)
def get_file(file_id: FileIdPath) -> FileReportOut:
    body = ops.file_report(_bound.connection(), file_id)
    _bound.requests.record("found", file_id=file_id)
    return body  # type: ignore[return-value]


@router.get(
    "/files/<file_id>/rejects",
    summary="Every rejected row of a file (line and reason), in line order",
    operation_id="listFileRejects",
    tags=["ops"],
    responses={200: {"description": "One page of rejected rows"}, **FILE_ERRORS},
)
def list_file_rejects(
    file_id: FileIdPath, cursor: CursorQuery = None, limit: LimitQuery = None
) -> RejectListOut:
    body = ops.file_rejects(_bound.connection(), file_id, cursor, limit)
    _bound.requests.record("found", file_id=file_id, count=len(body["rejects"]))
    return body  # type: ignore[return-value]


@router.get(
    "/stuck_cards",
    summary="Cards stuck in a status for too long, oldest first",
    description=(
        "Cards whose current status is `status` and older than `older_than_hours`: the "
        "delivery-SLA worklist. `partner` is the partner of the card's current event."
    ),
    operation_id="listStuckCards",
    tags=["ops"],
    responses={200: {"description": "One page of cards"}, **LIST_ERRORS},
)
def list_stuck_cards(
    status: StuckStatusQuery = None,
    older_than_hours: OlderThanQuery = None,
    partner: PartnerQuery = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = None,
) -> StuckCardListOut:
    body = ops.stuck_cards(_bound.connection(), status, older_than_hours, partner, cursor, limit)
    _bound.requests.record("found", count=len(body["cards"]))
    return body  # type: ignore[return-value]
