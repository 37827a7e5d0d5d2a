"""Backfill of card.status_partner for cards written before migration 0024 (issue 21).

Run after the migrations by the migrate function and `cardstatus migrate`: idempotent, a no-op
(one probe of an almost empty index) once every card has it. Batches of `batch` cards, each
its own short transaction (no long row lock on `card` while files arrive); the open cards first,
as the stuck-card routes read only those. With `budget_s` it stops after the batch that
crosses the budget and reports `done: false`; the next run continues.
"""

from __future__ import annotations

import time
from typing import Any

from psycopg2.extensions import connection as Connection

from cardstatus.sql import statuspartner as sql

BATCH_CARDS = 5000


def backfill_status_partner(
    conn: Connection, batch: int = BATCH_CARDS, budget_s: float | None = None
) -> dict[str, Any]:
    """{"filled": cards given a partner, "done": whether every card was reached}."""
    deadline = None if budget_s is None else time.monotonic() + budget_s
    filled = 0
    for statement in (sql.FILL_OPEN, sql.FILL_ALL):
        after: tuple[Any, ...] = (None, None, None)
        while True:
            if deadline is not None and time.monotonic() > deadline:
                return {"filled": filled, "done": False}
            with conn.cursor() as cur:
                cur.execute(
                    statement,
                    {
                        "batch": batch,
                        "after_id": after[0],
                        "after_status": after[1],
                        "after_at": after[2],
                    },
                )
                row = cur.fetchone()
            conn.commit()
            if row is None:
                break
            after = (row[0], row[1], row[2])
            filled += int(row[3])
    return {"filled": filled, "done": True}
