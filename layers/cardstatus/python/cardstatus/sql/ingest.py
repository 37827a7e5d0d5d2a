"""Every SQL statement of the ingestion write path.

Storage (migration 0006): `event_copy` holds every file's copy of every event (provenance);
`card_event` holds the merged event per (card_id, status, occurred_at), what the API reads;
`card` is the projection. One file = one transaction:

    staging COPY (per chunk) → event_copy INSERT → card_event merge-upsert (RETURNING into
    changed_event) ... → source/conflicts pass → card projection + status outbox

Merge rule (order-independent, so any order of files gives the same state), per event:
- phone, partner_row_id, partner: non-null beats null; among different non-null values the
  smallest in byte order (COLLATE "C") wins — LEAST() ignores NULLs, which is exactly that rule;
- comment and reason travel together: the pair of the copy whose (comment, reason) is smallest
  (non-null before null, byte order), so a reason always belongs to its comment;
- source_file_id/source_line: the copy with the smallest (partner, file meaning_key, line) —
  independent of file ids, which depend on arrival order.
"""

from cardstatus.sql.outbox import outbox_insert

# Per-file transaction settings (ingest connects to the instance directly, never through the proxy).
# statement_timeout: see cardstatus.ingest.limits (below the function timeout).
TUNE_TRANSACTION = "SET LOCAL work_mem = '128MB'; SET LOCAL statement_timeout = %(timeout_ms)s"

# Serialises work on the same meaning so two copies of one file cannot both be applied.
LOCK_MEANING = "SELECT pg_advisory_xact_lock(hashtextextended(%(meaning_key)s, 0))"

# Serialises the reports of concurrent deliveries of one object (bucket, key, version, etag).
LOCK_OBJECT = "SELECT pg_advisory_xact_lock(hashtextextended(%(identity)s, 1))"

FIND_SAME_OBJECT = """
SELECT id, outcome, report
FROM ingested_file
WHERE bucket IS NOT DISTINCT FROM %(bucket)s
  AND object_key = %(key)s
  AND version_id IS NOT DISTINCT FROM %(version_id)s
  AND etag IS NOT DISTINCT FROM %(etag)s
  AND outcome IN ('applied', 'duplicate_file', 'rejected_file')
  -- A voided file's own object version delivered again (SQS is at-least-once) is still a
  -- redelivery; only without a version id (unversioned bucket, local files) can a re-upload of
  -- the same bytes not be told from a redelivery, and then the voided file may apply again.
  AND (voided_at IS NULL OR %(version_id)s IS NOT NULL)
ORDER BY id
LIMIT 1
"""

# The applied, not voided file with the same meaning. Files applied before migration 0006 have
# no meaning_key: they match on the same bytes, partner and event type from the name.
FIND_APPLIED_MEANING = """
SELECT id, bucket, object_key, report
FROM ingested_file
WHERE outcome = 'applied' AND voided_at IS NULL
  AND (meaning_key = %(meaning_key)s
       OR (meaning_key IS NULL AND sha256 = %(sha256)s AND partner = %(partner)s
           AND (event_type IS NULL OR event_type = %(name_event_type)s)))
ORDER BY id
LIMIT 1
"""

# staging_event receives each chunk by COPY (temp: no WAL); changed_event collects the
# card_event rows this file inserted or merged into (for the projection, computed once).
CREATE_STAGING = """
CREATE TEMP TABLE staging_event (
    source_line    integer     NOT NULL,
    card_id        text        NOT NULL,
    status         card_status NOT NULL,
    occurred_at    timestamptz NOT NULL,
    phone          text,
    comment        text,
    reason         text,
    partner_row_id text
) ON COMMIT DROP;
CREATE TEMP TABLE changed_event (
    card_id        text        NOT NULL,
    status         card_status NOT NULL,
    occurred_at    timestamptz NOT NULL,
    comment        text,
    reason         text,
    phone          text,
    partner        text        NOT NULL,
    inserted       boolean     NOT NULL,
    chunk          integer     NOT NULL
) ON COMMIT DROP
"""

COPY_STAGING = (
    "COPY staging_event (source_line, card_id, status, occurred_at, phone, comment, reason,"
    " partner_row_id) FROM STDIN"
)

INSERT_FILE = """
INSERT INTO ingested_file (
    bucket, object_key, version_id, etag, sha256, meaning_key, size_bytes, partner, event_type,
    outcome, rows_total, rows_accepted, rows_duplicate, rows_rejected, warnings, report,
    started_at, finished_at, duration_ms)
VALUES (
    %(bucket)s, %(key)s, %(version_id)s, %(etag)s, %(sha256)s, %(meaning_key)s, %(size_bytes)s,
    %(partner)s, %(event_type)s, %(outcome)s, %(rows_total)s, %(rows_accepted)s,
    %(rows_duplicate)s, %(rows_rejected)s, %(warnings)s, %(report)s, %(started_at)s,
    clock_timestamp(), %(duration_ms)s)
RETURNING id
"""

UPDATE_FILE_REPORT = """
UPDATE ingested_file
SET sha256 = %(sha256)s, meaning_key = %(meaning_key)s, size_bytes = %(size_bytes)s,
    outcome = %(outcome)s,
    rows_total = %(rows_total)s, rows_accepted = %(rows_accepted)s,
    rows_duplicate = %(rows_duplicate)s, rows_rejected = %(rows_rejected)s,
    warnings = %(warnings)s, report = %(report)s, finished_at = clock_timestamp(),
    duration_ms = %(duration_ms)s
WHERE id = %(id)s
"""

SET_MEANING = """
UPDATE ingested_file SET sha256 = %(sha256)s, meaning_key = %(meaning_key)s
WHERE id = %(file_id)s
"""

COPY_REJECTS = "COPY rejected_row (file_id, line, reason, card_id, raw_row) FROM STDIN"

# --- a file in progress (migration 0016) ------------------------------------------------------
# The file's row is committed with outcome 'in_progress' before its rows are read, in a short
# transaction of its own, so GET /files shows it while it is ingested; the file's transaction
# turns it into the final outcome (UPDATE_FILE_REPORT). The run holds a session advisory lock
# on the row's id while it lives (released by the transaction that makes the row final, just
# before its commit, or by the server when the connection dies), so a row whose lock can be
# taken belongs to a run that crashed.
IN_PROGRESS_LOCK = "SELECT pg_advisory_lock(hashtextextended('in_progress:' || %(file_id)s, 2))"
IN_PROGRESS_UNLOCK = "SELECT pg_advisory_unlock(hashtextextended('in_progress:' || %(file_id)s, 2))"

# Stale in-progress rows of the same object (a run that crashed before it finished): removed
# when their run's lock is free. Nothing references them (their copies were rolled back).
DELETE_STALE_IN_PROGRESS = """
DELETE FROM ingested_file
WHERE id IN (
    SELECT id FROM ingested_file
    WHERE outcome = 'in_progress'
      AND bucket IS NOT DISTINCT FROM %(bucket)s
      AND object_key = %(key)s
      AND version_id IS NOT DISTINCT FROM %(version_id)s
      AND etag IS NOT DISTINCT FROM %(etag)s
      AND pg_try_advisory_xact_lock(hashtextextended('in_progress:' || id, 2))
)
"""

# Rows read so far (from a second connection, while the file's transaction runs).
SET_PROGRESS = """
UPDATE ingested_file SET rows_total = %(rows)s
WHERE id = %(file_id)s AND outcome = 'in_progress'
"""

# A run's own in-progress row, when the run ends without a report of its own (a redelivery
# answered with the stored report, or a failure that will be retried).
DELETE_IN_PROGRESS = "DELETE FROM ingested_file WHERE id = %(file_id)s AND outcome = 'in_progress'"

SAVEPOINT = "SAVEPOINT chunk"
RELEASE = "RELEASE SAVEPOINT chunk"
ROLLBACK_TO = "ROLLBACK TO SAVEPOINT chunk"

# Fast path: the chunk's copies go to event_copy as they are. A unique violation means the file
# carries one event twice (in this chunk, or in this and an earlier chunk): the caller rolls back
# to the savepoint and uses MERGE_FILE_COPIES instead.
INSERT_COPIES = """
INSERT INTO event_copy (
    file_id, card_id, status, occurred_at, line, phone, comment, reason, partner_row_id, partner)
SELECT %(file_id)s, card_id, status, occurred_at, source_line, phone, comment, reason,
       partner_row_id, %(partner)s
FROM staging_event
"""

# Slow path, for a chunk that repeats an event of the file: lines of one event are merged into
# one copy (first line; fields by the merge rule), and so is an earlier chunk's copy. An event
# whose lines carry different non-null phones or comments is one warning, on its last line.
# Runs before the chunk's rows are merged, so event_copy holds only earlier chunks.
IN_FILE_CONFLICTS = """
WITH keys AS (SELECT DISTINCT card_id, status, occurred_at FROM staging_event),
copies AS (
    SELECT source_line AS line, card_id, status, occurred_at, phone, comment FROM staging_event
    UNION ALL
    SELECT c.line, c.card_id, c.status, c.occurred_at, c.phone, c.comment
    FROM keys k
    JOIN event_copy c
      ON c.file_id = %(file_id)s
     AND (c.card_id, c.status, c.occurred_at) = (k.card_id, k.status, k.occurred_at)
)
SELECT max(line), card_id, status::text, min(line),
       concat_ws(' and ', CASE WHEN count(DISTINCT phone) > 1 THEN 'phone' END,
                 CASE WHEN count(DISTINCT comment) > 1 THEN 'comment' END)
FROM copies
GROUP BY card_id, status, occurred_at
HAVING count(DISTINCT phone) > 1 OR count(DISTINCT comment) > 1
ORDER BY 1
"""

MERGE_FILE_COPIES = """
CREATE TEMP TABLE merged_chunk ON COMMIT DROP AS
SELECT card_id, status, occurred_at,
       min(source_line) AS source_line,
       min(phone COLLATE "C") AS phone,
       min(comment COLLATE "C") AS comment,
       (array_agg(reason ORDER BY comment COLLATE "C" NULLS LAST, reason COLLATE "C" NULLS LAST))[1]
           AS reason,
       min(partner_row_id COLLATE "C") AS partner_row_id
FROM staging_event
GROUP BY card_id, status, occurred_at;
INSERT INTO event_copy AS c (
    file_id, card_id, status, occurred_at, line, phone, comment, reason, partner_row_id, partner)
SELECT %(file_id)s, card_id, status, occurred_at, source_line, phone, comment, reason,
       partner_row_id, %(partner)s
FROM merged_chunk
ORDER BY card_id, status, occurred_at
ON CONFLICT (file_id, card_id, status, occurred_at) DO UPDATE SET
    line = LEAST(c.line, EXCLUDED.line),
    phone = LEAST(c.phone COLLATE "C", EXCLUDED.phone COLLATE "C"),
    comment = LEAST(c.comment COLLATE "C", EXCLUDED.comment COLLATE "C"),
    reason = CASE
        WHEN EXCLUDED.comment IS NOT DISTINCT FROM c.comment
            THEN LEAST(c.reason COLLATE "C", EXCLUDED.reason COLLATE "C")
        WHEN c.comment IS NULL OR EXCLUDED.comment COLLATE "C" < c.comment COLLATE "C"
            THEN EXCLUDED.reason
        ELSE c.reason END,
    partner_row_id = LEAST(c.partner_row_id COLLATE "C", EXCLUDED.partner_row_id COLLATE "C");
TRUNCATE staging_event;
INSERT INTO staging_event (
    source_line, card_id, status, occurred_at, phone, comment, reason, partner_row_id)
SELECT source_line, card_id, status, occurred_at, phone, comment, reason, partner_row_id
FROM merged_chunk;
DROP TABLE merged_chunk
"""

# The chunk's events merged into card_event (see the module docstring for the rule). Sorted so
# that concurrent files lock events in key order. An event that already existed is always
# updated (even when nothing changes) so that it is returned: the end-of-file pass looks for
# conflicting copies among those only. Source file/line of an existing event are settled by
# SETTLE_SOURCES once this file's meaning_key is known.
APPLY_CHUNK = """
WITH upserted AS (
    INSERT INTO card_event AS e (
        card_id, status, occurred_at, comment, reason, phone, partner, source_file_id,
        source_line, partner_row_id)
    SELECT card_id, status, occurred_at, comment, reason, phone, %(partner)s, %(file_id)s,
           source_line, partner_row_id
    FROM staging_event
    ORDER BY card_id, status, occurred_at
    ON CONFLICT (card_id, status, occurred_at) DO UPDATE SET
        phone = LEAST(e.phone COLLATE "C", EXCLUDED.phone COLLATE "C"),
        comment = LEAST(e.comment COLLATE "C", EXCLUDED.comment COLLATE "C"),
        reason = CASE
            WHEN EXCLUDED.comment IS NOT DISTINCT FROM e.comment
                THEN LEAST(e.reason COLLATE "C", EXCLUDED.reason COLLATE "C")
            WHEN e.comment IS NULL OR EXCLUDED.comment COLLATE "C" < e.comment COLLATE "C"
                THEN EXCLUDED.reason
            ELSE e.reason END,
        partner_row_id = LEAST(e.partner_row_id COLLATE "C", EXCLUDED.partner_row_id COLLATE "C"),
        partner = LEAST(e.partner COLLATE "C", EXCLUDED.partner COLLATE "C")
    RETURNING card_id, status, occurred_at, comment, reason, phone, partner, (xmax = 0)
)
INSERT INTO changed_event SELECT *, %(chunk)s FROM upserted;
TRUNCATE staging_event
"""

# Events this file carried that existed before: the copy with the smallest (partner,
# meaning_key, line) becomes the event's source (order-independent).
SETTLE_SOURCES = """
UPDATE card_event e
SET source_file_id = s.file_id, source_line = s.line
FROM (
    SELECT DISTINCT ON (o.card_id, o.status, o.occurred_at)
           o.card_id, o.status, o.occurred_at, o.file_id, o.line
    FROM (SELECT DISTINCT card_id, status, occurred_at FROM changed_event WHERE NOT inserted) c
    JOIN event_copy o USING (card_id, status, occurred_at)
    JOIN ingested_file f ON f.id = o.file_id
    ORDER BY o.card_id, o.status, o.occurred_at, o.partner COLLATE "C",
             COALESCE(f.meaning_key, 'legacy:' || f.sha256, '') COLLATE "C", o.line, o.file_id
) s
WHERE (e.card_id, e.status, e.occurred_at) = (s.card_id, s.status, s.occurred_at)
  AND (e.source_file_id, e.source_line) IS DISTINCT FROM (s.file_id, s.line)
"""

# This file's copies that differ (a different non-null phone or comment) from another file's
# copy of the same event: a warning for this file, naming its line. Counted in full, listed
# up to %(limit)s.
CROSS_FILE_CONFLICTS = """
WITH conflicts AS (
    SELECT DISTINCT ON (mine.line, mine.card_id, mine.status)
           mine.line, mine.card_id, mine.status::text AS status, other.file_id,
           other.line AS other_line,
           (mine.phone <> other.phone) AS phone_differs,
           (mine.comment <> other.comment) AS comment_differs
    FROM (SELECT DISTINCT card_id, status, occurred_at FROM changed_event WHERE NOT inserted) c
    JOIN event_copy mine
      ON mine.file_id = %(file_id)s
     AND (mine.card_id, mine.status, mine.occurred_at) = (c.card_id, c.status, c.occurred_at)
    JOIN event_copy other
      ON other.file_id <> %(file_id)s
     AND (other.card_id, other.status, other.occurred_at) = (c.card_id, c.status, c.occurred_at)
    WHERE mine.phone <> other.phone OR mine.comment <> other.comment
    ORDER BY mine.line, mine.card_id, mine.status, other.file_id
)
SELECT line, card_id, status, file_id, other_line, phone_differs, comment_differs,
       count(*) OVER () AS total
FROM conflicts
ORDER BY line
LIMIT %(limit)s
"""

COUNT_ACCEPTED = "SELECT count(*) FILTER (WHERE inserted) FROM changed_event"

# Projection, step 1: the file's changes per card, and the current state of the cards that
# already exist, locked in card_id order (so previous_status below is the truth even while
# other files run; a card inserted concurrently after this lock makes the file retry).
# "[1]" of an ordered array_agg is the latest event (and the latest with a phone); among two
# versions of one event (a file repeating it across chunks) the later chunk's, merged, wins.
CARD_DELTA = """
CREATE TEMP TABLE card_delta ON COMMIT DROP AS
SELECT card_id,
       (array_agg(status ORDER BY occurred_at DESC, status DESC, chunk DESC))[1] AS status,
       (array_agg(occurred_at ORDER BY occurred_at DESC, status DESC, chunk DESC))[1] AS status_at,
       (array_agg(comment ORDER BY occurred_at DESC, status DESC, chunk DESC))[1] AS comment,
       (array_agg(reason ORDER BY occurred_at DESC, status DESC, chunk DESC))[1] AS reason,
       (array_agg(partner ORDER BY occurred_at DESC, status DESC, chunk DESC))[1] AS partner,
       (array_agg(phone ORDER BY occurred_at DESC, status DESC, chunk DESC)
           FILTER (WHERE phone IS NOT NULL))[1] AS phone,
       (array_agg(occurred_at ORDER BY occurred_at DESC, status DESC, chunk DESC)
           FILTER (WHERE phone IS NOT NULL))[1] AS phone_at,
       (array_agg(status ORDER BY occurred_at DESC, status DESC, chunk DESC)
           FILTER (WHERE phone IS NOT NULL))[1] AS phone_rank,
       max(occurred_at) FILTER (WHERE status = 'PICKED_UP') AS picked_up_at,
       max(occurred_at) FILTER (WHERE status = 'DELIVERED') AS delivered_at,
       max(occurred_at) FILTER (WHERE status = 'RETURNED') AS returned_at,
       count(*) FILTER (WHERE status = 'DELIVERY_EXCEPTION' AND inserted) AS exception_count
FROM changed_event
GROUP BY card_id;
ANALYZE card_delta;
CREATE TEMP TABLE card_before ON COMMIT DROP AS
SELECT c.card_id, c.status, c.version
FROM card c
WHERE c.card_id IN (SELECT card_id FROM card_delta)
ORDER BY c.card_id
FOR UPDATE OF c;
ANALYZE card_before
"""

# Projection, step 2: fold the changes into each card with commutative rules (latest (time,
# rank) wins, GREATEST of per-status times, sum of new exception events), so files applied in
# any order give the same card. An equal (time, rank) is the same event: its merged comment,
# reason and phone replace the card's. version + 1 when the current event changes; one outbox
# row per such card. Returns (cards touched, raced cards, outbox count, first id, last id).
APPLY_PROJECTION = f"""
WITH upserted AS (
    INSERT INTO card AS c (
        card_id, status, status_at, comment, reason, phone, phone_at, phone_rank,
        picked_up_at, delivered_at, returned_at, exception_count, version)
    SELECT d.card_id, d.status, d.status_at, d.comment, d.reason, d.phone, d.phone_at,
           d.phone_rank, d.picked_up_at, d.delivered_at, d.returned_at, d.exception_count,
           COALESCE(t.version, 0) + 1  -- a card a void deleted continues its versions (0008)
    FROM card_delta d
    LEFT JOIN card_tombstone t ON t.card_id = d.card_id
    ORDER BY d.card_id
    ON CONFLICT (card_id) DO UPDATE SET
        status = CASE WHEN (EXCLUDED.status_at, EXCLUDED.status) > (c.status_at, c.status)
                      THEN EXCLUDED.status ELSE c.status END,
        comment = CASE WHEN (EXCLUDED.status_at, EXCLUDED.status) >= (c.status_at, c.status)
                       THEN EXCLUDED.comment ELSE c.comment END,
        reason = CASE WHEN (EXCLUDED.status_at, EXCLUDED.status) >= (c.status_at, c.status)
                      THEN EXCLUDED.reason ELSE c.reason END,
        version = c.version
            + CASE WHEN (EXCLUDED.status_at, EXCLUDED.status) > (c.status_at, c.status)
                   THEN 1 ELSE 0 END,
        status_at = GREATEST(c.status_at, EXCLUDED.status_at),
        phone = CASE WHEN EXCLUDED.phone IS NOT NULL AND (c.phone IS NULL
                          OR (EXCLUDED.phone_at, EXCLUDED.phone_rank) >= (c.phone_at, c.phone_rank))
                     THEN EXCLUDED.phone ELSE c.phone END,
        phone_rank = CASE WHEN EXCLUDED.phone IS NOT NULL AND (c.phone IS NULL
                          OR (EXCLUDED.phone_at, EXCLUDED.phone_rank) >= (c.phone_at, c.phone_rank))
                     THEN EXCLUDED.phone_rank ELSE c.phone_rank END,
        phone_at = CASE WHEN EXCLUDED.phone IS NOT NULL AND (c.phone IS NULL
                          OR (EXCLUDED.phone_at, EXCLUDED.phone_rank) >= (c.phone_at, c.phone_rank))
                     THEN EXCLUDED.phone_at ELSE c.phone_at END,
        picked_up_at = GREATEST(c.picked_up_at, EXCLUDED.picked_up_at),
        delivered_at = GREATEST(c.delivered_at, EXCLUDED.delivered_at),
        returned_at = GREATEST(c.returned_at, EXCLUDED.returned_at),
        exception_count = c.exception_count + EXCLUDED.exception_count,
        updated_at = now()
    RETURNING card_id, status, status_at, reason, version, (xmax = 0) AS inserted
),
changes AS (
    SELECT u.card_id, b.status AS previous_status, u.status, u.status_at, u.reason,
           d.partner, u.version AS card_version, (NOT u.inserted AND b.card_id IS NULL) AS raced
    FROM upserted u
    LEFT JOIN card_before b ON b.card_id = u.card_id
    JOIN card_delta d ON d.card_id = u.card_id
    WHERE u.inserted OR b.card_id IS NULL OR u.version > b.version
),
card_change AS (SELECT * FROM changes WHERE NOT raced),
outbox AS ({outbox_insert("card_change")}),
-- The cards this file changed, before -> after (GET /files/{{file_id}}/cards; migration 0016).
linked AS (
    INSERT INTO file_card_change (file_id, card_id, action, status_before, status_after)
    SELECT %(file_id)s, card_id, 'apply', previous_status, status FROM card_change
)
SELECT (SELECT count(*) FROM upserted), (SELECT count(*) FROM changes WHERE raced),
       (SELECT count(*) FROM outbox), (SELECT min(id) FROM outbox), (SELECT max(id) FROM outbox)
"""
