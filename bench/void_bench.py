"""`python -m bench.void_bench`: the time to void a file of 100k rows in a database of 1M events.

The database is built at COPY speed, server-side (generate_series, no ingestion run): `cards`
cards with a PICKED_UP, a DELIVERY_EXCEPTION and a DELIVERED event each, spread over ten
applied files (one copy per event in event_copy), plus the file to void with `file_rows` rows:

* (1 - shared) of them are RETURNED events only it carries: the void deletes them, and each
  of those cards goes back to DELIVERED (a status change: a version and an outbox row each);
* `shared` of them are copies of other files' DELIVERED events with a smaller phone: the void
  re-merges them (the other file's phone comes back, and so does the card's phone);
* `new_cards` of them are the only event of a card no other file knows (PICKED_UP): the void
  deletes the card (a tombstone and a status-null outbox row each; `python -m bench.scale`'s
  void, a file of new cards, is `--shared 0 --new-cards 1`).

Cards are computed from the events with the same SQL as a void's recompute, so the state is
exactly what ingestion would have built (owner included: the partner of the earliest event;
without it every card's owner "moves" on the void and all its events are merged again).
Then `void_file` runs once (timed, with its per-step timings), and the result is checked. One
PostgreSQL: embedded unless DATABASE_URL is set.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from typing import Any

import psycopg2

from bench.__main__ import postgres_server
from cardstatus.migrate import apply_migrations
from cardstatus.phonebackfill import backfill_phones
from cardstatus.void import void_file

OTHER_FILES = 10
VOID_FILE = OTHER_FILES + 1
T0 = "2026-01-05 06:00:00+00"

BUILD = """
SET LOCAL work_mem = '256MB';
SET LOCAL synchronous_commit = off;
INSERT INTO ingested_file (id, object_key, sha256, meaning_key, partner, outcome, rows_total,
                           rows_accepted, report, started_at)
SELECT f, 'incoming/acme/bench ' || f || ' - export.csv', md5(f::text), 'bench-' || f, 'acme',
       'applied', 0, 0, jsonb_build_object('file_id', f), now()
FROM generate_series(1, %(void_file)s) f;
SELECT setval('ingested_file_id_seq', %(void_file)s);

-- Every card's three events, each carried by one of the ten other files.
CREATE TEMP TABLE base ON COMMIT DROP AS
SELECT 'B' || lpad(i::text, 8, '0') AS card_id, s.status::card_status AS status,
       %(t0)s::timestamptz + i * interval '1 second' + s.h * interval '1 hour' AS occurred_at,
       '+97150' || lpad((i %% 10000000)::text, 7, '0') AS phone,
       CASE WHEN s.status = 'DELIVERY_EXCEPTION' THEN 'User not available' END AS comment,
       CASE WHEN s.status = 'DELIVERY_EXCEPTION' THEN 'recipient_unavailable' END AS reason,
       1 + (i %% %(other_files)s) AS file_id, i
FROM generate_series(0, %(cards)s - 1) i,
     (VALUES ('PICKED_UP', 0), ('DELIVERY_EXCEPTION', 1), ('DELIVERED', 2)) s(status, h);

-- The file to void: RETURNED events only it has, and copies of DELIVERED events with a
-- smaller phone ('+97149...' < '+97150...').
CREATE TEMP TABLE voided ON COMMIT DROP AS
SELECT 'B' || lpad(i::text, 8, '0') AS card_id, 'RETURNED'::card_status AS status,
       %(t0)s::timestamptz + i * interval '1 second' + interval '3 hours' AS occurred_at,
       NULL::text AS phone, i
FROM generate_series(0, %(unique_rows)s - 1) i
UNION ALL
SELECT card_id, status, occurred_at, '+97149' || lpad((i %% 10000000)::text, 7, '0'), i
FROM base
WHERE status = 'DELIVERED' AND i >= %(unique_rows)s AND i < %(unique_rows)s + %(shared_rows)s
UNION ALL
SELECT 'N' || lpad(i::text, 8, '0'), 'PICKED_UP', %(t0)s::timestamptz + i * interval '1 second',
       '+97148' || lpad((i %% 10000000)::text, 7, '0'), i
FROM generate_series(0, %(new_rows)s - 1) i;

INSERT INTO event_copy (file_id, card_id, status, occurred_at, line, phone, comment, reason,
                        partner_row_id, partner)
SELECT file_id, card_id, status, occurred_at, 2 + i / %(other_files)s, phone, comment, reason,
       NULL, 'acme'
FROM base
UNION ALL
SELECT %(void_file)s, card_id, status, occurred_at, 2 + row_number() OVER (ORDER BY i, status)::int,
       phone, NULL, NULL, NULL, 'acme'
FROM voided;

-- Merged events: the smallest phone of their copies; the source is the first copy.
INSERT INTO card_event (card_id, status, occurred_at, comment, reason, phone, partner,
                        source_file_id, source_line, partner_row_id)
SELECT card_id, status, occurred_at, min(comment), min(reason), min(phone COLLATE "C"), 'acme',
       min(file_id), min(line), NULL
FROM event_copy
GROUP BY card_id, status, occurred_at;
"""

PROJECT = """
INSERT INTO card (card_id, status, status_at, comment, reason, phone, phone_at, phone_rank,
                  picked_up_at, delivered_at, returned_at, exception_count, version,
                  owner_partner, first_event_at, first_event_rank)
SELECT e.card_id,
       (array_agg(e.status ORDER BY e.occurred_at DESC, e.status DESC))[1],
       (array_agg(e.occurred_at ORDER BY e.occurred_at DESC, e.status DESC))[1],
       (array_agg(e.comment ORDER BY e.occurred_at DESC, e.status DESC))[1],
       (array_agg(e.reason ORDER BY e.occurred_at DESC, e.status DESC))[1],
       (array_agg(e.phone ORDER BY e.occurred_at DESC, e.status DESC)
           FILTER (WHERE e.phone IS NOT NULL))[1],
       (array_agg(e.occurred_at ORDER BY e.occurred_at DESC, e.status DESC)
           FILTER (WHERE e.phone IS NOT NULL))[1],
       (array_agg(e.status ORDER BY e.occurred_at DESC, e.status DESC)
           FILTER (WHERE e.phone IS NOT NULL))[1],
       max(e.occurred_at) FILTER (WHERE e.status = 'PICKED_UP'),
       max(e.occurred_at) FILTER (WHERE e.status = 'DELIVERED'),
       max(e.occurred_at) FILTER (WHERE e.status = 'RETURNED'),
       count(*) FILTER (WHERE e.status = 'DELIVERY_EXCEPTION'),
       1,
       'acme',
       min(e.occurred_at),
       (array_agg(e.status ORDER BY e.occurred_at, e.status))[1]
FROM card_event e
GROUP BY e.card_id
"""


def build(
    url: str, events: int, file_rows: int, shared: float, new_cards: float = 0.0
) -> dict[str, int]:
    shared_rows = int(file_rows * shared)
    new_rows = int(file_rows * new_cards)
    unique_rows = file_rows - shared_rows - new_rows
    cards = (events - unique_rows - new_rows) // 3
    if unique_rows < 0 or cards < unique_rows + shared_rows:
        raise SystemExit("too few events for that file: raise --events or lower --file-rows")
    params = {
        "t0": T0,
        "cards": cards,
        "unique_rows": unique_rows,
        "shared_rows": shared_rows,
        "new_rows": new_rows,
        "other_files": OTHER_FILES,
        "void_file": VOID_FILE,
    }
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(BUILD, params)
            cur.execute("SET LOCAL work_mem = '256MB'")
            cur.execute(PROJECT)
        conn.commit()
        backfill_phones(conn, batch=50_000)  # the numbers become hashes (README "Privacy")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE card_event, event_copy, card, ingested_file")
            cur.execute("SELECT count(*) FROM card_event")
            total = cur.fetchone()[0]  # type: ignore[index]
    finally:
        conn.close()
    return {
        "events": int(total),
        "cards": cards,
        "file_rows": file_rows,
        "unique_rows": unique_rows,
        "shared_rows": shared_rows,
        "new_rows": new_rows,
    }


def run(url: str, shape: dict[str, int]) -> dict[str, Any]:
    conn = psycopg2.connect(url)
    try:
        started = time.perf_counter()
        result = void_file(conn, VOID_FILE, "bench: wrong file", "bench")
        seconds = time.perf_counter() - started
        with conn.cursor() as cur:
            cur.execute(
                "SELECT (SELECT count(*) FROM card_event),"
                " (SELECT count(*) FROM card WHERE status = 'RETURNED'),"
                " (SELECT count(*) FROM status_outbox)"
            )
            events_left, returned, outbox = cur.fetchone()  # type: ignore[misc]
        conn.commit()
    finally:
        conn.close()
    removed = shape["unique_rows"] + shape["new_rows"]
    assert result.events_removed == removed, result
    assert result.events_remerged == shape["shared_rows"], result
    assert result.cards_deleted == shape["new_rows"], result
    assert result.status_changes == removed == outbox, result
    assert events_left == shape["events"] - removed and returned == 0
    return {
        "void_s": round(seconds, 2),
        "rows_per_s": round(shape["file_rows"] / seconds),
        "result": result.to_json(),
        "timings_ms": result.timings,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.void_bench", description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the database")
    parser.add_argument("--file-rows", type=int, default=100_000, help="rows of the voided file")
    parser.add_argument(
        "--shared", type=float, default=0.2, help="share of its rows other files carry"
    )
    parser.add_argument(
        "--new-cards",
        type=float,
        default=0.0,
        help="share of its rows that are the only event of a card (the void deletes the card)",
    )
    args = parser.parse_args(argv)
    from cardstatus_dev.database import drop_database, ensure_database

    with postgres_server() as (admin_url, server):
        name = f"void_bench_{uuid.uuid4().hex[:8]}"
        url = ensure_database(admin_url, name)
        try:
            conn = psycopg2.connect(url)
            try:
                apply_migrations(conn)
            finally:
                conn.close()
            started = time.perf_counter()
            shape = build(url, args.events, args.file_rows, args.shared, args.new_cards)
            built_s = time.perf_counter() - started
            out = {"server": server, "cpus": os.cpu_count(), **shape, "build_s": round(built_s, 1)}
            out.update(run(url, shape))
        finally:
            drop_database(admin_url, name)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
