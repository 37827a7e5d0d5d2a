"""Every SQL statement of the ingestion write path."""

# Per-file transaction settings (ingest connects to the instance directly, never through the proxy).
TUNE_TRANSACTION = "SET LOCAL work_mem = '128MB'"

# Serialises work on the same bytes so two copies of one file cannot both be applied.
LOCK_CONTENT = "SELECT pg_advisory_xact_lock(hashtextextended(%(sha256)s, 0))"

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
ORDER BY id
LIMIT 1
"""

FIND_APPLIED_CONTENT = """
SELECT id, bucket, object_key, report
FROM ingested_file
WHERE sha256 = %(sha256)s AND outcome = 'applied'
"""

# Rows stream into staging_event in chunks; each chunk's new events are inserted into card_event
# at once (while the client parses the next chunk) and remembered in new_event, from which the
# card projection is computed once, at the end. Temp tables: no WAL, dropped at commit.
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
CREATE TEMP TABLE new_event (
    card_id        text        NOT NULL,
    status         card_status NOT NULL,
    occurred_at    timestamptz NOT NULL,
    comment        text,
    reason         text,
    phone          text
) ON COMMIT DROP
"""

COPY_STAGING = (
    "COPY staging_event (source_line, card_id, status, occurred_at, phone, comment, reason,"
    " partner_row_id) FROM STDIN"
)

INSERT_FILE = """
INSERT INTO ingested_file (
    bucket, object_key, version_id, etag, sha256, size_bytes, partner, event_type, outcome,
    rows_total, rows_accepted, rows_duplicate, rows_rejected, warnings, report, started_at,
    finished_at, duration_ms)
VALUES (
    %(bucket)s, %(key)s, %(version_id)s, %(etag)s, %(sha256)s, %(size_bytes)s, %(partner)s,
    %(event_type)s, %(outcome)s, %(rows_total)s, %(rows_accepted)s, %(rows_duplicate)s,
    %(rows_rejected)s, %(warnings)s, %(report)s, %(started_at)s, now(), %(duration_ms)s)
RETURNING id
"""

UPDATE_FILE_REPORT = """
UPDATE ingested_file
SET sha256 = %(sha256)s, size_bytes = %(size_bytes)s,
    rows_total = %(rows_total)s, rows_accepted = %(rows_accepted)s,
    rows_duplicate = %(rows_duplicate)s, rows_rejected = %(rows_rejected)s,
    warnings = %(warnings)s, report = %(report)s, finished_at = now(),
    duration_ms = %(duration_ms)s
WHERE id = %(id)s
"""

COPY_REJECTS = "COPY rejected_row (file_id, line, reason) FROM STDIN"

# Events of one chunk: insert what is new (ON CONFLICT DO NOTHING makes redelivery and overlap
# harmless) and remember it for the projection. Sorted so that concurrent files take their locks
# in key order within each chunk, and so that of two equal events in one file the first line
# wins (earlier chunks are inserted first). Then the staging table is emptied for the next chunk.
APPLY_CHUNK = """
WITH inserted AS (
    INSERT INTO card_event (
        card_id, status, occurred_at, comment, reason, phone, partner, source_file_id,
        source_line, partner_row_id)
    SELECT card_id, status, occurred_at, comment, reason, phone, %(partner)s, %(file_id)s,
           source_line, partner_row_id
    FROM staging_event
    ORDER BY card_id, status, occurred_at, source_line
    ON CONFLICT DO NOTHING
    RETURNING card_id, status, occurred_at, comment, reason, phone
)
INSERT INTO new_event SELECT * FROM inserted;
TRUNCATE staging_event
"""

# Projection: fold the file's newly inserted events into each card with commutative rules
# (latest (time, rank) wins, GREATEST of per-status times, sum of exception counts), so files
# applied in any order give the same card. One sort by (card, time desc, rank desc) feeds every
# aggregate: "[1]" of an ordered array_agg is the latest event (and the latest with a phone);
# (card_id, status, occurred_at) is unique, so the order has no ties. Upserted in card_id
# order, so concurrent files lock cards in the same order.
APPLY_PROJECTION = """
WITH per_card AS (
    SELECT card_id,
           (array_agg(status ORDER BY occurred_at DESC, status DESC))[1] AS status,
           (array_agg(occurred_at ORDER BY occurred_at DESC, status DESC))[1] AS status_at,
           (array_agg(comment ORDER BY occurred_at DESC, status DESC))[1] AS comment,
           (array_agg(reason ORDER BY occurred_at DESC, status DESC))[1] AS reason,
           (array_agg(phone ORDER BY occurred_at DESC, status DESC)
               FILTER (WHERE phone IS NOT NULL))[1] AS phone,
           (array_agg(occurred_at ORDER BY occurred_at DESC, status DESC)
               FILTER (WHERE phone IS NOT NULL))[1] AS phone_at,
           (array_agg(status ORDER BY occurred_at DESC, status DESC)
               FILTER (WHERE phone IS NOT NULL))[1] AS phone_rank,
           max(occurred_at) FILTER (WHERE status = 'PICKED_UP') AS picked_up_at,
           max(occurred_at) FILTER (WHERE status = 'DELIVERED') AS delivered_at,
           max(occurred_at) FILTER (WHERE status = 'RETURNED') AS returned_at,
           count(*) FILTER (WHERE status = 'DELIVERY_EXCEPTION') AS exception_count
    FROM new_event
    GROUP BY card_id
),
upserted AS (
    INSERT INTO card AS c (
        card_id, status, status_at, comment, reason, phone, phone_at, phone_rank,
        picked_up_at, delivered_at, returned_at, exception_count)
    SELECT card_id, status, status_at, comment, reason, phone, phone_at, phone_rank,
           picked_up_at, delivered_at, returned_at, exception_count
    FROM per_card
    ORDER BY card_id
    ON CONFLICT (card_id) DO UPDATE SET
        status = CASE WHEN (EXCLUDED.status_at, EXCLUDED.status) > (c.status_at, c.status)
                      THEN EXCLUDED.status ELSE c.status END,
        comment = CASE WHEN (EXCLUDED.status_at, EXCLUDED.status) > (c.status_at, c.status)
                       THEN EXCLUDED.comment ELSE c.comment END,
        reason = CASE WHEN (EXCLUDED.status_at, EXCLUDED.status) > (c.status_at, c.status)
                      THEN EXCLUDED.reason ELSE c.reason END,
        status_at = GREATEST(c.status_at, EXCLUDED.status_at),
        phone = CASE WHEN EXCLUDED.phone IS NOT NULL AND (c.phone IS NULL
                          OR (EXCLUDED.phone_at, EXCLUDED.phone_rank) > (c.phone_at, c.phone_rank))
                     THEN EXCLUDED.phone ELSE c.phone END,
        phone_rank = CASE WHEN EXCLUDED.phone IS NOT NULL AND (c.phone IS NULL
                          OR (EXCLUDED.phone_at, EXCLUDED.phone_rank) > (c.phone_at, c.phone_rank))
                     THEN EXCLUDED.phone_rank ELSE c.phone_rank END,
        phone_at = CASE WHEN EXCLUDED.phone IS NOT NULL AND (c.phone IS NULL
                          OR (EXCLUDED.phone_at, EXCLUDED.phone_rank) > (c.phone_at, c.phone_rank))
                     THEN EXCLUDED.phone_at ELSE c.phone_at END,
        picked_up_at = GREATEST(c.picked_up_at, EXCLUDED.picked_up_at),
        delivered_at = GREATEST(c.delivered_at, EXCLUDED.delivered_at),
        returned_at = GREATEST(c.returned_at, EXCLUDED.returned_at),
        exception_count = c.exception_count + EXCLUDED.exception_count,
        updated_at = now()
    RETURNING 1
)
SELECT (SELECT count(*) FROM new_event), (SELECT count(*) FROM upserted)
"""
