"""A6: a claim of pending outbox rows walks the pending index in id order and stops at its
limit, even right after a big file committed (statistics not refreshed yet): no sort of every
pending row per claim (cardstatus/sql/events.py CLAIM_IN_ID_ORDER)."""

from __future__ import annotations

import json
from typing import Any

from cardstatus.sql import events as sql

FILL = """
INSERT INTO status_outbox (event_id, card_id, card_version, detail)
SELECT gen_random_uuid(), 'P' || i, 1, jsonb_build_object('card_id', 'P' || i, 'file_id', 7)
FROM generate_series(1, 20000) i
"""


def _plan(db: Any, claim: str, params: dict[str, Any], *, in_id_order: bool) -> str:
    with db.cursor() as cur:
        if in_id_order:
            cur.execute(sql.CLAIM_IN_ID_ORDER)
        cur.execute("EXPLAIN (FORMAT JSON) " + claim, params)
        plan = cur.fetchone()[0]
    db.rollback()
    return json.dumps(plan)


def test_claims_do_not_sort_every_pending_row_under_stale_statistics(db: Any) -> None:
    with db.cursor() as cur:
        cur.execute(FILL)  # committed, never analyzed: what the publisher sees after a big file
    db.commit()
    params = {"min_age_s": 0.0, "after": 0, "limit": 400, "file_id": "7"}
    for claim in (sql.CLAIM_PENDING, sql.CLAIM_FILE):
        plan = _plan(db, claim, params, in_id_order=True)
        assert '"Node Type": "Sort"' not in plan, plan
        assert "status_outbox_pending" in plan, plan
    # the control: the planner's own choice under these statistics sorts them all
    assert '"Node Type": "Sort"' in _plan(db, sql.CLAIM_PENDING, params, in_id_order=False)
