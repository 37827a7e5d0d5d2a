"""Partner feed health SQL at scale (100k files, 100k cards): every statement reads
ingested_file through ingested_file_partner_recent (partner, finished_at, id) or the card
indexes, never a Seq Scan of a big table; ingestion's volume check is one bounded index scan."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from api_seed import seed_bulk
from ops_seed import seed_files

from cardstatus import partners
from cardstatus.config import load_settings
from cardstatus.sql import partners as sql
from cardstatus.statuspartner import backfill_status_partner

N = 100_000
AT = datetime(2026, 2, 15, tzinfo=UTC)  # files: one a minute from 2026-01-01 to ~2026-03-10


@pytest.fixture
def bulk_db(db: Any) -> Any:
    seed_bulk(db, N)
    seed_files(db, N)
    with db.cursor() as cur:
        cur.execute(
            """INSERT INTO card_event (card_id, status, occurred_at, partner, source_file_id,
                                       source_line)
               SELECT card_id, status, status_at, 'quark', 1, 1 FROM card
               WHERE status IN ('PICKED_UP', 'DELIVERY_EXCEPTION') AND card_id LIKE 'B%%'
               ON CONFLICT DO NOTHING"""
        )
        cur.execute("ANALYZE card_event")
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


def test_every_partner_statement_is_an_index_scan(bulk_db: Any) -> None:
    names = {"names": ["acme", "Acme"], "at": AT}
    statements: dict[str, tuple[str, dict[str, Any], str]] = {
        "known partners": (sql.KNOWN_PARTNERS, {}, "ingested_file_partner_recent"),
        "files in window": (
            sql.FILES_IN_WINDOW,
            {**names, "since": datetime(2026, 2, 1, tzinfo=UTC)},
            "ingested_file_partner_recent",
        ),
        "last file": (sql.LAST_FILE, names, "ingested_file_partner_recent"),
        "recent applied": (
            sql.RECENT_APPLIED_ROWS,
            {**names, "limit": 11},
            "ingested_file_partner_recent",
        ),
        "ingest volume check": (
            sql.PREVIOUS_APPLIED_ROWS,
            {"partner": "acme", "file_id": N, "limit": 10},
            "ingested_file_partner_recent",
        ),
        "stuck by partner": (
            sql.STUCK_BY_PARTNER,
            {"cutoff": datetime(2026, 1, 1, tzinfo=UTC)},
            "card_status_partner_open",
        ),
    }
    for name, (query, params, index) in statements.items():
        plan = _plan(bulk_db, query, params)
        assert "Seq Scan on ingested_file" not in plan, f"{name}:\n{plan}"
        assert "Seq Scan on card " not in plan, f"{name}:\n{plan}"
        assert index in plan, f"{name}:\n{plan}"
    stuck_plan = _plan(bulk_db, sql.STUCK_BY_PARTNER, {"cutoff": AT})
    # the partner of the current event is the card's own (0024): no card_event lookup
    assert "card_status_partner_open" in stuck_plan and "card_event" not in stuck_plan, stuck_plan

    # ... and the answers at that scale are right.
    cfg = load_settings()
    known = [p.name for p in partners.known_partners(bulk_db, cfg)]
    seen = ["acme", "bulk", "quark", "speedy", "swiftpost", "zed"]  # bulk: api_seed
    assert known == sorted((set(seen) | set(cfg.partners)) - {"default"})  # configured or seen
    h = partners.one_health(bulk_db, cfg, "ACME", AT)
    with bulk_db.cursor() as cur:
        cur.execute(
            """SELECT count(*), sum(rows_total), sum(rows_rejected) FROM ingested_file
               WHERE partner = 'acme' AND outcome <> 'duplicate_file'
                 AND finished_at > %(at)s - interval '7 days' AND finished_at <= %(at)s""",
            {"at": AT},
        )
        files, rows, rejected = cur.fetchone()
    bulk_db.rollback()
    assert files > 1000  # one acme file every 5 minutes
    assert (h.last_7_days.files, h.last_7_days.rows, h.last_7_days.rejected) == (
        files,
        rows,
        rejected,
    )
    assert len(h.rows_per_day) == 14 and h.state == "not_monitored"
