"""What the card routes answer, as Pydantic models (the OpenAPI schemas), the documented
error responses of every route, and the documented query and path parameters of the card
routes. The operations routes' models and parameters: ops_schemas.py (imported only when an
operations route is first needed: cold start, lazy_routes.py).

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

from cardstatus import cards
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
