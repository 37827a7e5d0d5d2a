"""Every lookup accountable (README "Privacy"): one audit record per API lookup, and the trail.

A record says who asked (the caller's IAM ARN), by which route, whether by phone, with which
outcome and which card ids: the cards answered, or the card id asked for when nothing was
found; and API Gateway's request id. Never a phone number, in any form.

How a record travels (README "Who looked at a card"): the api prints it as one JSON line
(`to_line`) to its log stream before the answer leaves: no database work in the lookup. A
CloudWatch Logs subscription on the api's log group hands those lines, in batches, to the
audit function (functions/audit), which reads them back (`from_line`) and appends them to the
lookup_audit table in one statement (`append`). The api role may only append to that table
(0019_lookup_audit.sql); `cardstatus audit` reads the trail as the schema owner (`trail`).
Partitions by UTC day and their retention: `maintain()`, run by the sweeper.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from psycopg2.extensions import connection as Connection

from cardstatus.db import roll_back_open_transaction
from cardstatus.sql import audit as sql

# Outcomes of a lookup as the trail records them.
FOUND = "found"
NOT_FOUND = "not_found"
OUTCOMES = (FOUND, NOT_FOUND)

# The key of an audit line: the subscription filter matches lines that have `audit.route`
# (infra/audit.py), and nothing else the api logs has it.
LINE_KEY = "audit"


def utc_now() -> datetime:
    return datetime.now(UTC)


class NotAnAuditLine(ValueError):
    """A log line that is not an audit record (or not a well-formed one)."""


@dataclass(frozen=True)
class LookupRecord:
    caller: str
    route: str
    by_phone: bool
    outcome: str
    card_ids: tuple[str, ...]
    request_id: str | None = None  # API Gateway's id of the request
    at: datetime = field(default_factory=utc_now)

    def to_params(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "caller": self.caller,
            "route": self.route,
            "by_phone": self.by_phone,
            "outcome": self.outcome,
            "card_ids": list(self.card_ids),
            "request_id": self.request_id,
        }

    def to_line(self) -> str:
        """The record as the api logs it: one line of JSON."""
        return json.dumps({LINE_KEY: self.to_params()}, separators=(",", ":"))

    @classmethod
    def from_line(cls, line: str) -> LookupRecord:
        """The record of one audit line; raises NotAnAuditLine for anything else."""
        try:
            fields = json.loads(line)[LINE_KEY]
            record = cls(
                caller=_text(fields["caller"]),
                route=_text(fields["route"]),
                by_phone=fields["by_phone"],
                outcome=fields["outcome"],
                card_ids=tuple(_text(card_id) for card_id in _list(fields["card_ids"])),
                request_id=fields["request_id"],
                at=datetime.fromisoformat(fields["at"]),
            )
        except (ValueError, TypeError, KeyError) as exc:  # JSONDecodeError is a ValueError
            raise NotAnAuditLine(f"not an audit line: {type(exc).__name__}") from None
        if (
            not isinstance(record.by_phone, bool)
            or record.outcome not in OUTCOMES
            or not isinstance(record.request_id, str | None)
            or record.at.tzinfo is None
        ):
            raise NotAnAuditLine("not an audit line: a field has the wrong type")
        return record


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError("expected a list")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value


def append(conn: Connection, records: Sequence[LookupRecord]) -> int:
    """Append these records to the trail in one statement (own READ WRITE transaction, one
    round trip; `conn` in autocommit); the number appended."""
    if not records:
        return 0
    rows = json.dumps([record.to_params() for record in records])
    try:
        with conn.cursor() as cur:
            cur.execute(sql.APPEND, {"rows": rows})
    except BaseException:
        roll_back_open_transaction(conn)
        raise
    return len(records)


def records_of(lines: Iterable[str]) -> tuple[list[LookupRecord], int]:
    """The audit records among log lines, and how many lines were not audit records."""
    records: list[LookupRecord] = []
    skipped = 0
    for line in lines:
        try:
            records.append(LookupRecord.from_line(line))
        except NotAnAuditLine:
            skipped += 1
    return records, skipped


def trail(
    conn: Connection,
    *,
    card_id: str | None = None,
    caller: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Lookups of one card (or by one caller), newest first."""
    if (card_id is None) == (caller is None):
        raise ValueError("give exactly one of card_id and caller")
    params = {"card_id": card_id, "caller": caller, "since": since, "limit": limit}
    with conn.cursor() as cur:
        cur.execute(sql.TRAIL if card_id is not None else sql.BY_CALLER, params)
        rows: Sequence[tuple[Any, ...]] = cur.fetchall()
    return [
        {
            "at": at.isoformat(),
            "caller": who,
            "route": route,
            "by_phone": by_phone,
            "outcome": outcome,
            "card_ids": list(ids),
            "request_id": request_id,
        }
        for at, who, route, by_phone, outcome, ids, request_id in rows
    ]


def maintain(conn: Connection, keep_days: int, as_of: datetime | None = None) -> tuple[int, int]:
    """Create the next days' partitions and drop those past `keep_days`: (created, dropped)."""
    with conn.cursor() as cur:
        cur.execute(
            sql.MAINTAIN, {"keep_days": keep_days, "as_of": as_of or datetime.now().astimezone()}
        )
        created, dropped = cur.fetchone() or (0, 0)
    conn.commit()
    return int(created), int(dropped)
