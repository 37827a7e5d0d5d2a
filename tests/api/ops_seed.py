"""Test data for the operations routes: many files (with rejects) and stuck cards, in plain SQL."""

from __future__ import annotations

from typing import Any

PARTNERS = ("acme", "speedy", "swiftpost", "quark", "zed")

# N files, newest = highest id, one finished every minute from 2026-01-01; partner by id % 5;
# every 10th rejected_file, every 7th duplicate_file; file 1..N each with (id % 4) rejected rows.
BULK_FILES_SQL = """
INSERT INTO ingested_file (id, object_key, partner, outcome, rows_total, rows_accepted,
                           rows_rejected, warnings, report, started_at, finished_at)
SELECT g,
       'incoming/' || (ARRAY['acme','speedy','swiftpost','quark','zed'])[g %% 5 + 1]
           || '/file ' || g || ' Delivered.csv',
       (ARRAY['acme','speedy','swiftpost','quark','zed'])[g %% 5 + 1],
       CASE WHEN g %% 10 = 0 THEN 'rejected_file'
            WHEN g %% 7 = 0 THEN 'duplicate_file'
            ELSE 'applied' END::file_outcome,
       10, 10 - g %% 4, g %% 4, 0,
       jsonb_build_object('outcome', CASE WHEN g %% 10 = 0 THEN 'rejected_file'
                                          WHEN g %% 7 = 0 THEN 'duplicate_file'
                                          ELSE 'applied' END,
                          'reason', CASE WHEN g %% 10 = 0 THEN 'no card id column' END),
       timestamptz '2026-01-01 00:00Z' + g * interval '1 minute' - interval '2 seconds',
       timestamptz '2026-01-01 00:00Z' + g * interval '1 minute'
FROM generate_series(1, %(n)s) AS g;

INSERT INTO rejected_row (file_id, line, reason)
SELECT f, l + 1, 'invalid date: line ' || (l + 1)
FROM generate_series(1, %(n)s) AS f, generate_series(1, 3) AS l
WHERE l <= f %% 4;

SELECT setval('ingested_file_id_seq', %(n)s);
ANALYZE ingested_file;
ANALYZE rejected_row;
"""


def seed_files(conn: Any, n: int) -> None:
    with conn.cursor() as cur:
        cur.execute(BULK_FILES_SQL, {"n": n})
    conn.commit()
