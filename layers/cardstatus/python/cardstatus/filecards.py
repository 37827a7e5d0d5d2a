"""Files and cards linked both ways, and rejects ops can act on (SPEC §9b; README
"Operations"): plain functions over a psycopg2 connection, called by the API
(functions/api/file_routes.py) and the CLI (`cardstatus file-cards`, `void --preview`,
`rejects`).

- `file_cards`: each card a file changed (status before -> after) and, once voided, what the
  void did to each card; from file_card_change (written by ingestion and by the void).
- `void_preview`: what voiding the file would do, read-only: the cards whose current status
  would change (or which would be deleted), and how many.
- `rejects_csv_lines`: every rejected row as CSV (line, card id, reason, raw row with the phone
  cells masked), for a spreadsheet or the partner.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from psycopg2.extensions import connection as Connection

from cardstatus.cards import iso_utc, run_query
from cardstatus.errors import FileNotFound, InvalidParameter
from cardstatus.ops import (
    MAX_LIMIT,
    decode_cursor,
    encode_cursor,
    parse_file_id,
    parse_limit,
)
from cardstatus.sql import filecards as sql

FILE_CARDS_DEFAULT_LIMIT = 100
ACTIONS = ("apply", "void")
# The preview judges at most this many of the file's cards per page (it lists the changing
# ones among them) and counts them all only for files that touched at most PREVIEW_COUNT_MAX.
PREVIEW_SCAN = 1000
PREVIEW_COUNT_MAX = 20_000
# GET /files/{id}/rejects.csv answers at most this many rows (`cardstatus rejects ID --csv`
# has no limit); X-Truncated says when there were more.
REJECTS_CSV_MAX_ROWS = 20_000
REJECTS_CSV_HEADER = ("line", "card_id", "reason", "raw_row")


def parse_action(raw: str | None) -> str | None:
    if raw is None or raw.strip() == "":
        return None
    value = raw.strip().lower()
    if value not in ACTIONS:
        raise InvalidParameter("action must be apply or void", parameter="action")
    return value


def _file_state(conn: Connection, file_id: int) -> tuple[Any, ...]:
    rows = run_query(conn, sql.FILE_STATE, {"file_id": file_id})
    if not rows:
        raise FileNotFound()
    return rows[0]


def file_cards(
    conn: Connection,
    file_id: str | int | None,
    action: str | None = None,
    cursor: str | None = None,
    limit: str | int | None = None,
) -> dict[str, Any]:
    """{"file_id", "outcome", "voided", "counts": {"apply", "void"}, "cards": [...],
    "next_cursor"}: the cards the file changed (action apply) and what its void did (action
    void), apply first, each by card id: status_before -> status_after (null before: a new
    card; null after: the void deleted the card) and the card's status now."""
    fid = parse_file_id(file_id)
    wanted = parse_action(action)
    size = parse_limit(limit, FILE_CARDS_DEFAULT_LIMIT)
    after = decode_cursor(cursor, "file_cards", (str, str))
    outcome, voided, _touched, applied, void_changes = _file_state(conn, fid)
    rows = run_query(
        conn,
        sql.FILE_CARDS,
        {
            "file_id": fid,
            "action": wanted,
            "after_action": after[0] if after else None,
            "after_card": after[1] if after else None,
            "limit": size + 1,
        },
    )
    cards = [
        {
            "card_id": card_id,
            "action": act,
            "status_before": before,
            "status_after": after_status,
            "changed_at": iso_utc(changed_at),
            "status_now": now,
        }
        for act, card_id, before, after_status, changed_at, now in rows[:size]
    ]
    next_cursor = None
    if len(rows) > size:
        last = rows[size - 1]
        next_cursor = encode_cursor("file_cards", last[0], last[1])
    return {
        "file_id": fid,
        "outcome": outcome,
        "voided": voided,
        "counts": {"apply": applied or 0, "void": void_changes or 0},
        "cards": cards,
        "next_cursor": next_cursor,
    }


def void_preview(
    conn: Connection,
    file_id: str | int | None,
    cursor: str | None = None,
    limit: str | int | None = None,
) -> dict[str, Any]:
    """{"file_id", "voidable", "cards_touched", "status_changes", "cards_deleted", "cards",
    "next_cursor"}: the cards a void of this file would change, by card id, each with its
    status now and after the void (null: the card would be deleted). The counts cover the
    whole file on the first page (null when the file touched more than PREVIEW_COUNT_MAX
    cards); a page lists the changing cards among the next PREVIEW_SCAN the file touched, so
    it may hold fewer than `limit` (even none) while next_cursor is set."""
    fid = parse_file_id(file_id)
    size = parse_limit(limit, MAX_LIMIT)
    after = decode_cursor(cursor, "void_preview", (str,))
    outcome, voided, touched, _applied, _void = _file_state(conn, fid)
    voidable = outcome == "applied" and not voided
    answer: dict[str, Any] = {
        "file_id": fid,
        "outcome": outcome,
        "voidable": voidable,
        "cards_touched": touched,
        "status_changes": None,
        "cards_deleted": None,
        "cards": [],
        "next_cursor": None,
    }
    if not voidable:
        return answer
    params: dict[str, Any] = {"file_id": fid, "after_card": after[0] if after else None}
    if after is None and (touched or 0) <= PREVIEW_COUNT_MAX:
        counted = run_query(conn, sql.VOID_PREVIEW_COUNT, {**params, "scan": PREVIEW_COUNT_MAX})
        answer["cards_touched"], answer["status_changes"], answer["cards_deleted"] = counted[0]
    scan = max(size, PREVIEW_SCAN)
    rows = run_query(conn, sql.VOID_PREVIEW, {**params, "scan": scan})
    changing = [r for r in rows if r[3]]
    for card_id, now, after_status, _changes, _last, _scanned in changing[:size]:
        answer["cards"].append(
            {"card_id": card_id, "status_now": now, "status_after_void": after_status}
        )
    if len(changing) > size:
        answer["next_cursor"] = encode_cursor("void_preview", changing[size - 1][0])
    elif rows and rows[0][5] >= scan:
        answer["next_cursor"] = encode_cursor("void_preview", rows[0][4])
    return answer


def file_rejects_page(
    conn: Connection, file_id: int, after_line: int | None, limit: int
) -> list[dict[str, Any]]:
    """Rejected rows of a file from after_line on, with card id and masked raw row."""
    rows = run_query(
        conn,
        sql.REJECTS_PAGE,
        {"file_id": file_id, "after_line": after_line, "limit": limit},
    )
    return [
        {"line": line, "reason": reason, "card_id": card_id, "raw_row": raw}
        for line, reason, card_id, raw in rows
    ]


def rejects_csv_lines(
    conn: Connection, file_id: str | int | None, max_rows: int | None = REJECTS_CSV_MAX_ROWS
) -> tuple[Iterator[str], list[bool]]:
    """CSV text lines (header first) of the file's rejected rows, in line order, and a
    one-element list set to [True] once more rows than max_rows were left out. FileNotFound
    for an unknown file (checked before the first line)."""
    fid = parse_file_id(file_id)
    _file_state(conn, fid)
    truncated = [False]

    def lines() -> Iterator[str]:
        yield _csv_line(REJECTS_CSV_HEADER)
        after, written = None, 0
        while True:
            page = file_rejects_page(conn, fid, after, 1000)
            for item in page:
                if max_rows is not None and written >= max_rows:
                    truncated[0] = True
                    return
                yield _csv_line((item["line"], item["card_id"], item["reason"], item["raw_row"]))
                written += 1
            if len(page) < 1000:
                return
            after = page[-1]["line"]

    return lines(), truncated


def _csv_line(values: tuple[Any, ...]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(["" if v is None else v for v in values])
    return buffer.getvalue()


def parse_csv(text: str) -> list[dict[str, str]]:
    """The rows of a rejects CSV (the round trip of rejects_csv_lines)."""
    return list(csv.DictReader(io.StringIO(text)))
