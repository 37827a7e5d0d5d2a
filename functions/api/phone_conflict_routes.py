"""GET /phone_conflicts (README "Card ownership"): copies of one event that carry different
phones, for ops. Same IAM auth, error model and OpenAPI document as the other routes; the
route validates its parameters, calls `cardstatus.ops.phone_conflicts` and returns its answer.
No phone number is answered.

`register(app, connection, requests)` (app.py calls it once) gives the route the resolver's
connection and request log and includes it in the resolver.
"""

# No `from __future__ import annotations`: Powertools reads the route signatures at runtime.

from collections.abc import Callable
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import Field

from cardstatus import ops
from functions.api.observability import RequestLog
from functions.api.ops_schemas import NEXT_CURSOR_DESCRIPTION, CursorQuery, LimitQuery
from functions.api.schemas import LIST_ERRORS, Status, UtcTime, _Strict

router = APIGatewayRouter()


class _Bound:
    connection: Callable[[], Any]
    requests: RequestLog


_bound = _Bound()


def register(
    app: APIGatewayRestResolver, connection: Callable[[], Any], requests: RequestLog
) -> None:
    """Add GET /phone_conflicts to app."""
    _bound.connection, _bound.requests = connection, requests
    app.include_router(router)


class PhoneConflictOut(_Strict):
    file_id: int = Field(description="The file whose copy differs")
    line: int = Field(description="Its line")
    partner: str = Field(description="That file's partner")
    card_id: str
    status: Status
    occurred_at: UtcTime
    other_file_id: int = Field(description="A file with another phone for the same event")
    other_line: int
    other_partner: str
    owner_partner: str | None = Field(description="The card's owner (partner of its first event)")
    kept: bool = Field(description="Whether the event keeps this copy's phone")
    detected_at: UtcTime


class PhoneConflictListOut(_Strict):
    conflicts: list[PhoneConflictOut] = Field(description="Newest first")
    next_cursor: str | None = Field(description=NEXT_CURSOR_DESCRIPTION)


ConflictSinceQuery = Annotated[
    str | None,
    Query(
        description=(
            "Only conflicts found at or after this ISO 8601 date or time  (UTC if no offset)"
        ),
        max_length=40,
        openapi_examples={"date": {"summary": "A day", "value": "2026-12-01"}},
    ),
]


@router.get(
    "/phone_conflicts",
    summary="Copies of one event that carry different phones, newest first",
    description=(
        "Each copy a file brought whose phone differs from another file's copy of the same "
        "event (a warning in that file's report). The event keeps the card owner's copy; "
        "`kept` says whether that is this copy. Conflicts involving a voided file are left "
        "out. No phone number is answered. Paged: see next_cursor."
    ),
    operation_id="listPhoneConflicts",
    tags=["ops"],
    responses={200: {"description": "One page of conflicts"}, **LIST_ERRORS},
)
def list_phone_conflicts(
    since: ConflictSinceQuery = None, cursor: CursorQuery = None, limit: LimitQuery = None
) -> PhoneConflictListOut:
    body = ops.phone_conflicts(_bound.connection(), since, cursor, limit)
    _bound.requests.record("found", count=len(body["conflicts"]))
    return body  # type: ignore[return-value]  # validated and serialised by Powertools
