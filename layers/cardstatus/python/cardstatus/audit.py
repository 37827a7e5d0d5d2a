"""Every lookup accountable (README "Privacy"): one audit row per API lookup, and the trail.

A row says who asked (the caller's IAM ARN), by which route, whether by phone, with which
outcome and which card ids: the cards answered, or the card id asked for when nothing was
found. Never a phone number, in any form. The api role may only append (0019_lookup_audit.sql);
`cardstatus audit` reads the trail as the schema owner. Partitions by UTC day and their
retention: `maintain()`, run by the sweeper.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg2.extensions import connection as Connection

from cardstatus.sql import audit as sql

# Outcomes of a lookup as the trail records them.
FOUND = "found"
NOT_FOUND = "not_found"


@dataclass(frozen=True)
class LookupRecord:
    caller: str
    route: str
    by_phone: bool
    outcome: str
    card_ids: tuple[str, ...]

    def to_params(self) -> dict[str, Any]:
        return {
            "caller": self.caller,
            "route": self.route,
            "by_phone": self.by_phone,
            "outcome": self.outcome,
            "card_ids": list(self.card_ids),
        }


def insert_statement(record: LookupRecord) -> tuple[str, dict[str, Any]]:
    """The row's INSERT alone (statement, parameters), for a read-write transaction the
    caller has open and commits (the card-id + phone lookup's budget count,
    cardstatus/lookup_budget.py)."""
    return sql.INSERT_LOOKUP, record.to_params()


def record_lookup(conn: Connection, record: LookupRecord) -> None:
    """Append one row (own short transaction; `conn` must be in autocommit)."""
    with conn.cursor() as cur:
        cur.execute(sql.RECORD_LOOKUP, record.to_params())


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
        }
        for at, who, route, by_phone, outcome, ids in rows
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
