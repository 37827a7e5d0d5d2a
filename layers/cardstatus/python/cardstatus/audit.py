"""Every lookup accountable (README "Privacy"): one audit row per API lookup, and the trail.

A row says who asked (the caller's IAM ARN), by which route, whether by phone, with which
outcome and which card ids: the cards answered, or the card id asked for when nothing was
found. Never a phone number, in any form. The api role may only append (0019_lookup_audit.sql);
`cardstatus audit` reads the trail as the schema owner. Partitions by UTC day and their
retention: `maintain()`, run by the sweeper.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from psycopg2.extensions import connection as Connection

from cardstatus.db import roll_back_open_transaction
from cardstatus.sql import audit as sql

# Outcomes of a lookup as the trail records them.
FOUND = "found"
NOT_FOUND = "not_found"


def utc_now() -> datetime:
    return datetime.now(UTC)


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
            "at": self.at,
            "caller": self.caller,
            "route": self.route,
            "by_phone": self.by_phone,
            "outcome": self.outcome,
            "card_ids": list(self.card_ids),
            "request_id": self.request_id,
        }


@dataclass
class AuditedLookup:
    """A lookup's audit row, written in the lookup's own round trip (`fetch`, with a statement
    of cardstatus/sql/audit.py `with_lookup`): the row's card ids are those the lookup's own
    predicate finds, computed by the INSERT an instant before the lookup reads its rows.

    After `fetch`, `recorded` holds the card ids the row names (empty when it found none):
    the caller compares them with the cards it answers and records any it missed (a card
    that changed in between) before answering (functions/api/audit_trail.py)."""

    caller: str
    route: str
    by_phone: bool
    request_id: str
    asked: tuple[str, ...]  # recorded as not found when the lookup finds nothing
    listing: bool  # a listing that finds nothing is an empty "found", not a "not found"
    at: datetime = field(default_factory=utc_now)
    sent: bool = False
    recorded: tuple[str, ...] = ()

    def fetch(self, conn: Connection, query: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Run the audited lookup on `conn` (in autocommit) and return its rows without their
        last column (the recorded ids); a failure leaves no transaction open."""
        self.sent = True
        try:
            with conn.cursor() as cur:
                cur.execute(query, {**params, **self._params()})
                rows = cur.fetchall()
        except BaseException:
            roll_back_open_transaction(conn)  # the row's INSERT failed before its COMMIT
            raise
        self.recorded = tuple(rows[0][-1] or ()) if rows else ()
        return [row[:-1] for row in rows]

    def _params(self) -> dict[str, Any]:
        return {
            "audit_at": self.at,
            "audit_caller": self.caller,
            "audit_route": self.route,
            "audit_by_phone": self.by_phone,
            "audit_listing": self.listing,
            "audit_asked": list(self.asked),
            "audit_request_id": self.request_id,
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
