"""Operations SQL at scale: every statement is an index scan in answer order (no Seq Scan, no
Sort), with and without each filter and cursor, on 100k files and 100k cards."""

from __future__ import annotations

from typing import Any

import pytest
from api_seed import seed_bulk
from ops_seed import seed_files

from cardstatus import ops
from cardstatus.sql import filecards as filecards_sql
from cardstatus.sql import ops as sql
from cardstatus.statuspartner import backfill_status_partner

N_FILES = 100_000
N_CARDS = 100_000


@pytest.fixture
def bulk_db(db: Any) -> Any:
    seed_bulk(db, N_CARDS)
    seed_files(db, N_FILES)
    with db.cursor() as cur:  # stuck cards whose current event is in card_event (partner)
        cur.execute(
            """INSERT INTO card_event (card_id, status, occurred_at, partner, source_file_id,
                                       source_line)
               SELECT card_id, status, status_at, 'quark', 1, 1 FROM card
               WHERE status = 'PICKED_UP' AND card_id LIKE 'B%%'
               ON CONFLICT DO NOTHING"""
        )
        cur.execute("ANALYZE card_event")
        # what 10 files did to 10k cards each (file_card_change, GET /files/{id}/cards)
        cur.execute(
            """INSERT INTO file_card_change (file_id, card_id, action, status_before, status_after)
               SELECT i % 10 + 1, card_id, CASE WHEN i % 3 = 0 THEN 'void' ELSE 'apply' END,
                      NULL, status
               FROM (SELECT row_number() OVER () AS i, card_id, status FROM card) c"""
        )
        cur.execute("ANALYZE file_card_change")
    db.commit()
    # The cards got their current events after they were written: their status_partner
    # (0024) is filled the way a deploy fills it for cards that predate it.
    backfill_status_partner(db)
    with db.cursor() as cur:
        cur.execute("ANALYZE card")
    db.commit()
    return db


def _plan(conn: Any, query: str, params: dict[str, Any]) -> str:
    with conn.cursor() as cur:
        cur.execute("EXPLAIN " + query, params)
        plan = "\n".join(row[0] for row in cur.fetchall())
    conn.rollback()
    return plan


FILES = {
    "partner": None,
    "outcome": None,
    "since": None,
    "after_at": None,
    "after_id": None,
    "has_rejects": None,
}
STUCK = {"status": "PICKED_UP", "older_than_s": 72 * 3600.0, "partner": None}
NO_CURSOR = {"after_at": None, "after_id": None}
CURSOR_AT = "2026-02-01T00:00:00+00:00"


def test_every_ops_statement_is_an_index_scan(bulk_db: Any) -> None:
    statements: dict[str, tuple[str, dict[str, Any], str]] = {
        "files": (sql.FILES, FILES, "ingested_file_recent"),
        "files by partner": (sql.FILES, {**FILES, "partner": "zed"}, "ingested_file"),
        "files rejected": (
            sql.FILES,
            {**FILES, "outcome": "rejected_file"},
            "ingested_file_outcome_recent",
        ),
        "files, all filters, next page": (
            sql.FILES,
            {
                "partner": "acme",
                "outcome": "rejected_file",
                "since": "2026-01-10T00:00:00Z",
                "after_at": CURSOR_AT,
                "after_id": 44640,
                "has_rejects": True,
            },
            "ingested_file",
        ),
        "files with rejects": (sql.FILES, {**FILES, "has_rejects": True}, "ingested_file"),
        "file": (sql.FILE, {"file_id": 5}, "ingested_file_pkey"),
        "file cards": (
            filecards_sql.FILE_CARDS,
            {"file_id": 5, "action": None, "after_action": None, "after_card": None},
            "file_card_change_pkey",
        ),
        "file cards, next page": (
            filecards_sql.FILE_CARDS,
            {"file_id": 5, "action": "void", "after_action": "apply", "after_card": "B1"},
            "file_card_change_pkey",
        ),
        "rejects": (sql.REJECTS, {"file_id": 50003, "after_line": None}, "rejected_row_pkey"),
        "rejects, next page": (
            sql.REJECTS,
            {"file_id": 50003, "after_line": 2},
            "rejected_row_pkey",
        ),
        "stuck": (sql.STUCK_CARDS, {**STUCK, **NO_CURSOR}, "card_open_status_age"),
        "stuck by partner, next page": (
            sql.STUCK_CARDS,
            {**STUCK, "partner": "quark", "after_at": "2023-02-01T00:00:00Z", "after_id": "B1"},
            "card_open_status_age",
        ),
        "stuck in exception": (
            sql.STUCK_CARDS,
            {**STUCK, "status": "DELIVERY_EXCEPTION", "partner": "acme", **NO_CURSOR},
            "card_open_status_age",
        ),
        # The statement ops.stuck_cards runs with a partner (0024/0025): one range of the
        # partner's stuck cards, not every stuck card nor every open event of the partner.
        "stuck of a partner without stuck cards": (
            sql.STUCK_CARDS_OF_PARTNER,
            {**STUCK, "partner": "nobody", **NO_CURSOR},
            "card_status_partner_open",
        ),
        # quark holds every stuck card here: reading card_open_status_age and keeping quark's
        # is as cheap, and the planner may take either partial index (never a Seq Scan).
        "stuck of a partner, next page": (
            sql.STUCK_CARDS_OF_PARTNER,
            {**STUCK, "partner": "quark", "after_at": "2023-02-01T00:00:00Z", "after_id": "B1"},
            "Index Scan using card_",
        ),
        "stuck count of a partner without stuck cards": (
            sql.STUCK_COUNT_OF_PARTNER,
            {**STUCK, "partner": "nobody", "cap": 10_001},
            "card_status_partner_open",
        ),
    }
    for name, (query, params, index) in statements.items():
        plan = _plan(bulk_db, query, {**params, "limit": ops.MAX_LIMIT + 1})
        assert "Seq Scan" not in plan, f"{name}:\n{plan}"
        assert "Sort" not in plan, f"{name}:\n{plan}"
        assert index in plan, f"{name}:\n{plan}"
        if query is sql.STUCK_CARDS:
            assert "card_event_pkey" in plan, f"{name}:\n{plan}"  # the partner lookup
        if query is sql.STUCK_CARDS_OF_PARTNER:  # only the page's rows look up their file
            assert "card_event_partner_open" not in plan, f"{name}:\n{plan}"
            assert "Hash" not in plan, f"{name}:\n{plan}"

    # The first page's total of stuck cards reads along an index up to its cap (10,000): no
    # sequential scan; the planner may pick either index on status_at (then an incremental
    # sort within equal times, bounded by the cap).
    plan = _plan(bulk_db, sql.STUCK_COUNT, {**STUCK, "cap": 10_001})
    assert "Seq Scan" not in plan and "Index" in plan, plan

    # ... and the answers at that scale are right.
    page = ops.list_files(bulk_db, outcome="rejected_file", limit=3)
    assert [f["file_id"] for f in page["files"]] == [100_000, 99_990, 99_980]
    after = ops.list_files(bulk_db, outcome="rejected_file", limit=3, cursor=page["next_cursor"])
    assert [f["file_id"] for f in after["files"]] == [99_970, 99_960, 99_950]
    stuck = ops.stuck_cards(bulk_db, partner="quark", limit=2)
    assert [c["card_id"] for c in stuck["cards"]] == ["B000000003", "B000000006"]
    assert {c["partner"] for c in stuck["cards"]} == {"quark"}
