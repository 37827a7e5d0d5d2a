"""Every SQL statement of voiding a file (cardstatus.void; README "Voiding a file").

One transaction makes the state exactly what it would be had the file never been applied:

    lock the file row (+ its meaning) → the file's event keys → lock those card_event rows (key
    order) → delete the file's copies → each card's owner again from the copies that remain
    (a card whose owner moved: every one of its events is re-merged) → re-merge each of those
    events from its remaining copies (none left: delete the event) → lock the affected cards
    (card_id order) → recompute each from its remaining events (none left: delete it, keep its
    version in card_tombstone) → one status_outbox row per card whose current event changed →
    mark the file voided

Locks are taken in the same order as ingestion takes them (events in key order, then cards in
card_id order), so a void and an ingest or two voids that share cards either wait for each
other or deadlock and retry (cardstatus.void.void_retrying), never interleave wrongly. Each
statement after a lock reads a fresh snapshot (READ COMMITTED), so a file that committed
while this void waited for its locks is seen in full.

The owner and the merge rule are ingestion's, from the same SQL (cardstatus.sql.ownership):
the owner is the partner of the card's earliest remaining copy; an event's fields come from
its copies ranked owner first, then partner, file meaning_key and line (first non-empty value).
The card projection (README "Domain rules") is computed from scratch: the latest
(occurred_at, status) gives status, time, comment, reason; the latest event with a phone gives
the phone; per-status latest times; the number of exception events; the owner.
"""

from cardstatus.sql.outbox import outbox_insert
from cardstatus.sql.ownership import merged_events, owners_from_copies

# Every statement below is driven by the file's keys (its events, its cards: temp tables with a
# primary key, ANALYZEd once filled) and reaches card_event, event_copy and card by index: a
# nested loop of index probes, never a hash or merge join that reads a whole table. With those
# join methods allowed the planner read all of card_event or card in seven statements of a
# 100k-row void (EXPLAIN at 1M events: a sequential scan of 0.2-0.9 s each, growing with the
# database); with them off each statement's work is the file's rows, whatever the size
# (bench.void_bench). Local to this transaction.
TUNE_TRANSACTION = """
SET LOCAL work_mem = '64MB';
SET LOCAL enable_hashjoin = off;
SET LOCAL enable_mergejoin = off
"""

# The file row, locked: two voids of one file run one after the other (the second answers the
# first one's result).
LOCK_FILE = """
SELECT id, outcome::text, voided_at, report, meaning_key, partner, bucket, object_key
FROM ingested_file
WHERE id = %(file_id)s
FOR UPDATE
"""

# The same advisory lock ingestion takes on a file's meaning (sql.ingest.LOCK_MEANING): a
# re-upload of the voided bytes waits for the void and then sees the file voided (applied).
LOCK_MEANING = "SELECT pg_advisory_xact_lock(hashtextextended(%(meaning_key)s, 0))"

# The events the file carried (its copies; event_copy's primary key starts with file_id), and
# their cards.
FILE_EVENTS = """
CREATE TEMP TABLE void_event ON COMMIT DROP AS
SELECT card_id, status, occurred_at
FROM event_copy
WHERE file_id = %(file_id)s
ORDER BY card_id, status, occurred_at;
ALTER TABLE void_event ADD PRIMARY KEY (card_id, status, occurred_at);
CREATE TEMP TABLE void_card ON COMMIT DROP AS
SELECT DISTINCT card_id FROM void_event ORDER BY card_id;
ALTER TABLE void_card ADD PRIMARY KEY (card_id);
ANALYZE void_event, void_card
"""

# Lock those merged events in key order (ingestion inserts/merges them in key order too). A file
# that merged into one of them and has not committed yet is waited for, and then seen.
LOCK_EVENTS = """
SELECT count(*)
FROM (
    SELECT 1
    FROM card_event e
    JOIN void_event v USING (card_id, status, occurred_at)
    ORDER BY e.card_id, e.status, e.occurred_at
    FOR UPDATE OF e
) locked
"""

DELETE_COPIES = "DELETE FROM event_copy WHERE file_id = %(file_id)s"

# The owner of each card of the file, from the copies that remain (void_owner; NULL: none left;
# owner_before: the card's, read when it was locked). A card whose owner moved (to another
# partner of its group) has every event re-merged, not only the file's: the copies rank owner
# first. Each event (void_key) is kept when another file still carries it, else deleted; the
# kept ones are merged again from the copies other files keep (void_merge; an event only this
# file carried has nothing to merge: it is not aggregated).
REMERGE = f"""
CREATE TEMP TABLE void_owner ON COMMIT DROP AS
SELECT w.card_id, b.owner_partner AS owner_before, w.owner, w.first_event_at, w.first_event_rank
FROM ({owners_from_copies("void_card")}) w
LEFT JOIN void_before b USING (card_id);
ALTER TABLE void_owner ADD PRIMARY KEY (card_id);
ANALYZE void_owner;
INSERT INTO void_event (card_id, status, occurred_at)
SELECT e.card_id, e.status, e.occurred_at
FROM void_owner w
JOIN card_event e USING (card_id)
WHERE w.owner IS NOT NULL AND w.owner IS DISTINCT FROM w.owner_before
ON CONFLICT DO NOTHING;
CREATE TEMP TABLE void_key ON COMMIT DROP AS
SELECT v.card_id, v.status, v.occurred_at, w.owner, o.kept IS NOT NULL AS kept
FROM void_event v
JOIN void_owner w USING (card_id)
LEFT JOIN LATERAL (  -- one index probe per event (an EXISTS could hash all of event_copy)
    SELECT true AS kept FROM event_copy o
    WHERE (o.card_id, o.status, o.occurred_at) = (v.card_id, v.status, v.occurred_at)
    LIMIT 1
) o ON true;
ANALYZE void_key;
CREATE TEMP TABLE void_merge ON COMMIT DROP AS
WITH keys AS (SELECT card_id, status, occurred_at, owner FROM void_key WHERE kept)
{merged_events("keys")};
ANALYZE void_merge
"""

DELETE_EVENTS = """
DELETE FROM card_event e
USING void_key k
WHERE (e.card_id, e.status, e.occurred_at) = (k.card_id, k.status, k.occurred_at)
  AND NOT k.kept
"""

# Events other files also carried keep the merge of their copies. ingested_at: when the event
# was first known without this file — not earlier than the first remaining carrier's start.
UPDATE_EVENTS = """
UPDATE card_event e
SET phone_hash = m.phone_hash, phone_key = m.phone_key, phone_last4 = m.phone_last4,
       comment = m.comment, reason = m.reason,
    partner_row_id = m.partner_row_id, partner = m.partner,
    source_file_id = m.source_file_id, source_line = m.source_line,
    ingested_at = GREATEST(e.ingested_at, m.first_started_at)
FROM void_merge m
WHERE (e.card_id, e.status, e.occurred_at) = (m.card_id, m.status, m.occurred_at)
  AND m.copies > 0
  AND ((e.phone_hash, e.phone_key, e.phone_last4, e.comment, e.reason, e.partner_row_id,
      e.partner, e.source_file_id,
        e.source_line)
       IS DISTINCT FROM
       (m.phone_hash, m.phone_key, m.phone_last4, m.comment, m.reason, m.partner_row_id,
           m.partner, m.source_file_id,
        m.source_line)
       OR e.ingested_at < m.first_started_at)
"""

# The cards the file touched, locked in card_id order, with what they were before.
LOCK_CARDS = """
CREATE TEMP TABLE void_before ON COMMIT DROP AS
SELECT c.card_id, c.status, c.status_at, c.version, c.owner_partner
FROM void_card k
JOIN card c ON c.card_id = k.card_id
ORDER BY c.card_id
FOR UPDATE OF c;
ALTER TABLE void_before ADD PRIMARY KEY (card_id);
ANALYZE void_before
"""

# The card projection (README "Domain rules") from scratch, from the events that remain. "[1]"
# of an ordered array_agg is the latest event (and the latest with a phone); (card_id, status,
# occurred_at) is unique: no ties. status_partner (0024) is the latest event's partner, as
# re-merged above (a void can change it without changing the status).
RECOMPUTE = """
CREATE TEMP TABLE void_after ON COMMIT DROP AS
SELECT e.card_id,
       (array_agg(e.status ORDER BY e.occurred_at DESC, e.status DESC))[1] AS status,
       (array_agg(e.occurred_at ORDER BY e.occurred_at DESC, e.status DESC))[1] AS status_at,
       (array_agg(e.comment ORDER BY e.occurred_at DESC, e.status DESC))[1] AS comment,
       (array_agg(e.reason ORDER BY e.occurred_at DESC, e.status DESC))[1] AS reason,
       (array_agg(e.partner ORDER BY e.occurred_at DESC, e.status DESC))[1] AS status_partner,
       (array_agg(e.phone_hash ORDER BY e.occurred_at DESC,
           e.status DESC) FILTER (WHERE e.phone_hash IS NOT NULL))[1] AS phone_hash,
       (array_agg(e.phone_key ORDER BY e.occurred_at DESC,
       e.status DESC) FILTER (WHERE e.phone_hash IS NOT NULL))[1] AS phone_key,
       (array_agg(e.phone_last4 ORDER BY e.occurred_at DESC,
       e.status DESC) FILTER (WHERE e.phone_hash IS NOT NULL))[1] AS phone_last4,
       (array_agg(e.occurred_at ORDER BY e.occurred_at DESC, e.status DESC)
           FILTER (WHERE e.phone_hash IS NOT NULL))[1] AS phone_at,
       (array_agg(e.status ORDER BY e.occurred_at DESC, e.status DESC)
           FILTER (WHERE e.phone_hash IS NOT NULL))[1] AS phone_rank,
       max(e.occurred_at) FILTER (WHERE e.status = 'PICKED_UP') AS picked_up_at,
       max(e.occurred_at) FILTER (WHERE e.status = 'DELIVERED') AS delivered_at,
       max(e.occurred_at) FILTER (WHERE e.status = 'RETURNED') AS returned_at,
       count(*) FILTER (WHERE e.status = 'DELIVERY_EXCEPTION')::integer AS exception_count,
       w.owner AS owner_partner, w.first_event_at, w.first_event_rank
FROM void_before b
JOIN card_event e ON e.card_id = b.card_id
JOIN void_owner w ON w.card_id = b.card_id
GROUP BY e.card_id, w.owner, w.first_event_at, w.first_event_rank;
ALTER TABLE void_after ADD PRIMARY KEY (card_id);
ANALYZE void_after
"""

CREATE_CARD_CHANGE = """
CREATE TEMP TABLE card_change (
    card_id         text        NOT NULL,
    previous_status card_status,
    status          card_status,
    status_at       timestamptz,
    reason          text,
    partner         text,
    card_version    bigint      NOT NULL
) ON COMMIT DROP
"""

# Cards whose projection differs are rewritten; version + 1 when the current event (status,
# status_at) changed. Cards with no event left are deleted: their next version goes to
# card_tombstone, and their change is a status-null event. card_change gets one row per card
# whose current event changed. Returns (cards rewritten, cards deleted, status changes).
APPLY_CARDS = """
WITH updated AS (
    UPDATE card c
    SET status = a.status, status_at = a.status_at, comment = a.comment, reason = a.reason,
        status_partner = a.status_partner,
        phone_hash = a.phone_hash, phone_key = a.phone_key, phone_last4 = a.phone_last4,
            phone_at = a.phone_at, phone_rank = a.phone_rank,
        picked_up_at = a.picked_up_at, delivered_at = a.delivered_at,
        returned_at = a.returned_at, exception_count = a.exception_count,
        owner_partner = a.owner_partner, first_event_at = a.first_event_at,
        first_event_rank = a.first_event_rank,
        version = c.version
            + CASE WHEN (a.status, a.status_at) IS DISTINCT FROM (c.status, c.status_at)
                   THEN 1 ELSE 0 END,
        updated_at = now()
    FROM void_after a
    WHERE c.card_id = a.card_id
      AND (c.status, c.status_at, c.comment, c.reason, c.status_partner, c.phone_hash,
          c.phone_key, c.phone_last4, c.phone_at, c.phone_rank,
           c.picked_up_at, c.delivered_at, c.returned_at, c.exception_count, c.owner_partner,
           c.first_event_at, c.first_event_rank)
          IS DISTINCT FROM
          (a.status, a.status_at, a.comment, a.reason, a.status_partner, a.phone_hash,
              a.phone_key, a.phone_last4, a.phone_at, a.phone_rank,
           a.picked_up_at, a.delivered_at, a.returned_at, a.exception_count, a.owner_partner,
           a.first_event_at, a.first_event_rank)
    RETURNING c.card_id, c.status, c.status_at, c.reason, c.version
),
deleted AS (
    DELETE FROM card c
    USING void_before b
    WHERE c.card_id = b.card_id
      AND NOT EXISTS (SELECT 1 FROM void_after a WHERE a.card_id = b.card_id)
    RETURNING c.card_id, c.status, c.version
),
tombstone AS (
    INSERT INTO card_tombstone AS t (card_id, version)
    SELECT card_id, version + 1 FROM deleted ORDER BY card_id
    ON CONFLICT (card_id) DO UPDATE
        SET version = GREATEST(t.version, EXCLUDED.version), deleted_at = now()
    RETURNING 1
),
changed AS (
    INSERT INTO card_change (
        card_id, previous_status, status, status_at, reason, partner, card_version)
    SELECT u.card_id, b.status, u.status, u.status_at, u.reason, %(partner)s, u.version
    FROM updated u
    JOIN void_before b ON b.card_id = u.card_id
    WHERE (u.status, u.status_at) IS DISTINCT FROM (b.status, b.status_at)
    UNION ALL
    SELECT d.card_id, d.status, NULL, NULL, NULL, %(partner)s, d.version + 1
    FROM deleted d
    RETURNING 1
)
SELECT (SELECT count(*) FROM updated), (SELECT count(*) FROM deleted),
       (SELECT count(*) FROM changed), (SELECT count(*) FROM tombstone)
"""

# One outbox row per card_change row (cardstatus.sql.outbox: the ingestion's writer).
INSERT_OUTBOX = f"""
WITH outbox AS ({outbox_insert("card_change")})
SELECT count(*), min(id), max(id) FROM outbox
"""

# What the void did to each card, next to what the file did (file_card_change, migration 0016):
# one row per card whose current event changed; status_after NULL = the card was deleted.
LINK_CARDS = """
INSERT INTO file_card_change (file_id, card_id, action, status_before, status_after)
SELECT %(file_id)s, card_id, 'void', previous_status, status FROM card_change
ORDER BY card_id
"""

NOW = "SELECT clock_timestamp()"

MARK_VOIDED = """
UPDATE ingested_file
SET voided_at = %(voided_at)s, voided_by = %(voided_by)s, void_reason = %(reason)s,
    report = report || jsonb_build_object('voided', %(voided)s::jsonb)
WHERE id = %(file_id)s
RETURNING report
"""
