"""Retention of cards (README "Privacy"): cards whose latest event is older than the retention
period are deleted with their events and copies, in small batches, by the sweeper.

Numbers erased on request are remembered (erased_phone, README "Privacy") for the same period.
Each batch is one short transaction (0020_card_retention.sql's retention_purge): the oldest
cards first, cards locked by an ingest or a void skipped until the next run, a tombstone per
card keeping its version. Counts are returned for the sweeper's metrics.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg2.extensions import connection as Connection

from cardstatus.sql import erasure as erasure_sql
from cardstatus.sql import retention as sql


@dataclass
class PurgeResult:
    cards: int = 0
    events: int = 0
    copies: int = 0
    batches: int = 0

    def add(self, cards: int, events: int, copies: int) -> None:
        self.cards += cards
        self.events += events
        self.copies += copies
        self.batches += 1


def purge_expired_cards(
    conn: Connection,
    *,
    retention_days: int,
    now: datetime,
    batch: int = 500,
    deadline: float | None = None,
) -> PurgeResult:
    """Delete every card whose latest event is before `now - retention_days`, batch by batch,
    until none is left or the deadline (time.monotonic()) passes."""
    if retention_days < 1:
        raise ValueError(f"retention_days must be at least 1, got {retention_days}")
    cutoff = now - timedelta(days=retention_days)
    result = PurgeResult()
    with conn.cursor() as cur:  # erased numbers are remembered as long as cards are kept
        cur.execute(erasure_sql.FORGET_ERASED, {"cutoff": cutoff})
    conn.commit()
    while deadline is None or time.monotonic() < deadline:
        with conn.cursor() as cur:
            cur.execute(sql.PURGE, {"cutoff": cutoff, "batch": batch})
            cards, events, copies = cur.fetchone() or (0, 0, 0)
        conn.commit()
        result.add(int(cards), int(events), int(copies))
        if cards < batch:
            break
    return result
