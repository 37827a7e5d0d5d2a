"""Every SQL statement of the ingestion write path.

Storage (migration 0006): `event_copy` holds every file's copy of every event (provenance);
`card_event` holds the merged event per (card_id, status, occurred_at), what the API reads;
`card` is the projection. One file = one transaction:

    staging COPY (per chunk) → rows of cards another partner owns out (rejected) →
    event_copy INSERT → card_event insert (RETURNING into changed_event) ... → settle the
    events other files also carried (merge rule) + conflicts → card projection (owner
    included) + status outbox → cards whose owner moved inside its group: re-merged

Ownership and the merge rule (order-independent, so any order of files gives the same state)
are in cardstatus.sql.ownership: the owner's copy first, then partner, then file and line,
never the smallest value; partner_row_id keeps the smallest. Within one file, the lines that
carry one event merge the same way: the first line's value, the next line's when it is empty.
"""

from cardstatus.sql.outbox import outbox_insert
from cardstatus.sql.ownership import merged_events, owners_from_copies

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
    phone_hash     text,
    phone_key      smallint,
    phone_last4    text,
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
    phone_hash     text,
    phone_key      smallint,
    phone_last4    text,
    partner        text        NOT NULL,
    inserted       boolean     NOT NULL,
    chunk          integer     NOT NULL
) ON COMMIT DROP
"""

COPY_STAGING = (
    "COPY staging_event (source_line, card_id, status, occurred_at, phone_hash, phone_key,"
    " phone_last4, comment, reason, partner_row_id) FROM STDIN"
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
    file_id, card_id, status, occurred_at, line, phone_hash, phone_key, phone_last4, comment,
        reason, partner_row_id, partner)
SELECT %(file_id)s, card_id, status, occurred_at, source_line, phone_hash, phone_key, phone_last4,
       comment, reason,
       partner_row_id, %(partner)s
FROM staging_event
"""

# Slow path, for a chunk that repeats an event of the file: lines of one event are merged into
# one copy (the first line's values; a later line's only where the earlier are empty; comment
# and reason together), and so is an earlier chunk's copy (its lines come first). An event
# whose lines carry different non-null phones or comments is one warning, on its last line.
# Runs before the chunk's rows are merged, so event_copy holds only earlier chunks.
IN_FILE_CONFLICTS = """
WITH keys AS (SELECT DISTINCT card_id, status, occurred_at FROM staging_event),
copies AS (
    SELECT source_line AS line, card_id, status, occurred_at, phone_hash, phone_key, phone_last4,
        comment FROM staging_event
    UNION ALL
    SELECT c.line, c.card_id, c.status, c.occurred_at, c.phone_hash, c.phone_key, c.phone_last4,
        c.comment
    FROM keys k
    JOIN event_copy c
      ON c.file_id = %(file_id)s
     AND (c.card_id, c.status, c.occurred_at) = (k.card_id, k.status, k.occurred_at)
)
SELECT max(line), card_id, status::text, min(line),
       concat_ws(' and ', CASE WHEN count(DISTINCT phone_hash) > 1 THEN 'phone' END,
                 CASE WHEN count(DISTINCT comment) > 1 THEN 'comment' END)
FROM copies
GROUP BY card_id, status, occurred_at
HAVING count(DISTINCT phone_hash) > 1 OR count(DISTINCT comment) > 1
ORDER BY 1
"""

MERGE_FILE_COPIES = """
CREATE TEMP TABLE merged_chunk ON COMMIT DROP AS
SELECT card_id, status, occurred_at,
       min(source_line) AS source_line,
       (array_agg(phone_hash ORDER BY source_line)
           FILTER (WHERE phone_hash IS NOT NULL))[1] AS phone_hash,
       (array_agg(phone_key ORDER BY source_line)
           FILTER (WHERE phone_hash IS NOT NULL))[1] AS phone_key,
       (array_agg(phone_last4 ORDER BY source_line)
           FILTER (WHERE phone_hash IS NOT NULL))[1] AS phone_last4,
       (array_agg(comment ORDER BY comment IS NULL, reason IS NULL, source_line))[1] AS comment,
       (array_agg(reason ORDER BY comment IS NULL, reason IS NULL, source_line))[1] AS reason,
       min(partner_row_id COLLATE "C") AS partner_row_id
FROM staging_event
GROUP BY card_id, status, occurred_at;
INSERT INTO event_copy AS c (
    file_id, card_id, status, occurred_at, line, phone_hash, phone_key, phone_last4, comment,
        reason, partner_row_id, partner)
SELECT %(file_id)s, card_id, status, occurred_at, source_line, phone_hash, phone_key, phone_last4,
       comment, reason,
       partner_row_id, %(partner)s
FROM merged_chunk
ORDER BY card_id, status, occurred_at
ON CONFLICT (file_id, card_id, status, occurred_at) DO UPDATE SET
    line = LEAST(c.line, EXCLUDED.line),
    phone_hash = COALESCE(c.phone_hash, EXCLUDED.phone_hash),
    phone_key = CASE WHEN c.phone_hash IS NULL THEN EXCLUDED.phone_key ELSE c.phone_key END,
    phone_last4 = CASE WHEN c.phone_hash IS NULL THEN EXCLUDED.phone_last4 ELSE c.phone_last4 END,
    comment = COALESCE(c.comment, EXCLUDED.comment),
    reason = CASE WHEN c.comment IS NULL AND EXCLUDED.comment IS NOT NULL THEN EXCLUDED.reason
                  ELSE COALESCE(c.reason, EXCLUDED.reason) END,
    partner_row_id = LEAST(c.partner_row_id COLLATE "C", EXCLUDED.partner_row_id COLLATE "C");
TRUNCATE staging_event;
INSERT INTO staging_event (
    source_line, card_id, status, occurred_at, phone_hash, phone_key, phone_last4, comment,
        reason, partner_row_id)
SELECT source_line, card_id, status, occurred_at, phone_hash, phone_key, phone_last4, comment,
       reason, partner_row_id
FROM merged_chunk;
DROP TABLE merged_chunk
"""

# The chunk's events into card_event. Sorted so that concurrent files lock events in key order.
# An event that already existed keeps its fields here and is always updated (even when nothing
# changes) so that it is returned: SETTLE_EVENTS merges its copies (cardstatus.sql.ownership)
# once this file's meaning_key is known, and the end-of-file pass looks for conflicting copies
# among those only.
APPLY_CHUNK = """
WITH upserted AS (
    INSERT INTO card_event AS e (
        card_id, status, occurred_at, comment, reason, phone_hash, phone_key, phone_last4,
            partner, source_file_id,
        source_line, partner_row_id)
    SELECT card_id, status, occurred_at, comment, reason, phone_hash, phone_key, phone_last4,
        %(partner)s, %(file_id)s,
           source_line, partner_row_id
    FROM staging_event
    ORDER BY card_id, status, occurred_at
    ON CONFLICT (card_id, status, occurred_at) DO UPDATE SET
        partner_row_id = LEAST(e.partner_row_id COLLATE "C", EXCLUDED.partner_row_id COLLATE "C")
    RETURNING card_id, status, occurred_at, comment, reason, phone_hash, phone_key, phone_last4,
        partner, (xmax = 0)
)
INSERT INTO changed_event SELECT *, %(chunk)s FROM upserted;
TRUNCATE staging_event
"""

# The owner of each card whose events this file shares with other files, as it is once this file
# is applied: the partner of the card's earliest copy (this file's copies are in event_copy
# already; one index probe per such card). Then those events merged again from all their
# copies (cardstatus.sql.ownership), written to card_event and to changed_event (what the
# projection reads).
SETTLE_EVENTS = f"""
CREATE TEMP TABLE settle_event ON COMMIT DROP AS
WITH shared AS (SELECT DISTINCT card_id, status, occurred_at FROM changed_event WHERE NOT inserted),
owner AS ({owners_from_copies("(SELECT DISTINCT card_id FROM shared)")}),
keys AS (SELECT s.*, o.owner FROM shared s JOIN owner o USING (card_id))
{merged_events("keys")};
UPDATE card_event e
SET phone_hash = m.phone_hash, phone_key = m.phone_key, phone_last4 = m.phone_last4,
       comment = m.comment, reason = m.reason, partner = m.partner,
    partner_row_id = m.partner_row_id, source_file_id = m.source_file_id,
    source_line = m.source_line
FROM settle_event m
WHERE (e.card_id, e.status, e.occurred_at) = (m.card_id, m.status, m.occurred_at)
  AND (e.phone_hash, e.phone_key, e.phone_last4, e.comment, e.reason, e.partner, e.partner_row_id,
      e.source_file_id,
       e.source_line)
      IS DISTINCT FROM
      (m.phone_hash, m.phone_key, m.phone_last4, m.comment, m.reason, m.partner, m.partner_row_id,
          m.source_file_id,
       m.source_line);
UPDATE changed_event c
SET phone_hash = m.phone_hash, phone_key = m.phone_key, phone_last4 = m.phone_last4,
       comment = m.comment, reason = m.reason, partner = m.partner
FROM settle_event m
WHERE (c.card_id, c.status, c.occurred_at) = (m.card_id, m.status, m.occurred_at)
  AND (c.phone_hash, c.phone_key, c.phone_last4, c.comment, c.reason, c.partner)
      IS DISTINCT FROM (m.phone_hash, m.phone_key, m.phone_last4, m.comment, m.reason, m.partner)
"""

# This file's copies that differ (a different non-null phone or comment) from another file's
# copy of the same event: a warning for this file, naming its line, and whether this file's
# value is the one kept. Counted in full, listed up to %(limit)s.
CROSS_FILE_CONFLICTS = """
WITH conflicts AS (
    SELECT DISTINCT ON (mine.line, mine.card_id, mine.status)
           mine.line, mine.card_id, mine.status::text AS status, other.file_id,
           other.line AS other_line,
           ((mine.phone_hash <> other.phone_hash AND mine.phone_key = other.phone_key
               OR mine.phone_last4 <> other.phone_last4)) AS phone_differs,
           (mine.comment <> other.comment) AS comment_differs,
           (e.phone_hash IS NOT DISTINCT FROM mine.phone_hash) AS phone_kept,
           (e.comment IS NOT DISTINCT FROM mine.comment) AS comment_kept
    FROM (SELECT DISTINCT card_id, status, occurred_at FROM changed_event WHERE NOT inserted) c
    JOIN event_copy mine
      ON mine.file_id = %(file_id)s
     AND (mine.card_id, mine.status, mine.occurred_at) = (c.card_id, c.status, c.occurred_at)
    JOIN event_copy other
      ON other.file_id <> %(file_id)s
     AND (other.card_id, other.status, other.occurred_at) = (c.card_id, c.status, c.occurred_at)
    JOIN card_event e
      ON (e.card_id, e.status, e.occurred_at) = (c.card_id, c.status, c.occurred_at)
    WHERE (mine.phone_hash <> other.phone_hash AND mine.phone_key = other.phone_key
        OR mine.phone_last4 <> other.phone_last4)
        OR mine.comment <> other.comment
    ORDER BY mine.line, mine.card_id, mine.status, other.file_id
)
SELECT line, card_id, status, file_id, other_line, phone_differs, comment_differs,
       phone_kept, comment_kept, count(*) OVER () AS total
FROM conflicts
ORDER BY line
LIMIT %(limit)s
"""

# Every copy this file brought whose phone differs from another file's copy of the same event,
# for ops (GET /phone_conflicts): one row per copy, naming one other copy (the smallest file id).
RECORD_PHONE_CONFLICTS = """
INSERT INTO phone_conflict (
    file_id, line, card_id, status, occurred_at, other_file_id, other_line)
SELECT DISTINCT ON (mine.card_id, mine.status, mine.occurred_at)
       mine.file_id, mine.line, mine.card_id, mine.status, mine.occurred_at, other.file_id,
       other.line
FROM (SELECT DISTINCT card_id, status, occurred_at FROM changed_event WHERE NOT inserted) c
JOIN event_copy mine
  ON mine.file_id = %(file_id)s
 AND (mine.card_id, mine.status, mine.occurred_at) = (c.card_id, c.status, c.occurred_at)
JOIN event_copy other
  ON other.file_id <> %(file_id)s
 AND (other.card_id, other.status, other.occurred_at) = (c.card_id, c.status, c.occurred_at)
WHERE (mine.phone_hash <> other.phone_hash AND mine.phone_key = other.phone_key
    OR mine.phone_last4 <> other.phone_last4)
ORDER BY mine.card_id, mine.status, mine.occurred_at, other.file_id
ON CONFLICT DO NOTHING
"""

# (accepted, shared): events this file inserted, and those other files had (settled, checked
# for conflicts; none, and the settle pass is skipped).
COUNT_ACCEPTED = (
    "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)"
    " FROM changed_event"
)

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
       (array_agg(phone_hash ORDER BY occurred_at DESC, status DESC,
           chunk DESC) FILTER (WHERE phone_hash IS NOT NULL))[1] AS phone_hash,
       (array_agg(phone_key ORDER BY occurred_at DESC, status DESC,
       chunk DESC) FILTER (WHERE phone_hash IS NOT NULL))[1] AS phone_key,
       (array_agg(phone_last4 ORDER BY occurred_at DESC, status DESC,
       chunk DESC) FILTER (WHERE phone_hash IS NOT NULL))[1] AS phone_last4,
       (array_agg(occurred_at ORDER BY occurred_at DESC, status DESC, chunk DESC)
           FILTER (WHERE phone_hash IS NOT NULL))[1] AS phone_at,
       (array_agg(status ORDER BY occurred_at DESC, status DESC, chunk DESC)
           FILTER (WHERE phone_hash IS NOT NULL))[1] AS phone_rank,
       max(occurred_at) FILTER (WHERE status = 'PICKED_UP') AS picked_up_at,
       max(occurred_at) FILTER (WHERE status = 'DELIVERED') AS delivered_at,
       max(occurred_at) FILTER (WHERE status = 'RETURNED') AS returned_at,
       count(*) FILTER (WHERE status = 'DELIVERY_EXCEPTION' AND inserted) AS exception_count,
       -- the earliest event: the last of the same ordering (one shared aggregate, no new sort)
       min(occurred_at) AS first_at,
       (array_agg(status ORDER BY occurred_at DESC, status DESC, chunk DESC))[count(*)::integer]
           AS first_rank
FROM changed_event
GROUP BY card_id;
ANALYZE card_delta;
-- The file's existing cards, locked in card_id order (the lock order of every writer): one
-- primary-key probe per card, in that order. Written as a join, a large file (99k cards)
-- made the planner hash card_delta and read all of card (6.5 s at 10M cards).
CREATE TEMP TABLE card_before ON COMMIT DROP AS
SELECT c.card_id, c.status, c.version, c.phone_hash, c.phone_key, c.phone_last4, c.owner_partner
FROM (SELECT card_id FROM card_delta ORDER BY card_id OFFSET 0) d
CROSS JOIN LATERAL (
    SELECT c.card_id, c.status, c.version, c.phone_hash, c.phone_key, c.phone_last4,
           c.owner_partner
    FROM card c
    WHERE c.card_id = d.card_id
    FOR UPDATE
) c;
ANALYZE card_before
"""

# A card of this file that a partner outside its group created after this file checked its
# chunks (a concurrent file): the file is read again (CardInsertRace), its rows then rejected.
FOREIGN_OWNED_LOCKED = """
SELECT count(*) FROM card_before WHERE owner_partner <> ALL (%(group)s::text[])
"""

# Projection, step 2: fold the changes into each card with commutative rules (latest (time,
# rank) wins, GREATEST of per-status times, sum of new exception events, the smallest (time,
# rank, partner) is the first event and its partner the owner), so files applied in any order
# give the same card. An equal (time, rank) is the same event: its merged comment, reason,
# partner and phone replace the card's. version + 1 when the current event changes; one outbox
# row per such card. Returns (cards touched, raced cards, outbox count, first id, last id).
# Each rule that moves several columns together is one multi-column SET whose condition is
# written once (a one-row sub-SELECT naming it), not repeated per column:
#   later          the file's latest event is later than the card's: status and version move;
#   same_or_later  ... or is the same event: its comment, reason and partner replace the
#                  card's (status_partner: the partner of the card's current event, 0024);
#   newer_phone    the file brings a phone at least as recent as the card's: the phone moves;
#   earlier        the file's first event is earlier than the card's: its partner is the owner.
APPLY_PROJECTION = f"""
WITH upserted AS (
    INSERT INTO card AS c (
        card_id, status, status_at, comment, reason, status_partner, phone_hash, phone_key,
            phone_last4, phone_at, phone_rank,
        picked_up_at, delivered_at, returned_at, exception_count, version, owner_partner,
        first_event_at, first_event_rank)
    SELECT d.card_id, d.status, d.status_at, d.comment, d.reason, d.partner, d.phone_hash,
        d.phone_key, d.phone_last4, d.phone_at,
           d.phone_rank, d.picked_up_at, d.delivered_at, d.returned_at, d.exception_count,
           COALESCE(t.version, 0) + 1,  -- a card a void deleted continues its versions (0008)
           %(partner)s, d.first_at, d.first_rank
    FROM card_delta d
    LEFT JOIN card_tombstone t ON t.card_id = d.card_id
    ORDER BY d.card_id
    ON CONFLICT (card_id) DO UPDATE SET
        (status, version, comment, reason, status_partner) = (
            SELECT CASE WHEN r.later THEN EXCLUDED.status ELSE c.status END,
                   c.version + CASE WHEN r.later THEN 1 ELSE 0 END,
                   CASE WHEN r.same_or_later THEN EXCLUDED.comment ELSE c.comment END,
                   CASE WHEN r.same_or_later THEN EXCLUDED.reason ELSE c.reason END,
                   CASE WHEN r.same_or_later THEN EXCLUDED.status_partner ELSE c.status_partner END
            FROM (SELECT (EXCLUDED.status_at, EXCLUDED.status) > (c.status_at, c.status)
                             AS later,
                         (EXCLUDED.status_at, EXCLUDED.status) >= (c.status_at, c.status)
                             AS same_or_later) r),
        status_at = GREATEST(c.status_at, EXCLUDED.status_at),
        (phone_hash, phone_key, phone_last4, phone_rank, phone_at) = (
            SELECT CASE WHEN r.newer_phone THEN EXCLUDED.phone_hash ELSE c.phone_hash END,
                   CASE WHEN r.newer_phone THEN EXCLUDED.phone_key ELSE c.phone_key END,
                   CASE WHEN r.newer_phone THEN EXCLUDED.phone_last4 ELSE c.phone_last4 END,
                   CASE WHEN r.newer_phone THEN EXCLUDED.phone_rank ELSE c.phone_rank END,
                   CASE WHEN r.newer_phone THEN EXCLUDED.phone_at ELSE c.phone_at END
            FROM (SELECT EXCLUDED.phone_hash IS NOT NULL
                         AND (c.phone_hash IS NULL
                              OR (EXCLUDED.phone_at, EXCLUDED.phone_rank)
                                 >= (c.phone_at, c.phone_rank)) AS newer_phone) r),
        picked_up_at = GREATEST(c.picked_up_at, EXCLUDED.picked_up_at),
        delivered_at = GREATEST(c.delivered_at, EXCLUDED.delivered_at),
        returned_at = GREATEST(c.returned_at, EXCLUDED.returned_at),
        exception_count = c.exception_count + EXCLUDED.exception_count,
        (owner_partner, first_event_rank, first_event_at) = (
            SELECT CASE WHEN r.earlier THEN EXCLUDED.owner_partner ELSE c.owner_partner END,
                   CASE WHEN r.earlier THEN EXCLUDED.first_event_rank ELSE c.first_event_rank END,
                   CASE WHEN r.earlier THEN EXCLUDED.first_event_at ELSE c.first_event_at END
            FROM (SELECT (EXCLUDED.first_event_at, EXCLUDED.first_event_rank,
                          EXCLUDED.owner_partner COLLATE "C")
                         < (c.first_event_at, c.first_event_rank, c.owner_partner COLLATE "C")
                         AS earlier) r),
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


# Cards of this file that had no owner (created by the previous release during a deploy, after
# migration 0010's backfill; the projection above leaves them without one): the owner from
# their copies, which include this file's. Usually none.
HEAL_OWNERS = f"""
UPDATE card c
SET owner_partner = w.owner, first_event_at = w.first_event_at,
    first_event_rank = w.first_event_rank
FROM ({owners_from_copies("(SELECT card_id FROM card_before WHERE owner_partner IS NULL)")}) w
WHERE c.card_id = w.card_id AND c.owner_partner IS NULL
"""

# Cards of this file whose owner moved to another partner of the owner's group (that partner
# brought an earlier event): the copy ranking of every event of the card changed, so each of
# them is merged again and the card's comment, reason, status_partner and phone are recomputed
# from its events (its status and times are not affected: the events are the same). Usually none.
OWNER_MOVED = f"""
CREATE TEMP TABLE moved_event ON COMMIT DROP AS
WITH moved AS (
    SELECT c.card_id, c.owner_partner AS owner
    FROM card_before b
    JOIN card c USING (card_id)
    WHERE c.owner_partner IS DISTINCT FROM b.owner_partner AND b.owner_partner IS NOT NULL
),
keys AS (
    SELECT e.card_id, e.status, e.occurred_at, m.owner
    FROM moved m
    JOIN card_event e USING (card_id)
)
{merged_events("keys")};
UPDATE card_event e
SET phone_hash = m.phone_hash, phone_key = m.phone_key, phone_last4 = m.phone_last4,
       comment = m.comment, reason = m.reason, partner = m.partner,
    source_file_id = m.source_file_id, source_line = m.source_line
FROM moved_event m
WHERE (e.card_id, e.status, e.occurred_at) = (m.card_id, m.status, m.occurred_at)
  AND (e.phone_hash, e.phone_key, e.phone_last4, e.comment, e.reason, e.partner, e.source_file_id,
      e.source_line)
      IS DISTINCT FROM
      (m.phone_hash, m.phone_key, m.phone_last4, m.comment, m.reason, m.partner, m.source_file_id,
          m.source_line);
UPDATE card c
SET comment = a.comment, reason = a.reason, status_partner = a.partner,
    phone_hash = a.phone_hash, phone_key = a.phone_key,
       phone_last4 = a.phone_last4, phone_at = a.phone_at,
    phone_rank = a.phone_rank
FROM (
    SELECT e.card_id,
           (array_agg(e.comment ORDER BY e.occurred_at DESC, e.status DESC))[1] AS comment,
           (array_agg(e.reason ORDER BY e.occurred_at DESC, e.status DESC))[1] AS reason,
           (array_agg(e.partner ORDER BY e.occurred_at DESC, e.status DESC))[1] AS partner,
           (array_agg(e.phone_hash ORDER BY e.occurred_at DESC,
               e.status DESC) FILTER (WHERE e.phone_hash IS NOT NULL))[1] AS phone_hash,
       (array_agg(e.phone_key ORDER BY e.occurred_at DESC,
       e.status DESC) FILTER (WHERE e.phone_hash IS NOT NULL))[1] AS phone_key,
       (array_agg(e.phone_last4 ORDER BY e.occurred_at DESC,
       e.status DESC) FILTER (WHERE e.phone_hash IS NOT NULL))[1] AS phone_last4,
           (array_agg(e.occurred_at ORDER BY e.occurred_at DESC, e.status DESC)
               FILTER (WHERE e.phone_hash IS NOT NULL))[1] AS phone_at,
           (array_agg(e.status ORDER BY e.occurred_at DESC, e.status DESC)
               FILTER (WHERE e.phone_hash IS NOT NULL))[1] AS phone_rank
    FROM card_event e
    WHERE e.card_id IN (SELECT DISTINCT card_id FROM moved_event)
    GROUP BY e.card_id
) a
WHERE c.card_id = a.card_id
"""

# Cards that had a phone and now have another one after this file: a warning naming the line
# of this file's event that brought it (0: the phone came from another file's copy). Only the
# last 4 digits are shown. Counted in full, listed up to %(limit)s.
PHONE_CHANGES = """
SELECT COALESCE(o.line, 0), c.card_id, b.phone_last4, c.phone_last4,
       count(*) OVER ()
FROM card_before b
JOIN card c USING (card_id)
LEFT JOIN event_copy o
  ON o.file_id = %(file_id)s
 AND (o.card_id, o.status, o.occurred_at) = (c.card_id, c.phone_rank, c.phone_at)
WHERE b.phone_hash IS NOT NULL AND c.phone_hash IS NOT NULL
  AND (c.phone_hash <> b.phone_hash AND c.phone_key = b.phone_key
       OR c.phone_last4 <> b.phone_last4)
ORDER BY 1, 2
LIMIT %(limit)s
"""
