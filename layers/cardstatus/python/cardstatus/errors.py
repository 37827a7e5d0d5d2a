"""Every cardstatus exception, under one root, and the one JSON error body.

- `RequestError`: the caller's request cannot be answered as asked. Each subclass carries
  its error `code` and `http_status`; the API renders all of them with one exception
  handler and the CLI prints the same body (`error_body`).
- `DatabaseUnavailable`: the database cannot be reached right now; callers answer 503 or
  leave the message for a retry (see `cardstatus.db.TRANSIENT_DB_ERRORS`).
- `IngestError` (`RowError`, `FileRejected`): a bad row or a bad file. These never escape
  ingestion: a bad file is a report (outcome `rejected_file`), not an exception.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import ClassVar


class CardStatusError(Exception):
    """Root of every cardstatus error."""


# --- request errors: code and HTTP status on the class ------------------------------------


class RequestError(CardStatusError):
    """A request that cannot be answered as asked (4xx). `message` is safe to show the caller;
    `parameter` names the offending parameter, when there is one."""

    code: ClassVar[str] = "invalid_request"
    http_status: ClassVar[HTTPStatus] = HTTPStatus.BAD_REQUEST
    default_message: ClassVar[str] = "invalid request"

    def __init__(self, message: str | None = None, *, parameter: str | None = None) -> None:
        self.message = message or self.default_message
        self.parameter = parameter
        super().__init__(self.message)


class InvalidParameter(RequestError):
    """A request parameter is malformed; `parameter` says which one."""

    code = "invalid_parameter"
    http_status = HTTPStatus.BAD_REQUEST
    default_message = "invalid parameter"


class MissingParameter(InvalidParameter):
    """A required request parameter is absent."""

    code = "missing_parameter"
    default_message = "missing parameter"


class NotFound(RequestError):
    """Nothing matches the request."""

    code = "not_found"
    http_status = HTTPStatus.NOT_FOUND
    default_message = "not found"


class CardNotFound(NotFound):
    """No card matches. Deliberately says nothing about which identifier exists."""

    default_message = "no card matches the given parameters"


class FileNotFound(NotFound):
    """No ingested file matches."""

    default_message = "no file matches the given parameters"


class Conflict(RequestError):
    """The request contradicts the current state (e.g. an action already done differently)."""

    code = "conflict"
    http_status = HTTPStatus.CONFLICT
    default_message = "conflict with the current state"


class TooManyMismatches(RequestError):
    """The caller spent its budget of card-id + phone lookups that do not match
    (cardstatus/lookup_budget.py): 429 with Retry-After (`retry_after_s`)."""

    code = "too_many_requests"
    http_status = HTTPStatus.TOO_MANY_REQUESTS
    default_message = (
        "too many card-id + phone lookups that did not match; retry after the time in Retry-After"
    )

    def __init__(self, retry_after_s: int) -> None:
        super().__init__()
        self.retry_after_s = max(1, int(retry_after_s))


# --- infrastructure -----------------------------------------------------------------------


class DatabaseUnavailable(CardStatusError):
    """The database cannot be reached right now (callers answer 503 / retry the message)."""


# --- ingestion: reported, never raised out of the pipeline --------------------------------


class IngestError(CardStatusError, ValueError):
    """Something in a partner file cannot be ingested; the message is the reason reported."""


class RowError(IngestError):
    """A data row cannot be accepted; the message is the reason shown in the report."""


class DateOrderEvidence(RowError):
    """A row's date is valid only in the other date order ('11/30/2026' read day-first): the
    file is evidence of that order (README "Partner files and reports": date order)."""

    def __init__(self, message: str, raw: str) -> None:
        super().__init__(message)
        self.raw = raw


class FileRejected(IngestError):
    """The whole file cannot be ingested; the message is the reason shown in the report.

    `rows_read`: data rows the reader had already consumed when it gave up (e.g. the rows
    after the would-be header while looking for one), so the report still counts them."""

    def __init__(self, message: str, rows_read: int = 0) -> None:
        super().__init__(message)
        self.rows_read = rows_read


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    """The one error body of the API and the CLI: {"error": {"code": ..., "message": ...}}."""
    return {"error": {"code": code, "message": message}}
