"""The limit: COPY of the exact rows an ingest stored, into clones of every table it filled.

Run on the database `cardstatus ingest` has just filled: the rows of card_event (events),
event_copy (provenance), card (projection), status_outbox (status-change events) and
file_card_change (the cards each file changed, 0016) are dumped with COPY TO (not timed), then
loaded with COPY FROM into `bench_<table>` clones (CREATE TABLE … (LIKE … INCLUDING ALL): the same
columns, defaults, constraints and indexes) in one transaction; COPY + commit is timed.
Prints one JSON line: rows per table, seconds. Run as a child process by ``python -m bench``
so that its peak RSS is measured alone.
Usage: ``python -m bench.copy_limit DATABASE_URL``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import psycopg2

TABLES = ("card_event", "event_copy", "card", "status_outbox", "file_card_change")


def main() -> None:
    url = sys.argv[1]
    conn = psycopg2.connect(url)
    rows: dict[str, int] = {}
    with conn.cursor() as cur:  # (older schemas lack provenance/outbox (0006), file links (0016))
        cur.execute(
            "SELECT t FROM unnest(%s::text[]) t WHERE to_regclass(t) IS NOT NULL", (list(TABLES),)
        )
        tables = [r[0] for r in cur.fetchall()]
    with tempfile.TemporaryDirectory(prefix="cardstatus-copy-") as tmp:
        with conn.cursor() as cur:
            for table in tables:
                with open(Path(tmp) / table, "wb") as out:
                    cur.copy_expert(f"COPY {table} TO STDOUT", out)
                rows[table] = cur.rowcount
                cur.execute(f"DROP TABLE IF EXISTS bench_{table}")
                cur.execute(f"CREATE TABLE bench_{table} (LIKE {table} INCLUDING ALL)")
        conn.commit()
        with conn.cursor() as cur:
            cur.execute("CHECKPOINT")
        conn.commit()
        started = time.perf_counter()
        with conn.cursor() as cur:
            for table in tables:
                with open(Path(tmp) / table, "rb") as handle:
                    cur.copy_expert(f"COPY bench_{table} FROM STDIN", handle, size=1 << 16)
        conn.commit()
        seconds = time.perf_counter() - started
    with conn.cursor() as cur:
        for table in tables:
            cur.execute(f"DROP TABLE bench_{table}")
    conn.commit()
    conn.close()
    print(json.dumps({"rows": rows, "seconds": seconds}))


if __name__ == "__main__":
    main()
