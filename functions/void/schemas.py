"""The void function's request and answer models and its documented responses (the OpenAPI
document is generated from them and from the route in functions/void/app.py)."""

# No `from __future__ import annotations`: Powertools reads the models at runtime.

from typing import Any, Literal

from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel, ConfigDict, Field

from cardstatus.erasure import REASON_MAX_CHARS as ERASE_REASON_MAX_CHARS
from cardstatus.void import REASON_MAX_CHARS


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


# The route's documentation: `@app.post(VOID_ROUTE_PATH, **VOID_ROUTE)`.
VOID_ROUTE_PATH = "/files/<file_id>/void"
VOID_ROUTE: dict[str, Any] = {
    "summary": "Void an applied file: the state becomes what it would be had it never been applied",
    "description": (
        "Events only this file carried are deleted, shared events are merged again from the "
        "other files' copies, every card it touched is recomputed (a card left without events "
        "is deleted), and each card whose current status changes emits CardStatusChanged. "
        "Idempotent: voiding a voided file answers the first void's result. Needs its own IAM "
        "permission (execute-api:Invoke on POST /files/*/void), not granted to API callers."
    ),
    "operation_id": "voidFile",
    "tags": ["files"],
    "responses": {
        200: {"description": "The file is voided"},
        400: _documented("Missing or invalid file_id or reason (the message names it)"),
        404: _documented("No file with this id"),
        409: _documented("The file was never applied (duplicate_file or rejected_file)"),
        500: _documented("Unexpected error (no details)"),
        503: _documented("Database unavailable; retry after the Retry-After header"),
    },
}


class EraseIn(BaseModel):
    """Exactly one of phone and card_id (the number travels in the body, never in the URL)."""

    model_config = ConfigDict(extra="forbid")
    phone: str | None = Field(
        default=None,
        max_length=64,
        description="The phone number to erase, in any written form (never logged or answered)",
    )
    card_id: str | None = Field(
        default=None, max_length=64, description="The card to delete with its events"
    )
    reason: str = Field(
        min_length=1,
        max_length=ERASE_REASON_MAX_CHARS,
        description="Why (the request's reference); kept with the request, without the number",
        examples=["DSR-1234: customer request under the PDPL"],
    )


class EraseOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    request_id: int = Field(description="The erasure request's id (erasure_request)")
    kind: Literal["phone", "card"]
    cards: int = Field(description="Cards that showed the number / cards deleted")
    events: int = Field(description="Events that lost the number / events deleted")
    copies: int = Field(description="Event copies that lost the number / copies deleted")
    requested_by: str = Field(description="Who asked: the caller's IAM identity")


ERASE_ROUTE_PATH = "/privacy/erase"
ERASE_ROUTE: dict[str, Any] = {
    "summary": "Erase a phone number, or a whole card, on request (README Privacy)",
    "description": (
        "By phone: every card, event and copy carrying the number loses it (history kept); by "
        "card id: the card is deleted with its events. Recorded with who asked and why, never "
        "the number. Needs its own IAM permission (execute-api:Invoke on POST /privacy/erase)."
    ),
    "operation_id": "erase",
    "tags": ["privacy"],
    "responses": {
        200: {"description": "Erased"},
        400: _documented("Neither or both of phone and card_id, an invalid one, or no reason"),
        500: _documented("Unexpected error (no details)"),
        503: _documented("Database unavailable; retry after the Retry-After header"),
    },
}
