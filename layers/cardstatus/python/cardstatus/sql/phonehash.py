"""SQL of the phone-hash backfill and key status (cardstatus.phonebackfill; README "Privacy").

The backfill turns the `phone` columns of rows written before migration 0013 (or by the
previous release's code during a rollout) into phone_hash/phone_key/phone_last4 and NULLs
them. The hashes are computed in Python (the key never reaches the database): the distinct
numbers are read, hashed, COPYed into a temporary map, and each table is updated from it in
batches of rows (one short transaction per batch: no long lock on a busy table).
"""

from __future__ import annotations

# The tables that held a full phone (0001, 0006) and now hold its hash.
PHONE_TABLES = ("card", "card_event", "event_copy")

# Distinct numbers still stored in full, a batch at a time.
DISTINCT_PHONES = """
SELECT DISTINCT phone FROM {table} WHERE phone IS NOT NULL LIMIT %(limit)s
"""

CREATE_MAP = """
CREATE TEMP TABLE IF NOT EXISTS phone_hash_map (
    phone       text PRIMARY KEY,
    phone_hash  text     NOT NULL,
    phone_key   smallint NOT NULL,
    phone_last4 text     NOT NULL
);
TRUNCATE phone_hash_map
"""

COPY_MAP = "COPY phone_hash_map (phone, phone_hash, phone_key, phone_last4) FROM STDIN"

# The rows of the mapped numbers; the number itself is NULLed in the same statement.
APPLY_MAP = """
UPDATE {table} t
SET phone_hash = m.phone_hash, phone_key = m.phone_key, phone_last4 = m.phone_last4,
    phone = NULL
FROM phone_hash_map m
WHERE t.phone = m.phone
"""

DROP_MAP = "DROP TABLE IF EXISTS phone_hash_map"

# Rows per key version and table ("which keys are still needed"), and numbers not yet hashed.
KEY_VERSIONS = """
SELECT 'card' AS tbl, phone_key, count(*) FROM card WHERE phone_hash IS NOT NULL GROUP BY 2
UNION ALL
SELECT 'card_event', phone_key, count(*) FROM card_event WHERE phone_hash IS NOT NULL GROUP BY 2
UNION ALL
SELECT 'event_copy', phone_key, count(*) FROM event_copy WHERE phone_hash IS NOT NULL GROUP BY 2
ORDER BY 1, 2
"""

UNHASHED = """
SELECT (SELECT count(*) FROM card WHERE phone IS NOT NULL),
       (SELECT count(*) FROM card_event WHERE phone IS NOT NULL),
       (SELECT count(*) FROM event_copy WHERE phone IS NOT NULL)
"""
