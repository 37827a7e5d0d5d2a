"""What GET /partners and GET /partners/{partner} answer (README "Partner feed health"), as
Pydantic models (the OpenAPI schemas), and their documented parameters."""

# No `from __future__ import annotations`: Powertools and Pydantic read these at runtime.

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import Field

from cardstatus import partners
from functions.api.schemas import UtcTime, _Strict

FeedState = Literal["on_time", "late", "missing", "not_monitored"]


class FeedOut(_Strict):
    every_hours: float = Field(description="A new file at least every this many counted hours")
    grace_hours: float = Field(description="Counted hours after due_by before the feed is late")
    quiet_days: list[str] = Field(
        description="Weekdays (partner's timezone) with no file expected: their hours are not "
        "counted",
        examples=[["fri"]],
    )
    max_reject_rate: float | None = Field(description="Alert above this 7-day reject rate (0-1)")
    min_rows: int | None = Field(description="Fewer rows in a file: a volume warning")


class LastFileOut(_Strict):
    file_id: int
    key: str
    received_at: UtcTime
    outcome: Literal["applied", "rejected_file"]
    rows: int


class WindowOut(_Strict):
    files: int = Field(ge=0, description="Files received (duplicates excluded)")
    rows: int = Field(ge=0)
    accepted: int = Field(ge=0)
    rejected: int = Field(ge=0, description="Rejected rows (a rejected file's rows included)")
    reject_rate: float | None = Field(description="rejected / rows; null without rows")
    rejected_files: int = Field(ge=0, description="Files rejected as a whole")


class TodayOut(_Strict):
    files: int = Field(ge=0)
    rows: int = Field(ge=0)


class StuckCountsOut(_Strict):
    PICKED_UP: int = Field(ge=0)
    DELIVERY_EXCEPTION: int = Field(ge=0)
    total: int = Field(ge=0)
    older_than_hours: int = Field(description="In that status for more than this many hours")


class DayOut(_Strict):
    date: str = Field(description="Day in the partner's timezone", examples=["2026-12-06"])
    rows: int = Field(ge=0)
    files: int = Field(ge=0)


class VolumeWarningOut(_Strict):
    file_id: int | None
    rows: int
    median_rows: float | None = Field(description="Median rows of the previous files compared")
    files_compared: int
    min_rows: int | None
    message: str


class PartnerHealthOut(_Strict):
    partner: str = Field(examples=["speedy"])
    state: FeedState = Field(
        description="missing: monitored, never sent a file; late: after late_after; "
        "not_monitored: no feed configured"
    )
    alerting: bool = Field(description="Monitored and late or over its reject rate")
    as_of: UtcTime
    monitored: bool
    configured: bool = Field(description="In PARTNER_CONFIG (else only seen in files)")
    timezone: str
    feed: FeedOut | None
    last_file_at: UtcTime | None
    last_file: LastFileOut | None
    minutes_since_last_file: int | None
    due_by: UtcTime | None = Field(description="last_file_at + every_hours (counted hours)")
    late_after: UtcTime | None = Field(description="due_by + grace_hours (counted hours)")
    minutes_late: int | None
    state_since: UtcTime | None = Field(
        description="Since when the sweeper has recorded this state (monitored partners)"
    )
    last_7_days: WindowOut
    reject_rate_exceeded: bool
    today: TodayOut
    stuck_cards: StuckCountsOut
    rows_per_day: list[DayOut] = Field(description="14 days ending today, oldest first")
    volume_warning: VolumeWarningOut | None = Field(
        description="The newest applied file is under 20% of the median of the previous 10 "
        "(or under min_rows)"
    )


class PartnerListOut(_Strict):
    as_of: UtcTime | None
    partners: list[PartnerHealthOut] = Field(description="Every known partner, by name")
    alerting: list[str] = Field(description="Partners alerting (late or over reject rate)")


AtQuery = Annotated[
    str | None,
    Query(
        description="Health as of this ISO 8601 time (UTC if no offset); default now",
        max_length=40,
        openapi_examples={"time": {"summary": "A moment", "value": "2026-12-06T09:00:00Z"}},
    ),
]
PartnerPath = Annotated[
    str,
    Path(
        description="Partner name, any case (known partners: GET /partners)",
        min_length=1,
        max_length=partners.PARTNER_MAX_LENGTH,
        openapi_examples={"partner": {"summary": "A partner", "value": "speedy"}},
    ),
]
