"""Pure part of ingestion: data records → COPY text lines of normalised events, and the
per-file tally of rows, rejects and warnings. No database, no I/O besides the spooled rejects."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cardstatus.config import PartnerSettings
from cardstatus.decode import BrokenRecord
from cardstatus.model import CardStatus, FileRejected, RowError, redact_phones
from cardstatus.normalise import (
    HeaderMap,
    TimestampParser,
    classify_reason,
    clean_comment,
    normalise_phone,
    vocabulary,
)
from cardstatus.normalise.card_id_rule import CardIdRule

REPORT_DETAIL_LIMIT = 500  # rejects/warnings listed in the report; all rejects go to rejected_row
COPY_BATCH_ROWS = 2000  # rows per COPY text block
PROGRESS_EVERY_ROWS = 50_000
MEMO_MAX = 4096  # distinct status / comment cells remembered per file


@dataclass
class RowOutcomes:
    """Counts and details gathered while rows stream into COPY."""

    rows: int = 0
    valid: int = 0
    rejected: int = 0
    warnings: int = 0
    reject_details: list[dict[str, Any]] = field(default_factory=list)
    warning_details: list[dict[str, Any]] = field(default_factory=list)
    rejects_file: Any = None  # spooled TSV of every reject, COPYed into rejected_row

    def reject(self, line: int, reason: str) -> None:
        reason = redact_phones(reason)
        self.rejected += 1
        if len(self.reject_details) < REPORT_DETAIL_LIMIT:
            self.reject_details.append({"line": line, "reason": reason})
        if self.rejects_file is None:
            # Closed by ingest() in its finally block (close()).
            self.rejects_file = tempfile.SpooledTemporaryFile(max_size=1 << 20, mode="w+b")  # noqa: SIM115
        self.rejects_file.write(f"{line}\t{copy_escape(reason)}\n".encode())

    def reject_broken(self, line: int, reason: str) -> None:
        """A row whose quoted field ran into the following rows (decode.BrokenRecord)."""
        self.rows += 1
        self.reject(line, reason)

    def warn(self, line: int, warning: str, count: int = 1) -> None:
        """One warning (or `count` of the same kind, listed once)."""
        self.warnings += count
        if len(self.warning_details) < REPORT_DETAIL_LIMIT:
            self.warning_details.append({"line": line, "warning": redact_phones(warning)})

    def close(self) -> None:
        if self.rejects_file is not None:
            self.rejects_file.close()
            self.rejects_file = None


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_escape(value: str) -> str:
    """A value in PostgreSQL COPY text format."""
    return value.translate(_COPY_ESCAPES)


def copy_text(value: str | None) -> str:
    return "\\N" if value is None else copy_escape(value)


def count_data_rows(records: Iterator[tuple[int, list[str]]]) -> int | None:
    """Non-blank records left in a file rejected at its header; None when they cannot be read."""
    try:
        return sum(1 for _line, rec in records if rec and any(cell.strip() for cell in rec))
    except Exception:  # undecodable, over a limit: the rows cannot be counted
        return None


# Complexity gate exemption: the per-row hot loop stays one function (see its docstring).
def normalised_rows(  # noqa: C901, PLR0912
    records: Iterator[tuple[int, list[str]]],
    headers: HeaderMap,
    file_status: CardStatus | None,
    partner: PartnerSettings,
    reason_keywords: dict[str, str],
    outcomes: RowOutcomes,
    progress: Callable[[int], None] | None = None,
    max_rows: int | None = None,
    card_id_pattern: str | None = None,
) -> Iterator[bytes]:
    """Normalise each data record into a COPY text line (source_line, card_id, status,
    occurred_at, phone, comment, reason, row id), yielded in batches; record rejects; more than
    `max_rows` data rows raise FileRejected. One loop on purpose, the hot path (a million rows):
    helpers bound to locals, a file's few distinct status and comment cells normalised once
    (bounded memos); per-field functions would cost a call per cell."""
    parse_time = TimestampParser(partner.timezone, partner.day_first).parse
    status_of = vocabulary(partner.status_words).from_value
    region = partner.phone_region
    normalise_card_id = CardIdRule(region, card_id_pattern)  # shape, not a phone, the pattern
    card_col, ts_col = headers.card_id, headers.timestamp
    phone_col, comment_col = headers.phone, headers.comment
    row_id_col, status_col = headers.row_id, headers.status
    needed = max(card_col, ts_col)
    exception = CardStatus.DELIVERY_EXCEPTION
    statuses: dict[str, CardStatus | str | None] = {}  # status cell → event type or reason
    comments: dict[tuple[str, bool], tuple[str, str]] = {}  # (cell, is exception) → COPY text
    escape = _COPY_ESCAPES
    limit = max_rows if max_rows is not None else -1
    batch: list[str] = []
    append = batch.append
    for line, record in records:
        if not record:
            if record.__class__ is BrokenRecord:  # a quote that ran into the next rows
                outcomes.reject_broken(line, record.reason)
            continue  # blank line
        # Blank (or only delimiters and spaces)? A non-blank card id cell answers it cheaply.
        first = record[card_col] if len(record) > needed else ""
        if (not first or first.isspace()) and not any(cell.strip() for cell in record):
            continue
        outcomes.rows += 1
        if outcomes.rows == limit + 1:
            raise _too_many_rows(limit)
        if progress is not None and outcomes.rows % PROGRESS_EVERY_ROWS == 0:
            progress(outcomes.rows)
        try:
            if len(record) <= needed:
                raise _short_row(record)
            card_id = normalise_card_id(record[card_col])
            occurred_at = parse_time(record[ts_col])
            status = file_status
            if status_col is not None and status_col < len(record):
                cell = record[status_col]
                named = (
                    statuses[cell] if cell in statuses else _status_memo(statuses, cell, status_of)
                )
                if named.__class__ is str:
                    raise RowError(named)
                status = named or file_status  # type: ignore[assignment]
            if status is None:
                raise RowError("status is missing or not one of pickup/exception/delivered/return")
            phone = "\\N"
            if phone_col is not None and phone_col < len(record):
                result = normalise_phone(record[phone_col], region)
                if result.e164 is not None:
                    phone = result.e164  # '+' and digits: nothing to escape
                if result.warning:
                    outcomes.warn(line, result.warning)
            comment_reason = _NO_COMMENT_OTHER if status is exception else _NO_COMMENT
            if comment_col is not None and comment_col < len(record):
                key = (record[comment_col], status is exception)
                comment_reason = comments.get(key) or _comment_memo(comments, key, reason_keywords)
            row_id = "\\N"
            if row_id_col is not None and row_id_col < len(record):
                row_id = record[row_id_col].strip()[:64].translate(escape) or "\\N"
        except RowError as exc:
            outcomes.reject(line, str(exc))
            continue
        outcomes.valid += 1
        # card ids are [A-Za-z0-9_-] and statuses/reasons fixed words: nothing to escape.
        # (_value_ is the enum's plain attribute; .value goes through a slower descriptor.)
        append(
            f"{line}\t{card_id}\t{status._value_}\t{occurred_at.isoformat()}\t{phone}\t"
            f"{comment_reason[0]}\t{comment_reason[1]}\t{row_id}\n"
        )
        if len(batch) >= COPY_BATCH_ROWS:
            yield "".join(batch).encode()
            batch.clear()
    if batch:
        yield "".join(batch).encode()


def _too_many_rows(limit: int) -> FileRejected:
    return FileRejected(
        f"file has more than {limit:,} data rows, the limit for one file; "
        f"split it into files of at most {limit:,} rows"
    )


def _short_row(record: list[str]) -> RowError:
    return RowError(f"row has {len(record)} field(s); card id and timestamp columns are missing")


def _comment_memo(
    comments: dict[tuple[str, bool], tuple[str, str]],
    key: tuple[str, bool],
    reason_keywords: dict[str, str],
) -> tuple[str, str]:
    """COPY text of a comment cell's (comment, reason), remembered (bounded)."""
    memo = comment_reason_text(key[0], key[1], reason_keywords)
    if len(comments) < MEMO_MAX:
        comments[key] = memo
    return memo


def _status_memo(
    statuses: dict[str, CardStatus | str | None],
    cell: str,
    status_of: Callable[[str | None], CardStatus | None],
) -> CardStatus | str | None:
    """The event type a status cell names, or the reason it is rejected; remembered (bounded)."""
    try:
        named: CardStatus | str | None = status_of(cell)
    except RowError as exc:  # not tracked, or ambiguous
        named = str(exc)
    if len(statuses) < MEMO_MAX:
        statuses[cell] = named
    return named


_NO_COMMENT = ("\\N", "\\N")
_NO_COMMENT_OTHER = ("\\N", "other")


def comment_reason_text(
    cell: str, is_exception: bool, reason_keywords: dict[str, str]
) -> tuple[str, str]:
    """COPY text of (comment, reason) for a comment cell: reasons only for exceptions."""
    comment = clean_comment(cell)
    reason = classify_reason(comment, reason_keywords) if is_exception else None
    return copy_text(comment), copy_text(reason)
