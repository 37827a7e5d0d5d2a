"""The limit: psycopg2 ``copy_expert`` of already-normalised rows into ``card_event``.

Same table, same indexes, constraints and foreign key as the pipeline writes to; one
transaction. Prints one JSON line: rows, seconds (COPY + commit). Run as a child process
by ``python -m bench`` so that its peak RSS is measured alone.
Usage: ``python -m bench.copy_limit DATABASE_URL EXPECTED_COPY_FILE``.
"""

from __future__ import annotations

import json
import sys
import time

import psycopg2

from bench.generate import EXPECTED_COLUMNS

BENCH_FILE_ROW = (
    "INSERT INTO ingested_file (id, object_key, partner, outcome, report, started_at)"
    " VALUES (1, 'bench', 'default', 'applied', '{}', now())"
)


def main() -> None:
    url, path = sys.argv[1], sys.argv[2]
    conn = psycopg2.connect(url)
    with conn.cursor() as cur:
        cur.execute(BENCH_FILE_ROW)  # the rows' source_file_id (foreign key)
    conn.commit()
    started = time.perf_counter()
    with conn.cursor() as cur, open(path, "rb") as handle:
        cur.copy_expert(f"COPY card_event ({EXPECTED_COLUMNS}) FROM STDIN", handle, size=1 << 16)
        rows = cur.rowcount
    conn.commit()
    seconds = time.perf_counter() - started
    conn.close()
    print(json.dumps({"rows": rows, "seconds": seconds}))


if __name__ == "__main__":
    main()
