"""Pure part of ingestion: data records → COPY text lines of normalised events, and the
per-file tally of rows, rejects and warnings. No database, no I/O besides the spooled rejects."""

from __future__ import annotations

import csv
import io
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from cardstatus.config import DEFAULT_PHONE_REGION, PartnerSettings
from cardstatus.decode import BrokenRecord
from cardstatus.errors import DateOrderEvidence
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
from cardstatus.phonehash import copy_columns


class DateOrderFlip(Exception):
    """A row's date is valid only in the other date order: the file is read again in that
    order (README "Partner files and reports": date order from evidence)."""

    def __init__(self, line: int, raw: str) -> None:
        super().__init__(f"line {line}: {raw!r}")
        self.line = line
        self.raw = raw


GAP_DAYS = 31  # an event further than this from the file's other events is a warning


def far_days(days: dict[str, int], gap_days: int = GAP_DAYS) -> tuple[str, str] | None:
    """The file's main date range (first day, last day) when some of its event days lie
    outside it, else None. The days are split where two consecutive days are more than
    ``gap_days`` apart; the main range is the group with the most events (the later one on a
    tie)."""
    if len(days) < 2:
        return None
    ordered = sorted(days)
    groups: list[list[str]] = [[ordered[0]]]
    previous = date.fromisoformat(ordered[0])
    for day in ordered[1:]:
        current = date.fromisoformat(day)
        if (current - previous).days > gap_days:
            groups.append([])
        groups[-1].append(day)
        previous = current
    if len(groups) == 1:
        return None
    main = max(reversed(groups), key=lambda g: sum(days[d] for d in g))
    return main[0], main[-1]


def order_name(day_first: bool) -> str:
    return "day-first" if day_first else "month-first"


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
    days: dict[str, int] = field(default_factory=dict)  # accepted rows per UTC day (YYYY-MM-DD)

    warning_groups: dict[str, dict[str, Any]] = field(default_factory=dict)

    def reject(
        self,
        line: int,
        reason: str,
        card_id: str | None = None,
        raw_row: str | None = None,
        keep: tuple[str, ...] = (),
    ) -> None:
        """One rejected row: its reason (phones masked, except the `keep` texts: the row's
        timestamp cells are never a phone), its card id when readable, its raw row (phone
        cells masked: reject_row)."""
        reason = redact_phones(reason, keep)
        self.rejected += 1
        if len(self.reject_details) < REPORT_DETAIL_LIMIT:
            self.reject_details.append({"line": line, "reason": reason, "card_id": card_id})
        if self.rejects_file is None:
            # Closed by ingest() in its finally block (close()).
            self.rejects_file = tempfile.SpooledTemporaryFile(max_size=1 << 20, mode="w+b")  # noqa: SIM115
        self.rejects_file.write(
            f"{line}\t{copy_escape(reason)}\t{copy_text(card_id)}\t{copy_text(raw_row)}\n".encode()
        )

    def reject_row(
        self,
        line: int,
        reason: str,
        record: list[str],
        headers: HeaderMap,
        card_id_of: Callable[[str], str],
    ) -> None:
        """A data row rejected by a RowError: with its card id and masked raw row."""
        keep = tuple(
            cell
            for col in (headers.timestamp, getattr(headers, "time", None))
            if col is not None and col < len(record)
            for cell in (record[col].strip(),)
            if cell and normalise_phone(cell, DEFAULT_PHONE_REGION).e164 is None
        )
        card_id = readable_card_id(record, headers, card_id_of)
        self.reject(line, reason, card_id, raw_row(record, headers), keep)

    def reject_broken(self, line: int, reason: str) -> None:
        """A row whose quoted field ran into the following rows (decode.BrokenRecord)."""
        self.rows += 1
        self.reject(line, reason)

    def warn(self, line: int, warning: str, count: int = 1) -> None:
        """One warning (or `count` of the same kind, listed once), also tallied by kind."""
        self.warnings += count
        masked = None
        if len(self.warning_details) < REPORT_DETAIL_LIMIT:
            masked = redact_phones(warning)
            self.warning_details.append({"line": line, "warning": masked})
        kind = warning_kind(warning)
        group = self.warning_groups.get(kind)
        if group is None:
            if len(self.warning_groups) >= WARNING_KINDS_MAX:
                kind = OTHER_KIND
                group = self.warning_groups.get(kind)
            if group is None:
                group = self.warning_groups[kind] = {
                    "kind": kind,
                    "count": 0,
                    "example": masked if masked is not None else redact_phones(warning),
                    "lines": [],
                }
        group["count"] += count
        if len(group["lines"]) < WARNING_GROUP_LINES:
            group["lines"].append(line)

    def grouped_warnings(self) -> list[dict[str, Any]]:
        """Warnings by kind, the most frequent first: count, one example, the first lines."""
        return sorted(self.warning_groups.values(), key=lambda g: (-g["count"], g["kind"]))

    def close(self) -> None:
        if self.rejects_file is not None:
            self.rejects_file.close()
            self.rejects_file = None


WARNING_KINDS_MAX = 50  # distinct warning kinds tallied per file; the rest count as "other"
WARNING_GROUP_LINES = 10  # first lines listed per kind
OTHER_KIND = "other warnings"
RAW_ROW_MAX_CHARS = 4000
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_NUMBER = re.compile(r"\d[\d,.:*+-]*")


def warning_kind(warning: str) -> str:
    """A warning's kind: its text with quoted values and numbers taken out, so that
    "phone '0501' is not valid for AE" on 44,992 lines is one kind."""
    text = _NUMBER.sub("N", _QUOTED.sub("…", warning))
    return " ".join(text.split())[:160]


def readable_card_id(
    record: list[str], headers: HeaderMap, card_id_of: Callable[[str], str]
) -> str | None:
    """The row's card id as ingestion would store it (`card_id_of`: the file's card-id rule),
    when it is one (never a phone)."""
    if headers.card_id >= len(record):
        return None
    try:
        return card_id_of(record[headers.card_id])
    except RowError:
        return None


def _mask_digits(cell: str) -> str:
    """Every digit but the last 4 as '*': a phone cell in a raw row."""
    total = sum(c.isdigit() for c in cell)
    seen = 0
    out = []
    for c in cell:
        if c.isdigit():
            seen += 1
            out.append(c if seen > total - 4 else "*")
        else:
            out.append(c)
    return "".join(out)


def raw_row(record: list[str], headers: HeaderMap) -> str:
    """The row as CSV text, the phone cells masked (last 4 digits kept) and phone numbers in
    the comment masked; every other cell as the partner sent it (a timestamp stays readable)."""
    cells = list(record)
    if headers.phone is not None and headers.phone < len(cells):
        cells[headers.phone] = _mask_digits(cells[headers.phone])
    if headers.comment is not None and headers.comment < len(cells):
        cells[headers.comment] = redact_phones(cells[headers.comment])
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(cells)
    return buffer.getvalue()[:RAW_ROW_MAX_CHARS]


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_escape(value: str) -> str:
    """A value in PostgreSQL COPY text format."""
    return value.translate(_COPY_ESCAPES)


def copy_text(value: str | None) -> str:
    return "\\N" if value is None else copy_escape(value)


def count_data_rows(records: Iterator[tuple[int, list[str]]]) -> int | None:
    """Data records left in a file rejected at its header (non-blank, or rejected by the
    reader: a field over the limit); None when they cannot be read."""
    try:
        return sum(
            1
            for _line, rec in records
            if (rec and any(cell.strip() for cell in rec)) or rec.__class__ is BrokenRecord
        )
    except Exception:  # undecodable, over a limit: the rows cannot be counted
        return None


# Complexity gate exemption: the per-row hot loop stays one function (see its docstring).
def normalised_rows(  # noqa: C901, PLR0912, PLR0915
    records: Iterator[tuple[int, list[str]]],
    headers: HeaderMap,
    file_status: CardStatus | None,
    partner: PartnerSettings,
    reason_keywords: dict[str, str],
    outcomes: RowOutcomes,
    progress: Callable[[int], None] | None = None,
    max_rows: int | None = None,
    card_id_pattern: str | None = None,
    decided: DateOrderFlip | None = None,
) -> Iterator[bytes]:
    """Normalise each data record into a COPY text line (source_line, card_id, status,
    occurred_at, phone hash, key version, last 4 digits, comment, reason, row id; never the
    phone itself: cardstatus.phonehash), yielded in batches; record rejects; more than
    `max_rows` data rows raise FileRejected. One loop on purpose, the hot path (a million rows):
    helpers bound to locals, a file's few distinct status and comment cells normalised once
    (bounded memos); per-field functions would cost a call per cell.

    A date valid only in the other order raises DateOrderFlip (read the file again in that
    order); when the order was already flipped (``decided``: the line that decided it), such a
    row means the rows disagree: FileRejected naming both lines."""
    zone = headers.timestamp_zone or partner.timezone  # a header naming its zone wins
    parse_time = TimestampParser(zone, partner.day_first).parse
    status_of = vocabulary(partner.status_words).from_value
    region = partner.phone_region
    normalise_card_id = CardIdRule(region, card_id_pattern)  # shape, not a phone, the pattern
    card_col, ts_col = headers.card_id, headers.timestamp
    phone_col, comment_col = headers.phone, headers.comment
    row_id_col, status_col = headers.row_id, headers.status
    time_col = headers.time  # separate date and time columns: joined
    needed = max(card_col, ts_col, -1 if time_col is None else time_col)
    exception = CardStatus.DELIVERY_EXCEPTION
    statuses: dict[str, CardStatus | str | None] = {}  # status cell → event type or reason
    comments: dict[tuple[str, bool], tuple[str, str]] = {}  # (cell, is exception) → COPY text
    escape = _COPY_ESCAPES
    phone_columns = copy_columns()  # E.164 -> 'hash\tversion\tlast4' (keyed HMAC, memoised)
    limit = max_rows if max_rows is not None else -1
    days = outcomes.days
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
            occurred_at = parse_time(
                record[ts_col] if time_col is None else f"{record[ts_col]} {record[time_col]}"
            )
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
            phone = _NO_PHONE
            if phone_col is not None and phone_col < len(record):
                result = normalise_phone(record[phone_col], region)
                if result.e164 is not None:
                    phone = phone_columns(result.e164)  # hex, digits: nothing to escape
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
            if exc.__class__ is DateOrderEvidence:
                _date_order_evidence(line, exc, decided, partner.day_first)
            outcomes.reject_row(line, str(exc), record, headers, normalise_card_id)
            continue
        outcomes.valid += 1
        iso = occurred_at.isoformat()
        day = iso[:10]  # UTC: the file's event days, for the far-from-the-file check
        days[day] = days.get(day, 0) + 1
        # card ids are [A-Za-z0-9_-] and statuses/reasons fixed words: nothing to escape.
        # (_value_ is the enum's plain attribute; .value goes through a slower descriptor.)
        append(
            f"{line}\t{card_id}\t{status._value_}\t{iso}\t{phone}\t"
            f"{comment_reason[0]}\t{comment_reason[1]}\t{row_id}\n"
        )
        if len(batch) >= COPY_BATCH_ROWS:
            yield "".join(batch).encode()
            batch.clear()
    if batch:
        yield "".join(batch).encode()


def _date_order_evidence(
    line: int, exc: Exception, decided: DateOrderFlip | None, day_first: bool
) -> None:
    raw = exc.raw  # type: ignore[attr-defined]
    if decided is None:
        raise DateOrderFlip(line, raw) from None
    raise FileRejected(
        f"the dates disagree: line {decided.line} ({decided.raw!r}) is valid only "
        f"{order_name(day_first)} and line {line} ({raw!r}) only {order_name(not day_first)}; "
        "write every date of the file in one order and upload it again"
    ) from None


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


_NO_PHONE = "\\N\t\\N\t\\N"
_NO_COMMENT = ("\\N", "\\N")
_NO_COMMENT_OTHER = ("\\N", "other")


def comment_reason_text(
    cell: str, is_exception: bool, reason_keywords: dict[str, str]
) -> tuple[str, str]:
    """COPY text of (comment, reason) for a comment cell: reasons only for exceptions."""
    comment = clean_comment(cell)
    reason = classify_reason(comment, reason_keywords) if is_exception else None
    if comment:  # stored masked, as answers show it (README "Privacy")
        comment = redact_phones(comment)
    return copy_text(comment), copy_text(reason)
