"""Operations read side: what became of the files, and which cards are stuck with the courier.

Plain functions over a psycopg2 connection, called by the API (functions/api/ops_routes.py)
and the CLI (`cardstatus files`, `file`, `stuck`), so both validate and answer the same way.
Parameters arrive as the API gets them (strings) or as the CLI parses them; each is checked
here and a bad one raises `InvalidParameter` naming it.

Lists are paged by keyset: `next_cursor` is an opaque token (base64url of the last row's sort
key) to pass back unchanged; it is null on the last page. Reports and reject reasons are
phone-masked when ingestion writes them; nothing here reads a phone.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg2.extensions import connection as Connection

from cardstatus.cards import iso_utc, redact_comment, run_query
from cardstatus.errors import FileNotFound, InvalidParameter
from cardstatus.model import CardStatus
from cardstatus.sql import ops as sql

# Page sizes: at most MAX_LIMIT per page, whatever the list.
MAX_LIMIT = 100
FILES_DEFAULT_LIMIT = 20
REJECTS_DEFAULT_LIMIT = 100
STUCK_DEFAULT_LIMIT = 100
STUCK_DEFAULT_HOURS = 72
STUCK_MAX_HOURS = 24 * 366 * 10
PARTNER_MAX_LENGTH = 128
FILE_ID_MAX = 2**63 - 1

OUTCOMES = ("applied", "duplicate_file", "rejected_file", "in_progress")
STUCK_TOTAL_CAP = 10_000  # the first page of stuck cards counts them up to this
STUCK_STATUSES = (CardStatus.PICKED_UP.value, CardStatus.DELIVERY_EXCEPTION.value)

# What a bad parameter gets told (the API's validation layer says the same: errors.py).
MESSAGES = {
    "file_id": f"file_id must be a whole number from 1 to {FILE_ID_MAX}",
    "partner": f"partner must be 1-{PARTNER_MAX_LENGTH} printable characters",
    "outcome": f"outcome must be one of {', '.join(OUTCOMES)}",
    "since": "since must be an ISO 8601 date or time, e.g. 2026-12-01 or 2026-12-01T08:00:00Z",
    "status": f"status must be {' or '.join(STUCK_STATUSES)}",
    "older_than_hours": f"older_than_hours must be a number from 0 to {STUCK_MAX_HOURS}",
    "cursor": "cursor is invalid: pass next_cursor from the previous page unchanged",
    "limit": f"limit must be a whole number from 1 to {MAX_LIMIT}",
    "has_rejects": "has_rejects must be true or false",
}


# --- parameters ---------------------------------------------------------------------------


def _invalid(name: str) -> InvalidParameter:
    return InvalidParameter(MESSAGES[name], parameter=name)


def _blank(raw: object) -> bool:
    return raw is None or (isinstance(raw, str) and raw.strip() == "")


def parse_limit(raw: str | int | None, default: int) -> int:
    if _blank(raw):
        return default
    try:
        value = raw if isinstance(raw, int) else int(str(raw).strip())
    except ValueError:
        raise _invalid("limit") from None
    if not 1 <= value <= MAX_LIMIT:
        raise _invalid("limit")
    return value


def parse_file_id(raw: str | int | None) -> int:
    try:
        value = raw if isinstance(raw, int) else int(str(raw).strip())
    except ValueError:
        raise _invalid("file_id") from None
    if not 1 <= value <= FILE_ID_MAX:
        raise _invalid("file_id")
    return value


def parse_partner(raw: str | None) -> str | None:
    if _blank(raw):
        return None
    assert raw is not None
    value = raw.strip()
    if len(value) > PARTNER_MAX_LENGTH or not value.isprintable():
        raise _invalid("partner")
    return value


def parse_outcome(raw: str | None) -> str | None:
    if _blank(raw):
        return None
    assert raw is not None
    value = raw.strip().lower()
    if value not in OUTCOMES:
        raise _invalid("outcome")
    return value


def parse_since(raw: str | datetime | None) -> datetime | None:
    """An ISO 8601 date or time; without an offset it is UTC."""
    if _blank(raw):
        return None
    if isinstance(raw, datetime):
        value = raw
    else:
        assert raw is not None
        text = raw.strip()
        if len(text) > 40:
            raise _invalid("since")
        try:
            value = datetime.fromisoformat(text.replace("z", "Z"))
        except ValueError:
            raise _invalid("since") from None
    value = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if not offset_in_range(value):
        raise _invalid("since")
    return value


# PostgreSQL's time zone displacement range (an offset beyond it is an error there, a 500).
MAX_UTC_OFFSET = timedelta(hours=15, minutes=59)
# Integers in cursors are bound as these SQL types (cardstatus/sql/ops.py): bigint, integer.
BIGINT_RANGE = (-(2**63), 2**63 - 1)
CURSOR_INT_RANGES = {"rejects": (-(2**31), 2**31 - 1)}


def offset_in_range(value: datetime) -> bool:
    """An aware time whose UTC offset PostgreSQL accepts (whole minutes within ±15:59)."""
    offset = value.utcoffset()
    return offset is not None and (
        abs(offset) <= MAX_UTC_OFFSET and offset % timedelta(minutes=1) == timedelta(0)
    )


def parse_bool(raw: str | bool | None, name: str) -> bool | None:
    """true/false (also 1/0, yes/no; any case); None when absent."""
    if raw is None or isinstance(raw, bool):
        return raw
    text = raw.strip().lower()
    if text == "":
        return None
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise _invalid(name)


def parse_stuck_status(raw: str | None) -> str:
    if _blank(raw):
        return CardStatus.PICKED_UP.value
    assert raw is not None
    value = raw.strip().upper()
    if value not in STUCK_STATUSES:
        raise _invalid("status")
    return value


def parse_hours(raw: str | float | None) -> float:
    if raw is None or _blank(raw):
        return float(STUCK_DEFAULT_HOURS)
    try:
        value = float(raw.strip() if isinstance(raw, str) else raw)
    except ValueError:
        raise _invalid("older_than_hours") from None
    if not math.isfinite(value) or not 0 <= value <= STUCK_MAX_HOURS:
        raise _invalid("older_than_hours")
    return value


# --- cursors: opaque to callers, checked on the way back ------------------------------------


def encode_cursor(kind: str, *key: Any) -> str:
    raw = json.dumps([kind, *key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(raw: str | None, kind: str, types: tuple[type, ...]) -> list[Any] | None:
    """The key a cursor of this kind holds (None when no cursor is given), else InvalidParameter.
    A `datetime` in `types` travels as an ISO 8601 string."""
    if _blank(raw):
        return None
    assert raw is not None
    text = raw.strip()
    try:
        if len(text) > 512:
            raise ValueError
        decoded = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if not isinstance(decoded, list) or len(decoded) != len(types) + 1 or decoded[0] != kind:
            raise ValueError
        low, high = CURSOR_INT_RANGES.get(kind, BIGINT_RANGE)
        key: list[Any] = []
        for value, wanted in zip(decoded[1:], types, strict=True):
            if wanted is datetime:
                when = datetime.fromisoformat(value)
                if not offset_in_range(when):  # naive, odd or out-of-range offsets
                    raise ValueError
                key.append(when)
            elif not isinstance(value, wanted) or isinstance(value, bool):
                raise ValueError
            elif isinstance(value, int) and not low <= value <= high:
                raise ValueError  # beyond the SQL type it is bound as
            elif isinstance(value, str) and (not value or not value.isprintable()):
                raise ValueError  # NUL cannot be bound; control characters are never ids
            else:
                key.append(value)
    except (ValueError, TypeError, binascii.Error):
        raise _invalid("cursor") from None
    return key


def _cursor_time(value: datetime) -> str:
    # Full precision (microseconds), so the next page starts exactly after this row.
    return value.astimezone(UTC).isoformat()


# --- use cases ----------------------------------------------------------------------------


def list_files(
    conn: Connection,
    partner: str | None = None,
    outcome: str | None = None,
    since: str | datetime | None = None,
    limit: str | int | None = None,
    cursor: str | None = None,
    has_rejects: str | bool | None = None,
) -> dict[str, Any]:
    """{"files": [...], "next_cursor"}: ingested files, newest first (GET /files). A file
    being ingested is listed with outcome `in_progress` and the rows read so far;
    has_rejects=true keeps the files with at least one rejected row (whatever the outcome)."""
    params = {
        "partner": parse_partner(partner),
        "outcome": parse_outcome(outcome),
        "since": parse_since(since),
        "has_rejects": parse_bool(has_rejects, "has_rejects"),
    }
    size = parse_limit(limit, FILES_DEFAULT_LIMIT)
    after = decode_cursor(cursor, "files", (datetime, int))
    params["after_at"], params["after_id"] = after if after else (None, None)
    rows = run_query(conn, sql.FILES, {**params, "limit": size + 1})
    files = [_file_row(row) for row in rows[:size]]
    next_cursor = None
    if len(rows) > size:
        last = rows[size - 1]
        next_cursor = encode_cursor("files", _cursor_time(last[11]), last[0])
    return {"files": files, "next_cursor": next_cursor}


def _file_row(row: tuple[Any, ...]) -> dict[str, Any]:
    (
        file_id,
        key,
        partner,
        outcome,
        rows_total,
        accepted,
        duplicate,
        rejected,
        warnings,
        reason,
        started_at,
        finished_at,
        voided,
        status_changes,
    ) = row
    return {
        "file_id": file_id,
        "key": key,
        "partner": partner,
        "outcome": outcome,
        "counts": {
            "rows": rows_total,
            "accepted": accepted,
            "duplicate": duplicate,
            "rejected": rejected,
            "warnings": warnings,
        },
        "reason": reason,
        "received_at": iso_utc(started_at),
        "finished_at": iso_utc(finished_at),
        "voided": voided,
        "cards_changed": status_changes,
    }


def file_report(conn: Connection, file_id: str | int | None) -> dict[str, Any]:
    """The stored report of one file, with its id and void fields (GET /files/{file_id})."""
    rows = run_query(conn, sql.FILE, {"file_id": parse_file_id(file_id)})
    if not rows:
        raise FileNotFound()
    fid, outcome, report, started_at, finished_at, voided_at, voided_by, void_reason = rows[0]
    body = dict(report) if isinstance(report, dict) else {}
    body.setdefault("outcome", outcome)
    body.setdefault("started_at", iso_utc(started_at))
    body.setdefault("finished_at", iso_utc(finished_at))
    body.update(
        file_id=fid,
        voided_at=iso_utc(voided_at),
        voided_by=voided_by,
        void_reason=void_reason,
    )
    return body


def file_rejects(
    conn: Connection,
    file_id: str | int | None,
    cursor: str | None = None,
    limit: str | int | None = None,
) -> dict[str, Any]:
    """{"rejects": [{line, reason, card_id, raw_row}], "next_cursor"}: every rejected row of a
    file, in line order; card_id when it was readable, raw_row with the phone cells masked."""
    fid = parse_file_id(file_id)
    size = parse_limit(limit, REJECTS_DEFAULT_LIMIT)
    after = decode_cursor(cursor, "rejects", (int,))
    rows = run_query(
        conn,
        sql.REJECTS,
        {"file_id": fid, "after_line": after[0] if after else None, "limit": size + 1},
    )
    if not rows and not run_query(conn, sql.FILE_EXISTS, {"file_id": fid}):
        raise FileNotFound()
    next_cursor = encode_cursor("rejects", rows[size - 1][0]) if len(rows) > size else None
    return {
        "rejects": [
            {"line": line, "reason": reason, "card_id": card_id, "raw_row": raw_row}
            for line, reason, card_id, raw_row in rows[:size]
        ],
        "next_cursor": next_cursor,
    }


def stuck_cards(
    conn: Connection,
    status: str | None = None,
    older_than_hours: str | float | None = None,
    partner: str | None = None,
    cursor: str | None = None,
    limit: str | int | None = None,
) -> dict[str, Any]:
    """{"cards": [...], "next_cursor"}: cards whose current status is `status` (PICKED_UP or
    DELIVERY_EXCEPTION) since more than `older_than_hours`, oldest first (GET /stuck_cards)."""
    params: dict[str, Any] = {
        "status": parse_stuck_status(status),
        "older_than_s": parse_hours(older_than_hours) * 3600.0,
        "partner": parse_partner(partner),
    }
    size = parse_limit(limit, STUCK_DEFAULT_LIMIT)
    after = decode_cursor(cursor, "stuck", (datetime, str))
    params["after_at"], params["after_id"] = after if after else (None, None)
    query = sql.STUCK_CARDS if params["partner"] is None else sql.STUCK_CARDS_OF_PARTNER
    rows = run_query(conn, query, {**params, "limit": size + 1})
    cards = [_stuck_card(row) for row in rows[:size]]
    next_cursor = None
    if len(rows) > size:
        last = rows[size - 1]
        next_cursor = encode_cursor("stuck", _cursor_time(last[2]), last[0])
    total: int | None = None
    total_capped: bool | None = None
    if after is None:  # the first page says how many there are (up to STUCK_TOTAL_CAP)
        found = len(cards) if next_cursor is None else _count_stuck(conn, params)
        total, total_capped = min(found, STUCK_TOTAL_CAP), found > STUCK_TOTAL_CAP
    return {
        "cards": cards,
        "next_cursor": next_cursor,
        "total": total,
        "total_capped": total_capped,
    }


def _stuck_card(row: tuple[Any, ...]) -> dict[str, Any]:
    card_id, card_status, status_at, card_partner, age, reason, comment, exceptions, file_id = row
    return {
        "card_id": card_id,
        "status": card_status,
        "status_at": iso_utc(status_at),
        "partner": card_partner,
        "age_hours": round(float(age), 1),
        "reason": reason,
        "comment": redact_comment(comment),
        "exception_count": exceptions,
        "file_id": file_id,
    }


def _count_stuck(conn: Connection, params: dict[str, Any]) -> int:
    """The stuck cards for these filters, counted up to STUCK_TOTAL_CAP + 1."""
    count = sql.STUCK_COUNT if params["partner"] is None else sql.STUCK_COUNT_OF_PARTNER
    return int(run_query(conn, count, {**params, "cap": STUCK_TOTAL_CAP + 1})[0][0])


PHONE_CONFLICTS_DEFAULT_LIMIT = 100


def phone_conflicts(
    conn: Connection,
    since: str | datetime | None = None,
    cursor: str | None = None,
    limit: str | int | None = None,
) -> dict[str, Any]:
    """{"conflicts": [...], "next_cursor"}: copies of an event whose phone differs from another
    file's copy (README "Card ownership"), newest first (GET /phone_conflicts). No phone is
    answered: the card, the event, both files and lines, the owner, and whether the event kept
    this copy's phone."""
    size = parse_limit(limit, PHONE_CONFLICTS_DEFAULT_LIMIT)
    after = decode_cursor(cursor, "phone_conflicts", (datetime, int, int))
    params: dict[str, Any] = {"since": parse_since(since)}
    params["after_at"], params["after_id"], params["after_line"] = after or (None, None, None)
    rows = run_query(conn, sql.PHONE_CONFLICTS, {**params, "limit": size + 1})
    conflicts = [
        {
            "file_id": file_id,
            "line": line,
            "partner": partner,
            "card_id": card_id,
            "status": status,
            "occurred_at": iso_utc(occurred_at),
            "other_file_id": other_file_id,
            "other_line": other_line,
            "other_partner": other_partner,
            "owner_partner": owner,
            "kept": bool(kept),
            "detected_at": iso_utc(detected_at),
        }
        for (
            file_id,
            line,
            partner,
            card_id,
            status,
            occurred_at,
            other_file_id,
            other_line,
            other_partner,
            owner,
            kept,
            detected_at,
        ) in rows[:size]
    ]
    next_cursor = None
    if len(rows) > size:
        last = rows[size - 1]
        next_cursor = encode_cursor("phone_conflicts", _cursor_time(last[11]), last[0], last[1])
    return {"conflicts": conflicts, "next_cursor": next_cursor}
