"""What the status API answers, as Pydantic models (the OpenAPI schemas), the documented
error responses of each route, and the documented query and path parameters.

Response models end in `Out`: `cardstatus.cards.Card` is the domain object, `CardOut` its
JSON shape; `cardstatus.model.CardStatus` is the status enum, `CardStatusOut` the answer
of GET /get_card_status.
"""

# No `from __future__ import annotations`: Powertools and Pydantic read these at runtime.

from enum import StrEnum
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from cardstatus import cards, ops
from cardstatus.model import CARD_ID_RE, CardStatus, ExceptionReason

ErrorCode = Literal[
    "invalid_parameter",
    "missing_parameter",
    "not_found",
    "method_not_allowed",
    "too_many_requests",
    "unsupported_media_type",
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


def _enum_schema(enum: type[StrEnum]) -> dict[str, Any]:
    return {"type": "string", "enum": [member.value for member in enum]}


# The domain enums, validated as such and documented inline in each schema that uses them
# (as the document always had), rather than as shared component schemas.
Status = Annotated[CardStatus, WithJsonSchema({**_enum_schema(CardStatus), "title": "Status"})]
OptionalReason = Annotated[
    ExceptionReason | None,
    WithJsonSchema({"anyOf": [_enum_schema(ExceptionReason), {"type": "null"}], "title": "Reason"}),
]
CARD_ID_DESCRIPTION = "Card id: 1-64 ASCII letters, digits, '_' or '-'"


# defer_build: a model's validator and serialiser are built when a request first needs them
# (cold start: a container serving only lookups never builds the ops models).
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class HistoryEntryOut(_Strict):
    status: Status
    at: UtcTime
    comment: str | None = Field(description="The partner's raw comment")
    reason: OptionalReason = Field(description="Normalised exception reason")
    partner: str
    file_id: int | None = Field(
        description="The file the event came from (GET /files/{file_id}); with several "
        "files carrying the event, the first by partner, file and line",
        examples=[42],
    )
    line: int | None = Field(description="Its line in that file (the header is line 1)")


class CardOut(_Strict):
    card_id: str = Field(examples=["ZYW8890"])
    status: Status
    status_at: UtcTime
    comment: str | None
    reason: OptionalReason
    user_phone: str | None = Field(
        description="Masked: only the last 4 digits", examples=["********9014"]
    )
    picked_up_at: UtcTime | None
    delivered_at: UtcTime | None
    returned_at: UtcTime | None
    exception_count: int = Field(ge=0)
    history: list[HistoryEntryOut] = Field(description="Every event of the card, newest first")


class CardSummaryOut(_Strict):
    card_id: str
    status: Status
    status_at: UtcTime


TRUNCATED_DESCRIPTION = (
    f"True when the phone has more than {cards.MAX_CARDS_PER_PHONE} cards and only the "
    f"{cards.MAX_CARDS_PER_PHONE} with the latest status are listed"
)


class CardStatusOut(CardOut):
    other_cards: list[CardSummaryOut] = Field(
        description=(
            "Other cards of the same phone, latest status first. Only filled when the lookup "
            "names the phone (user_phone): a lookup by card id alone does not reveal the "
            "user's other cards, and this list is then empty"
        )
    )
    truncated: bool = Field(description=TRUNCATED_DESCRIPTION)


class CardListOut(_Strict):
    cards: list[CardOut] = Field(description="Cards of the phone, latest status first")
    truncated: bool = Field(description=TRUNCATED_DESCRIPTION)


class CardSearchIn(_Strict):
    """POST /cards/search: the parameters of GET /get_card_status, out of the URL."""

    card_id: str | None = Field(
        default=None,
        description=CARD_ID_DESCRIPTION,
        max_length=cards.CARD_ID_MAX_LENGTH,
        pattern=CARD_ID_PATTERN,
        examples=["ZYW8827"],
    )
    user_phone: str | None = Field(
        default=None,
        description="User phone in any form, as in GET /get_card_status",
        max_length=cards.PHONE_MAX_LENGTH,
        examples=["585949014"],
    )


# --- operations ---------------------------------------------------------------------------

Outcome = Literal["applied", "duplicate_file", "rejected_file", "in_progress"]
StuckStatus = Literal["PICKED_UP", "DELIVERY_EXCEPTION"]
NEXT_CURSOR_DESCRIPTION = "Pass as `cursor` to get the next page; null on the last page"


class CountsOut(_Strict):
    rows: int = Field(ge=0, description="Data rows in the file")
    accepted: int = Field(ge=0)
    duplicate: int = Field(ge=0)
    rejected: int = Field(ge=0)
    warnings: int = Field(ge=0)


class FileOut(_Strict):
    file_id: int = Field(examples=[42])
    key: str = Field(description="The object key", examples=["incoming/acme/Delivered.csv"])
    partner: str
    outcome: Outcome
    counts: CountsOut
    reason: str | None = Field(description="Why the file was rejected or is a duplicate")
    received_at: UtcTime
    finished_at: UtcTime
    voided: bool
    cards_changed: int | None = Field(
        description="Cards whose current status the file changed (null: not applied, or "
        "applied before this was recorded); 0 for an applied file: nothing new"
    )


class FileListOut(_Strict):
    files: list[FileOut] = Field(description="Newest first")
    next_cursor: str | None = Field(description=NEXT_CURSOR_DESCRIPTION)


class FileReportOut(BaseModel):
    """The stored report (every field ingestion wrote: file, counts, rejects, warnings, timings,
    ...) plus the file's id and its void fields."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    file_id: int
    outcome: Outcome
    voided_at: UtcTime | None
    voided_by: str | None
    void_reason: str | None


class RejectOut(_Strict):
    line: int = Field(description="Line number in the file (the header is line 1)")
    reason: str = Field(description="Why the row was rejected (phones masked)")
    card_id: str | None = Field(description="The row's card id, when it was readable")
    raw_row: str | None = Field(
        description="The row as CSV text, only its phone cells masked (null: the row could "
        "not be split into cells, or was rejected before this was recorded)"
    )


class RejectListOut(_Strict):
    rejects: list[RejectOut] = Field(description="In line order")
    next_cursor: str | None = Field(description=NEXT_CURSOR_DESCRIPTION)


class StuckCardOut(_Strict):
    card_id: str
    status: StuckStatus
    status_at: UtcTime
    partner: str | None = Field(description="Partner of the card's current event")
    age_hours: float = Field(ge=0, description="Hours since status_at")
    reason: OptionalReason = Field(description="Normalised exception reason of the card")
    comment: str | None = Field(description="The partner's comment on the current event")
    exception_count: int = Field(ge=0, description="Delivery exceptions so far")
    file_id: int | None = Field(description="The file the current event came from")


class StuckCardListOut(_Strict):
    cards: list[StuckCardOut] = Field(description="Oldest status first")
    next_cursor: str | None = Field(description=NEXT_CURSOR_DESCRIPTION)
    total: int | None = Field(
        description=f"How many cards match (first page only; at most {ops.STUCK_TOTAL_CAP})"
    )
    total_capped: bool | None = Field(description="True when more than `total` match")


FileCardAction = Literal["apply", "void"]


class FileCardOut(_Strict):
    card_id: str
    action: FileCardAction = Field(description="apply: what the file did; void: what its void did")
    status_before: Status | None = Field(description="null: the file created the card")
    status_after: Status | None = Field(description="null: the void deleted the card")
    changed_at: UtcTime
    status_now: Status | None = Field(description="The card's status now (null: no card)")


class FileCardCountsOut(_Strict):
    apply: int = Field(ge=0, description="Cards whose status the file changed")
    void: int = Field(ge=0, description="Cards whose status its void changed")


class FileCardListOut(_Strict):
    file_id: int
    outcome: Outcome
    voided: bool
    counts: FileCardCountsOut
    cards: list[FileCardOut] = Field(description="apply rows first, then void rows; by card id")
    next_cursor: str | None = Field(description=NEXT_CURSOR_DESCRIPTION)


class VoidPreviewCardOut(_Strict):
    card_id: str
    status_now: Status
    status_after_void: Status | None = Field(description="null: the void deletes the card")


class VoidPreviewOut(_Strict):
    file_id: int
    outcome: Outcome
    voidable: bool = Field(description="Applied and not voided yet")
    cards_touched: int | None = Field(description="Cards the file carried events of")
    status_changes: int | None = Field(
        description="Cards whose current status a void would change (first page; null when "
        "the file is too large to count here)"
    )
    cards_deleted: int | None = Field(description="Cards a void would delete (no event left)")
    cards: list[VoidPreviewCardOut] = Field(description="Cards that would change, by card id")
    next_cursor: str | None = Field(description=NEXT_CURSOR_DESCRIPTION)


class HealthOut(_Strict):
    status: Literal["ok"]
    database: Literal["ok"]


class ErrorDetail(_Strict):
    code: ErrorCode
    message: str


class ErrorResponse(_Strict):
    error: ErrorDetail


# --- documented error responses -----------------------------------------------------------


def _error_response(description: str) -> OpenAPIResponse:
    return {"description": description, "content": {"application/json": {"model": ErrorResponse}}}


ERRORS_400 = _error_response("Missing or invalid parameter (the message names it)")
ERRORS_404 = _error_response("No card matches (no hint which identifier exists)")
FILE_ERRORS_404 = _error_response("No file with this id")
ERRORS_500 = _error_response("Unexpected error (no details)")
ERRORS_503: OpenAPIResponse = {
    **_error_response("Database unavailable; retry after the Retry-After header"),
    "headers": {
        "Retry-After": {
            "description": "Seconds to wait before retrying",
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        }
    },
}
ERRORS_429: OpenAPIResponse = {
    **_error_response(
        "The caller spent its budget of card-id + phone lookups that did not match "
        "(README 'Caller roles'); retry after the Retry-After header"
    ),
    "headers": {
        "Retry-After": {
            "description": "Seconds until the caller's budget window ends",
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        }
    },
}
CARD_ERRORS: dict[int, OpenAPIResponse] = {
    400: ERRORS_400,
    404: ERRORS_404,
    500: ERRORS_500,
    503: ERRORS_503,
}
# GET /get_card_status and POST /cards/search: a card-id + phone lookup counts against the
# caller's budget.
PAIR_LOOKUP_ERRORS: dict[int, OpenAPIResponse] = {**CARD_ERRORS, 429: ERRORS_429}
LIST_ERRORS: dict[int, OpenAPIResponse] = {400: ERRORS_400, 500: ERRORS_500, 503: ERRORS_503}
FILE_ERRORS: dict[int, OpenAPIResponse] = {**LIST_ERRORS, 404: FILE_ERRORS_404}


# --- documented parameters ----------------------------------------------------------------

_CARD_ID_EXAMPLES = {"card": {"summary": "A card id", "value": "ZYW8827"}}

CardIdQuery = Annotated[
    str | None,
    Query(
        description=CARD_ID_DESCRIPTION,
        max_length=cards.CARD_ID_MAX_LENGTH,
        pattern=CARD_ID_PATTERN,
        openapi_examples=_CARD_ID_EXAMPLES,
    ),
]
CardIdPath = Annotated[
    str,
    Path(
        description=CARD_ID_DESCRIPTION,
        max_length=cards.CARD_ID_MAX_LENGTH,
        pattern=CARD_ID_PATTERN,
        openapi_examples=_CARD_ID_EXAMPLES,
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

# Operations routes (README "Operations"); each is checked again by cardstatus.ops.
LimitQuery = Annotated[
    int | None,
    Query(
        description="Page size (default: 20 files, 100 rejects or cards)", ge=1, le=ops.MAX_LIMIT
    ),
]
CursorQuery = Annotated[
    str | None, Query(description="next_cursor of the previous page, unchanged", max_length=512)
]
PartnerQuery = Annotated[
    str | None,
    Query(
        description="Only this partner (the folder under incoming/)",
        max_length=ops.PARTNER_MAX_LENGTH,
        openapi_examples={"partner": {"summary": "A partner", "value": "acme"}},
    ),
]
# Enum parameters are case-insensitive (Applied, DELIVERY_exception ...); the answer keeps enums.
OutcomeQuery = Annotated[
    str | None,
    Query(
        description="Only files with this outcome: applied, duplicate_file, rejected_file or "
        "in_progress (any case)",
        pattern=r"(?i)^\s*(applied|duplicate_file|rejected_file|in_progress)\s*$",
    ),
]
HasRejectsQuery = Annotated[
    str | None,
    Query(
        description="true: only files with at least one rejected row (any outcome); false: none",
        pattern=r"(?i)^\s*(true|false|1|0|yes|no)\s*$",
    ),
]
ActionQuery = Annotated[
    str | None,
    Query(
        description="Only apply or only void rows (any case)", pattern=r"(?i)^\s*(apply|void)\s*$"
    ),
]
SinceQuery = Annotated[
    str | None,
    Query(
        description="Only files finished at or after this ISO 8601 date or time (UTC if no offset)",
        max_length=40,
        openapi_examples={"date": {"summary": "A day", "value": "2026-12-01"}},
    ),
]
FileIdPath = Annotated[
    int, Path(description="File id (file_id of GET /files)", ge=1, le=ops.FILE_ID_MAX)
]
StuckStatusQuery = Annotated[
    str | None,
    Query(
        description="Current status of the cards: PICKED_UP (default) or DELIVERY_EXCEPTION, "
        "any case",
        pattern=r"(?i)^\s*(picked_up|delivery_exception)\s*$",
    ),
]
OlderThanQuery = Annotated[
    float | None,
    Query(
        description=(
            f"In that status for more than this many hours (default {ops.STUCK_DEFAULT_HOURS})"
        ),
        ge=0,
        le=ops.STUCK_MAX_HOURS,
    ),
]
