"""Read SQL at scale: every lookup is an index scan (EXPLAIN on >= 100k cards), answers stay right."""

from __future__ import annotations

from typing import Any

import pytest
from api_seed import bulk_card_id, bulk_phone, seed_bulk

from cardstatus import cards
from cardstatus.phonehash import lookup_hashes
from cardstatus.sql import cards as sql

N_CARDS = 100_000


@pytest.fixture
def bulk_db(db: Any) -> Any:
    seed_bulk(db, N_CARDS)
    return db


def _plan(conn: Any, query: str, params: dict[str, Any]) -> str:
    with conn.cursor() as cur:
        cur.execute("EXPLAIN " + query, params)
        plan = "\n".join(row[0] for row in cur.fetchall())
    conn.rollback()
    return plan


def test_every_lookup_uses_an_index_and_answers_right(bulk_db: Any) -> None:
    """One test (seeding 100k cards costs seconds): plans first, then the answers."""
    g = 50_003
    statements = {
        "CARD_BY_ID": (sql.CARD_BY_ID, {"card_id": bulk_card_id(g)}),
        "CARD_BY_ID_AND_PHONE": (
            sql.CARD_BY_ID_AND_PHONE,
            {"card_id": bulk_card_id(g), "phone_hashes": lookup_hashes(bulk_phone(g))},
        ),
        "CARDS_BY_PHONE": (
            sql.CARDS_BY_PHONE,
            {"phone_hashes": lookup_hashes(bulk_phone(g)), "limit": cards.MAX_CARDS_PER_PHONE},
        ),
        "LATEST_CARD_BY_PHONE": (
            sql.LATEST_CARD_BY_PHONE,
            {"phone_hashes": lookup_hashes(bulk_phone(g)), "limit": cards.MAX_CARDS_PER_PHONE + 1},
        ),
        "CARD_BY_ID_AND_PHONE_WITH_OTHERS": (
            sql.CARD_BY_ID_AND_PHONE_WITH_OTHERS,
            {
                "card_id": bulk_card_id(g),
                "phone_hashes": lookup_hashes(bulk_phone(g)),
                "limit": 100,
            },
        ),
        "CARD_SUMMARIES_BY_PHONE": (
            sql.CARD_SUMMARIES_BY_PHONE,
            {
                "phone_hashes": lookup_hashes(bulk_phone(g)),
                "exclude_card_id": bulk_card_id(g),
                "limit": 100,
            },
        ),
    }
    for name, (query, params) in statements.items():
        plan = _plan(bulk_db, query, params)
        assert "Seq Scan" not in plan, f"{name}:\n{plan}"
        assert "Index" in plan, f"{name}:\n{plan}"
        if "card_event" in query:
            assert "card_event_pkey" in plan, f"{name}:\n{plan}"
        if "c.phone_hash = ANY" in query and "c.card_id = %(card_id)s" not in query:
            assert "card_phone_hash_latest" in plan, f"{name}:\n{plan}"
        else:
            assert "card_pkey" in plan, f"{name}:\n{plan}"
        if "o.phone_hash = ANY" in query:  # the other cards of the phone: its index too
            assert "card_phone_hash_latest" in plan, f"{name}:\n{plan}"
    # By phone alone, only the latest card's history is read (the LATERAL is gated).
    with bulk_db.cursor() as cur:
        cur.execute(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + sql.LATEST_CARD_BY_PHONE,
            {"phone_hashes": lookup_hashes(bulk_phone(g)), "limit": cards.MAX_CARDS_PER_PHONE + 1},
        )
        analyzed = "\n".join(row[0] for row in cur.fetchall())
    bulk_db.rollback()
    history_scans = [line for line in analyzed.splitlines() if "card_event_pkey" in line]
    assert history_scans and all("loops=1)" in line for line in history_scans), analyzed
    _lookups_at_scale(bulk_db)


def _lookups_at_scale(bulk_db: Any) -> None:
    g = 70_000  # g // 7 == 10_000: cards 70_000..70_006 share one phone
    body = cards.find_card_status(bulk_db, None, bulk_phone(g))
    ids = [body["card_id"]] + [c["card_id"] for c in body["other_cards"]]
    assert sorted(ids) == [bulk_card_id(i) for i in range(70_000, 70_007)]
    assert body["card_id"] == bulk_card_id(70_006)  # latest status_at
    times = [c["status_at"] for c in body["other_cards"]]
    assert times == sorted(times, reverse=True)

    both = cards.find_card_status(bulk_db, bulk_card_id(70_001), bulk_phone(g))
    assert both["card_id"] == bulk_card_id(70_001)
    assert [c["card_id"] for c in both["other_cards"]] == [
        bulk_card_id(i) for i in (70_006, 70_005, 70_004, 70_003, 70_002, 70_000)
    ]
    assert both["truncated"] is False

    card = cards.find_card_status(bulk_db, bulk_card_id(70_001), None)
    assert card["status"] == "DELIVERED"
    assert [h["status"] for h in card["history"]] == ["DELIVERED", "PICKED_UP"]
    assert card["user_phone"] == "*" * 8 + bulk_phone(g)[-4:]
