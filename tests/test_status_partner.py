"""card.status_partner (migrations 0024/0025): the partner of the card's current event, kept in
step with card.status by ingestion and void, filled for cards that predate it by the backfill
(cardstatus.statuspartner) and for cards written without it by the 0024 trigger; what
GET /stuck_cards?partner= and GET /partners read."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import psycopg2
import pytest

from cardstatus import ops, partners
from cardstatus.config import load_settings
from cardstatus.ingest import SourceInfo, ingest
from cardstatus.migrate import apply_migrations, available_migrations
from cardstatus.statuspartner import backfill_status_partner
from cardstatus.void import void_file
from cardstatus_dev.database import drop_database, ensure_database

HEADER = b"Card ID,User contact,Timestamp,Comment\n"
PICKUP = HEADER + b"SP0001,+971545576586,2023-11-13T09:00:00Z,picked up\n"
EXCEPTION = HEADER + b"SP0001,+971545576586,2023-11-14T10:00:00Z,nobody home\n"
GROUP = {"acme": {"group": "emirates"}, "speedy": {"group": "emirates"}}
NOW = datetime(2024, 1, 1, tzinfo=UTC)  # every event above is stuck (> 72 h) by then

# Cards whose status_partner is not their current event's partner (the invariant).
OUT_OF_STEP = """
SELECT c.card_id, c.status_partner, e.partner
FROM card c
LEFT JOIN card_event e ON (e.card_id, e.status, e.occurred_at) = (c.card_id, c.status, c.status_at)
WHERE c.status_partner IS DISTINCT FROM e.partner
"""


def ingest_as(conn: Any, partner: str, data: bytes, name: str) -> dict[str, Any]:
    source = SourceInfo(key=f"incoming/{partner}/{name}", partner=partner)
    return ingest(conn, io.BytesIO(data), source, load_settings())


def rows(conn: Any, sql: str) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql)
        out = cur.fetchall()
    conn.commit()
    return out


def card(conn: Any) -> tuple[Any, ...]:
    return rows(conn, "SELECT status::text, status_partner FROM card WHERE card_id = 'SP0001'")[0]


def stuck_ids(conn: Any, status: str, partner: str) -> list[tuple[str, str]]:
    page = ops.stuck_cards(conn, status=status, partner=partner, older_than_hours=0)
    return [(c["card_id"], c["partner"]) for c in page["cards"]]


def test_status_partner_follows_a_newer_event_of_another_partner_and_a_void_restores_it(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PARTNER_CONFIG", json.dumps(GROUP))
    assert ingest_as(db, "acme", PICKUP, "a - Pickup.csv")["outcome"] == "applied"
    assert card(db) == ("PICKED_UP", "acme")
    assert stuck_ids(db, "PICKED_UP", "acme") == [("SP0001", "acme")]

    # speedy (acme's group) reports a newer event: the card's status and partner move together
    newer = ingest_as(db, "speedy", EXCEPTION, "s - Delivery exceptions.csv")
    assert newer["counts"]["accepted"] == 1
    assert card(db) == ("DELIVERY_EXCEPTION", "speedy")
    assert stuck_ids(db, "DELIVERY_EXCEPTION", "speedy") == [("SP0001", "speedy")]
    assert stuck_ids(db, "DELIVERY_EXCEPTION", "acme") == []
    assert stuck_ids(db, "PICKED_UP", "acme") == []
    assert partners.stuck_counts(db, NOW) == {"speedy": {"DELIVERY_EXCEPTION": 1}}

    # voiding speedy's file restores the earlier status, and with it acme as the partner
    void_file(db, newer["file_id"], "sent to the wrong folder", "tester")
    assert card(db) == ("PICKED_UP", "acme")
    assert stuck_ids(db, "PICKED_UP", "acme") == [("SP0001", "acme")]
    assert stuck_ids(db, "DELIVERY_EXCEPTION", "speedy") == []
    assert partners.stuck_counts(db, NOW) == {"acme": {"PICKED_UP": 1}}
    assert rows(db, OUT_OF_STEP) == []


def test_a_copy_of_the_current_event_from_a_grouped_partner_keeps_the_owners_partner(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same event from two files is merged owner first (README "Card ownership"): the
    current event stays acme's, and so does the card's status_partner; voiding acme's file
    leaves speedy's copy, whose partner the card then shows."""
    monkeypatch.setenv("PARTNER_CONFIG", json.dumps(GROUP))
    acme = ingest_as(db, "acme", PICKUP, "a - Pickup.csv")
    copy = ingest_as(db, "speedy", PICKUP, "s - Pickup.csv")
    assert copy["counts"]["duplicate"] == 1
    assert card(db) == ("PICKED_UP", "acme")
    void_file(db, acme["file_id"], "acme's copy was a test", "tester")
    assert card(db) == ("PICKED_UP", "speedy")
    assert rows(db, OUT_OF_STEP) == []


def test_a_card_written_without_status_partner_gets_its_current_events(db: Any) -> None:
    """The previous release's code (during a deploy) and tools that insert cards directly do
    not write status_partner: the 0024 trigger fills it from the card's current event."""
    with db.cursor() as cur:
        cur.execute(
            "INSERT INTO ingested_file (id, object_key, partner, outcome, report, started_at)"
            " VALUES (7, 'incoming/acme/x - Pickup.csv', 'acme', 'applied', '{}', now())"
        )
        cur.execute(
            "INSERT INTO card_event (card_id, status, occurred_at, partner, source_file_id,"
            " source_line) VALUES ('SP0001', 'PICKED_UP', '2023-11-13T09:00Z', 'acme', 7, 2)"
        )
        cur.execute(
            "INSERT INTO card (card_id, status, status_at)"
            " VALUES ('SP0001', 'PICKED_UP', '2023-11-13T09:00Z')"
        )
    db.commit()
    assert card(db) == ("PICKED_UP", "acme")


def _old_database(pg_admin_url: str, monkeypatch: pytest.MonkeyPatch, name: str) -> Any:
    """A database migrated up to 0023 (before status_partner), with three cards: an open one,
    a delivered one whose earlier event is another partner's, and one without its event."""
    import cardstatus.migrate as migrate

    drop_database(pg_admin_url, name)
    conn = psycopg2.connect(ensure_database(pg_admin_url, name))
    before = [m for m in available_migrations() if m.version < "0024"]
    monkeypatch.setattr(migrate, "available_migrations", lambda: before)
    apply_migrations(conn)
    monkeypatch.undo()
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO ingested_file (id, object_key, partner, outcome, report, started_at)"
            " VALUES (7, 'incoming/a/x - Pickup.csv', 'a', 'applied', '{}', now())"
        )
        cur.execute(
            """INSERT INTO card_event (card_id, status, occurred_at, partner, source_file_id,
                                       source_line) VALUES
               ('C1', 'PICKED_UP', '2024-01-01T10:00Z', 'a', 7, 2),
               ('C2', 'PICKED_UP', '2024-01-01T10:00Z', 'a', 7, 3),
               ('C2', 'DELIVERED', '2024-01-02T10:00Z', 'b', 7, 4)"""
        )
        cur.execute(
            """INSERT INTO card (card_id, status, status_at) VALUES
               ('C1', 'PICKED_UP', '2024-01-01T10:00Z'),
               ('C2', 'DELIVERED', '2024-01-02T10:00Z'),
               ('C3', 'DELIVERED', '2024-01-03T10:00Z')"""
        )
    conn.commit()
    return conn


def test_the_backfill_fills_the_cards_that_existed_before_the_migration(
    pg_admin_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "cs_test_status_partner_backfill"
    conn = _old_database(pg_admin_url, monkeypatch, name)
    try:
        assert apply_migrations(conn) == [
            m.version for m in available_migrations() if m.version >= "0024"
        ]
        by_card = "SELECT card_id, status_partner FROM card ORDER BY card_id"
        # the column is added without touching the rows (no rewrite): empty until the backfill
        assert rows(conn, by_card) == [("C1", None), ("C2", None), ("C3", None)]
        # out of time before the first batch: nothing done, and it says so
        assert backfill_status_partner(conn, budget_s=-1) == {"filled": 0, "done": False}
        # one card per batch: every batch its own transaction, the keyset walks past C3
        assert backfill_status_partner(conn, batch=1) == {"filled": 2, "done": True}
        assert rows(conn, by_card) == [("C1", "a"), ("C2", "b"), ("C3", None)]
        assert backfill_status_partner(conn) == {"filled": 0, "done": True}  # idempotent
        assert ops.stuck_cards(conn, status="PICKED_UP", partner="a")["total"] == 1
    finally:
        conn.close()
        drop_database(pg_admin_url, name)
