"""What the operations routes answer (README "Operations": files, rejects, stuck cards, the
files <-> cards links, GET /health), as Pydantic models (the OpenAPI schemas), and their
documented query and path parameters. The card routes' models, the shared types and the
documented error responses: schemas.py.

Imported by the operations routers only, so a container that serves lookups never compiles
these (cold start, lazy_routes.py).
"""

# No `from __future__ import annotations`: Powertools and Pydantic read these at runtime.

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import BaseModel, ConfigDict, Field

from cardstatus import ops
from functions.api.schemas import OptionalReason, Status, UtcTime, _Strict

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
