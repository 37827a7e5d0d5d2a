"""SQL of the status-change events publisher and reader (`cardstatus.events`) on the outbox
table `status_outbox` (migration 0006; ingestion's writes are in sql/outbox.py).

Rows are claimed with `FOR UPDATE SKIP LOCKED`: the ingest function publishing its file's
rows and the sweeper publishing everything left pending never send the same row at the same
time; each skips what the other holds and re-checks `published_at IS NULL` on rows committed
meanwhile. Claims walk forward by id (`id > %(after)s`) so that rows that fail in one run are
not claimed again by the same run.

`detail_type` (0015) is the row's EventBridge detail-type; NULL = CardStatusChanged.

Every claim reads the partial index `status_outbox_pending (id) WHERE published_at IS NULL`.
"""

from __future__ import annotations

_CLAIM = """
SELECT id, event_id::text, detail, detail_type
FROM status_outbox
WHERE published_at IS NULL
  AND id > %(after)s
  {where}
ORDER BY id
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED
"""

# One file's rows, by the id range its report names (a statement's ids; rows of a concurrent
# file inside the range are pending rows too, publishing them early is harmless) ...
CLAIM_RANGE = _CLAIM.format(where="AND id BETWEEN %(first_id)s AND %(last_id)s")
# ... or by the file id in their detail (pending rows only: a short list).
CLAIM_FILE = _CLAIM.format(where="AND detail->>'file_id' = %(file_id)s")
# Everything pending that is at least min_age_s old, oldest first (the sweeper).
CLAIM_PENDING = _CLAIM.format(
    where="AND created_at <= now() - make_interval(secs => %(min_age_s)s)"
)

# Run in each claim's transaction, before the claim. Right after a big file commits, the
# table's statistics still say "few pending rows" (autovacuum analyzes it a minute later), and
# the planner then reads ALL pending rows through a bitmap scan and sorts them for every claim
# of `limit` rows: O(n^2) for n pending rows (150k rows: ~0.2 s per claim, minutes in all).
# Without sorting allowed it walks status_outbox_pending in id order and stops at the limit
# (~1 ms per claim whatever the statistics say). bench/local_publish.py measures it.
CLAIM_IN_ID_ORDER = "SET LOCAL enable_sort = off"

MARK_PUBLISHED = """
UPDATE status_outbox
SET published_at = now(), attempts = attempts + 1, last_error = NULL
WHERE id = ANY(%(ids)s::bigint[])
"""

MARK_FAILED = """
UPDATE status_outbox AS o
SET attempts = o.attempts + 1, last_error = f.error
FROM unnest(%(ids)s::bigint[], %(errors)s::text[]) AS f(id, error)
WHERE o.id = f.id
"""

PENDING_STATS = """
SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8
FROM status_outbox
WHERE published_at IS NULL
"""

# `cardstatus events`: the outbox oldest first, optionally one card / since a time / pending.
LIST_EVENTS = """
SELECT event_id::text, detail, published_at, detail_type
FROM status_outbox
WHERE (%(card_id)s::text IS NULL OR card_id = %(card_id)s)
  AND (%(since)s::timestamptz IS NULL OR created_at >= %(since)s)
  AND (NOT %(pending)s OR published_at IS NULL)
ORDER BY id
"""
