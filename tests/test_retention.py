"""Retention of cards (README "Privacy"): expired cards go, with their events and copies, in
batches, keeping tombstones; newer cards stay; a card seen again continues its versions."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import psycopg2
import pytest

from cardstatus import dbroles, retention
from cardstatus.config import load_settings
from cardstatus.ingest import SourceInfo, ingest

NOW = datetime(2027, 6, 1, tzinfo=UTC)  # the simulated clock


def ingest_rows(conn: Any, key: str, rows: list[str]) -> dict[str, Any]:
    data = ("Card ID,User contact,Timestamp\n" + "\n".join(rows) + "\n").encode()
    return ingest(conn, io.BytesIO(data), SourceInfo(key=key, partner="default"), load_settings())


def one(db: Any, sql: str, *args: Any) -> Any:
    with db.cursor() as cur:
        cur.execute(sql, args)
        value = cur.fetchone()[0]
    db.commit()
    return value


@pytest.fixture
def history(db: Any) -> Any:
    # OLD1/OLD2: latest event in 2024 (over 2 years before NOW); NEW1: picked up in 2024 and
    # delivered in 2026, so its latest event is recent and the whole card stays.
    ingest_rows(
        db,
        "old - Pickup.csv",
        [
            "OLD1,0585949014,2024-01-01T10:00:00Z",
            "OLD2,,2024-02-01T10:00:00Z",
            "NEW1,0534534534,2024-03-01T10:00:00Z",
        ],
    )
    ingest_rows(db, "old - Delivered.csv", ["OLD1,0585949014,2024-01-03T10:00:00Z"])
    ingest_rows(db, "new - Delivered.csv", ["NEW1,0534534534,2026-03-01T10:00:00Z"])
    return db


def test_expired_cards_go_with_their_events_and_copies(history: Any) -> None:
    version = one(history, "SELECT version FROM card WHERE card_id = 'OLD1'")
    result = retention.purge_expired_cards(history, retention_days=730, now=NOW)
    assert (result.cards, result.events, result.copies) == (2, 3, 3)
    assert one(history, "SELECT array_agg(card_id ORDER BY card_id) FROM card") == ["NEW1"]
    for table in ("card_event", "event_copy"):
        assert one(history, f"SELECT count(*) FROM {table} WHERE card_id LIKE 'OLD%%'") == 0
        assert one(history, f"SELECT count(*) FROM {table} WHERE card_id = 'NEW1'") == 2
    assert one(history, "SELECT version FROM card_tombstone WHERE card_id = 'OLD1'") == version
    # Nothing left to do: a second run deletes nothing.
    again = retention.purge_expired_cards(history, retention_days=730, now=NOW)
    assert (again.cards, again.events) == (0, 0)


def test_batches_take_the_oldest_first(history: Any) -> None:
    result = retention.purge_expired_cards(history, retention_days=730, now=NOW, batch=1)
    assert result.cards == 2 and result.batches == 3  # 1 + 1 + an empty last batch
    past = retention.purge_expired_cards(history, retention_days=10_000, now=NOW, batch=1)
    assert past.cards == 0  # nothing is that old


def test_a_card_seen_again_continues_its_versions(history: Any) -> None:
    before = one(history, "SELECT version FROM card WHERE card_id = 'OLD1'")
    retention.purge_expired_cards(history, retention_days=730, now=NOW)
    ingest_rows(history, "again - Returned.csv", ["OLD1,,2026-11-01T10:00:00Z"])
    assert one(history, "SELECT version FROM card WHERE card_id = 'OLD1'") == before + 1


def test_the_sweeper_role_may_purge_only_through_the_function(history: Any, db_url: str) -> None:
    sweeper = psycopg2.connect(db_url, user=dbroles.INGEST)
    try:
        with sweeper.cursor() as cur, pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cur.execute("DELETE FROM card_event WHERE card_id = 'OLD1'")
        sweeper.rollback()
        result = retention.purge_expired_cards(sweeper, retention_days=730, now=NOW)
        assert result.cards == 2
    finally:
        sweeper.close()


def test_a_retention_below_one_day_is_refused(db: Any) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        retention.purge_expired_cards(db, retention_days=0, now=NOW)
