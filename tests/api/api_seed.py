"""Test data for the API: cards and events written with plain SQL (same shape ingestion writes).

Phones are written to the old `phone` columns and then hashed by the backfill of migration
0013 (cardstatus.phonebackfill), as a database upgraded from before 0013 would be: the
database ends up holding only hashes and last 4 digits (README "Privacy")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cardstatus.model import STATUS_RANK, CardStatus
from cardstatus.phonebackfill import backfill_phones


@dataclass(frozen=True)
class Ev:
    status: str
    at: str  # ISO 8601 with offset
    phone: str | None = None
    comment: str | None = None
    reason: str | None = None
    partner: str = "default"


# Mirrors /work/shared/samples (times converted from Asia/Dubai), plus a second card of the
# 585949014 phone so by-phone answers have other_cards.
SAMPLE_CARDS: dict[str, list[Ev]] = {
    "ZYW8827": [
        Ev("PICKED_UP", "2023-11-12T19:59:00Z", "+971585949014"),
        Ev("DELIVERED", "2023-11-13T09:34:56Z", "+971585949014", "DELIVERED"),
    ],
    "ZYW8890": [
        Ev("PICKED_UP", "2023-11-11T23:45:00Z", "+971534534534"),
        Ev(
            "DELIVERY_EXCEPTION",
            "2023-11-13T10:00:00Z",
            "+971534534534",
            "User not available",
            "recipient_unavailable",
        ),
        Ev("RETURNED", "2023-11-14T08:00:00Z", "+971534534534"),
    ],
    "ZYW7631": [
        Ev("PICKED_UP", "2023-11-13T07:02:00Z", "+971545576586"),
        Ev(
            "DELIVERY_EXCEPTION",
            "2023-11-13T12:00:00Z",
            "+971545576586",
            "User declined to accept package",
            "refused",
        ),
        Ev("DELIVERED", "2023-11-14T12:34:56Z", "+971545576586", "DELIVERED"),
    ],
    "ZYW1111": [
        Ev("PICKED_UP", "2023-10-01T08:00:00Z", "+971585949014"),
        Ev("DELIVERED", "2023-10-02T08:00:00Z", "+971585949014"),
    ],
    "NOPHONE1": [Ev("PICKED_UP", "2023-11-10T08:00:00Z")],
}


def _key(ev: Ev) -> tuple[datetime, int]:
    return datetime.fromisoformat(ev.at), STATUS_RANK[CardStatus(ev.status)]


def insert_file(cur: Any, name: str = "seed.csv") -> int:
    cur.execute(
        """INSERT INTO ingested_file (object_key, partner, outcome, report, started_at)
           VALUES (%s, 'default', 'applied', '{}', now()) RETURNING id""",
        (name,),
    )
    return int(cur.fetchone()[0])


def seed_cards(conn: Any, cards: dict[str, list[Ev]] | None = None) -> None:
    """Insert events and the card projection (current status, phone of the latest phone event)."""
    cards = SAMPLE_CARDS if cards is None else cards
    with conn.cursor() as cur:
        file_id = insert_file(cur)
        line = 1
        for card_id, events in cards.items():
            for ev in events:
                line += 1
                cur.execute(
                    """INSERT INTO card_event (card_id, status, occurred_at, comment, reason, phone,
                                               partner, source_file_id, source_line)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                    (
                        card_id,
                        ev.status,
                        ev.at,
                        ev.comment,
                        ev.reason,
                        ev.phone,
                        ev.partner,
                        file_id,
                        line,
                    ),
                )
            current = max(events, key=_key)
            with_phone = [e for e in events if e.phone]
            phone_ev = max(with_phone, key=_key) if with_phone else None

            def latest(status: str, evs: list[Ev] = events) -> str | None:
                times = [e.at for e in evs if e.status == status]
                return max(times, key=datetime.fromisoformat) if times else None

            cur.execute(
                """INSERT INTO card (card_id, status, status_at, comment, reason, phone, phone_at,
                                     phone_rank, picked_up_at, delivered_at, returned_at,
                                     exception_count)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                (
                    card_id,
                    current.status,
                    current.at,
                    current.comment,
                    current.reason,
                    phone_ev.phone if phone_ev else None,
                    phone_ev.at if phone_ev else None,
                    phone_ev.status if phone_ev else None,
                    latest("PICKED_UP"),
                    latest("DELIVERED"),
                    latest("RETURNED"),
                    sum(1 for e in events if e.status == "DELIVERY_EXCEPTION"),
                ),
            )
    conn.commit()
    backfill_phones(conn)


# Many cards fast: N cards, every 7th sharing a phone with the previous one, 2 events each.
BULK_SQL = """
INSERT INTO ingested_file (id, object_key, partner, outcome, report, started_at)
VALUES (1000000, 'bulk.csv', 'bulk', 'applied', '{}', now());

INSERT INTO card (card_id, status, status_at, phone, phone_at, phone_rank, picked_up_at,
                  delivered_at, exception_count)
SELECT 'B' || lpad(g::text, 9, '0'),
       CASE WHEN g %% 3 = 0 THEN 'PICKED_UP' ELSE 'DELIVERED' END::card_status,
       timestamptz '2023-01-01 00:00Z' + g * interval '1 minute',
       '+9715' || lpad(((g / 7) %% 100000000)::text, 8, '0'),
       timestamptz '2023-01-01 00:00Z' + g * interval '1 minute',
       'PICKED_UP',
       timestamptz '2023-01-01 00:00Z' + g * interval '1 minute' - interval '1 day',
       CASE WHEN g %% 3 = 0 THEN NULL
            ELSE timestamptz '2023-01-01 00:00Z' + g * interval '1 minute' END,
       0
FROM generate_series(1, %(n)s) AS g;

INSERT INTO card_event (card_id, status, occurred_at, phone, partner, source_file_id, source_line)
SELECT card_id, 'PICKED_UP'::card_status, picked_up_at, phone, 'bulk', 1000000, 1 FROM card
WHERE card_id LIKE 'B%%'
UNION ALL
SELECT card_id, 'DELIVERED'::card_status, delivered_at, phone, 'bulk', 1000000, 2 FROM card
WHERE card_id LIKE 'B%%' AND delivered_at IS NOT NULL;

ANALYZE card;
ANALYZE card_event;
"""


def seed_bulk(conn: Any, n: int) -> None:
    with conn.cursor() as cur:
        cur.execute(BULK_SQL, {"n": n})
    conn.commit()
    backfill_phones(conn)
    # The backfill rewrote every row: vacuum so that plans see a table like ingestion leaves.
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("VACUUM ANALYZE card")
        cur.execute("VACUUM ANALYZE card_event")
    conn.autocommit = False


def bulk_card_id(g: int) -> str:
    return "B" + str(g).zfill(9)


def bulk_phone(g: int) -> str:
    return "+9715" + str((g // 7) % 100000000).zfill(8)
