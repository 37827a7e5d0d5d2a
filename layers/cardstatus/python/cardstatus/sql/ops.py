"""Read-side SQL of the operations routes: recent files, one file, its rejects, stuck cards.

Every statement is one index scan in the order it answers (indexes from 0007_ops.sql and
primary keys), paged by keyset: the cursor holds the last row's sort key and the next page
starts strictly after it, so pages never skip or repeat rows while files keep arriving.

Optional filters are written `(%(x)s IS NULL OR col = %(x)s)`: psycopg2 sends the values
inline, so PostgreSQL folds each absent filter away before planning and the plan is the one
of the query without it (tests/api/test_api_ops_queries.py checks the plans).
"""

from __future__ import annotations

# GET /files: newest first. `reason` is the report's (rejected and duplicate files say why).
FILES = """
SELECT f.id,
       f.object_key,
       f.partner,
       f.outcome::text,
       f.rows_total,
       f.rows_accepted,
       f.rows_duplicate,
       f.rows_rejected,
       f.warnings,
       f.report ->> 'reason',
       f.started_at,
       f.finished_at,
       f.voided_at IS NOT NULL,
       (f.report ->> 'status_changes')::bigint
FROM ingested_file f
WHERE (%(partner)s::text IS NULL OR f.partner = %(partner)s::text)
  AND (%(has_rejects)s::boolean IS NULL OR (f.rows_rejected > 0) = %(has_rejects)s::boolean)
  AND (%(outcome)s::file_outcome IS NULL OR f.outcome = %(outcome)s::file_outcome)
  AND (%(since)s::timestamptz IS NULL OR f.finished_at >= %(since)s::timestamptz)
  AND (%(after_at)s::timestamptz IS NULL
       OR (f.finished_at, f.id) < (%(after_at)s::timestamptz, %(after_id)s::bigint))
ORDER BY f.finished_at DESC, f.id DESC
LIMIT %(limit)s
"""

# GET /files/{file_id}: the stored report and the columns it may lack (void, times).
FILE = """
SELECT f.id, f.outcome::text, f.report, f.started_at, f.finished_at,
       f.voided_at, f.voided_by, f.void_reason
FROM ingested_file f
WHERE f.id = %(file_id)s
"""

FILE_EXISTS = "SELECT 1 FROM ingested_file WHERE id = %(file_id)s"

# GET /files/{file_id}/rejects: in line order, through rejected_row's primary key.
REJECTS = """
SELECT r.line, r.reason, r.card_id, r.raw_row
FROM rejected_row r
WHERE r.file_id = %(file_id)s
  AND (%(after_line)s::integer IS NULL OR r.line > %(after_line)s::integer)
ORDER BY r.line
LIMIT %(limit)s
"""

# GET /stuck_cards: cards whose current status is `status` since before the cutoff, oldest
# first, read in that order from the partial index card_open_status_age up to the page size.
# A card's partner is its current event's: a primary-key lookup in card_event (whose key is the
# card's (card_id, status, status_at)), written as a scalar subquery so that it stays a lookup
# per card read (a join could read card_event whole). The partner filter is wrapped in
# COALESCE, which the planner estimates at 1/2 rather than 1/200 (its guess for "= constant" on
# a subquery); with 1/200 it would collect every stuck card and sort them.
_CARD_PARTNER = """(
    SELECT e.partner FROM card_event e
    WHERE e.card_id = c.card_id AND e.status = c.status AND e.occurred_at = c.status_at
)"""

STUCK_CARDS = f"""
SELECT c.card_id,
       c.status::text,
       c.status_at,
       {_CARD_PARTNER},
       extract(epoch FROM statement_timestamp() - c.status_at) / 3600.0,
       c.reason, c.comment, c.exception_count,
       (SELECT e.source_file_id FROM card_event e
        WHERE e.card_id = c.card_id AND e.status = c.status AND e.occurred_at = c.status_at)
FROM card c
WHERE c.status = %(status)s::card_status
  AND c.status_at < statement_timestamp() - make_interval(secs => %(older_than_s)s)
  AND (%(after_at)s::timestamptz IS NULL
       OR (c.status_at, c.card_id) > (%(after_at)s::timestamptz, %(after_id)s::text))
  AND (%(partner)s::text IS NULL OR COALESCE({_CARD_PARTNER} = %(partner)s::text, false))
ORDER BY c.status_at, c.card_id
LIMIT %(limit)s
"""

# The number of stuck cards for the same filters, counted up to %(cap)s (the first page's
# total: "1,204 cards", or "10,000+" past the cap), along the same partial index.
STUCK_COUNT = f"""
SELECT count(*) FROM (
    SELECT 1
    FROM card c
    WHERE c.status = %(status)s::card_status
      AND c.status_at < statement_timestamp() - make_interval(secs => %(older_than_s)s)
      AND (%(partner)s::text IS NULL OR COALESCE({_CARD_PARTNER} = %(partner)s::text, false))
    ORDER BY c.status_at, c.card_id  -- the index's order: read along it, stop at the cap
    LIMIT %(cap)s
) s
"""

# GET /stuck_cards?partner=P: the same answer as STUCK_CARDS with a partner, read from the
# partial index card_status_partner_open (0025) on (status_partner, status, status_at,
# card_id): one range, in the order the route answers in, stopped at the page size.
# card.status_partner is the partner of the card's current event (0024, kept in step with the
# status by ingestion and void), so no card_event lookup decides which cards belong to P; only
# the page's rows look up their event's file. Its cost is the page, whatever the number of
# stuck cards of P or of other partners (with card_event_partner_open, 0018, it was P's open
# events per stuck card of P: 690 ms at 10M cards).
STUCK_CARDS_OF_PARTNER = """
SELECT c.card_id,
       c.status::text,
       c.status_at,
       c.status_partner,
       extract(epoch FROM statement_timestamp() - c.status_at) / 3600.0,
       c.reason, c.comment, c.exception_count,
       (SELECT e.source_file_id FROM card_event e
        WHERE e.card_id = c.card_id AND e.status = c.status AND e.occurred_at = c.status_at)
FROM card c
WHERE c.status_partner = %(partner)s::text
  AND c.status = %(status)s::card_status
  AND c.status_at < statement_timestamp() - make_interval(secs => %(older_than_s)s)
  AND (%(after_at)s::timestamptz IS NULL
       OR (c.status_at, c.card_id) > (%(after_at)s::timestamptz, %(after_id)s::text))
ORDER BY c.status_at, c.card_id
LIMIT %(limit)s
"""

# The first page's total with a partner filter: the same range of card_status_partner_open,
# counted up to %(cap)s (an index-only scan).
STUCK_COUNT_OF_PARTNER = """
SELECT count(*) FROM (
    SELECT 1
    FROM card c
    WHERE c.status_partner = %(partner)s::text
      AND c.status = %(status)s::card_status
      AND c.status_at < statement_timestamp() - make_interval(secs => %(older_than_s)s)
    ORDER BY c.status_at, c.card_id  -- the index's order: read along it, stop at the cap
    LIMIT %(cap)s
) s
"""

# GET /phone_conflicts: copies whose phone differs from another file's copy of the same event
# (phone_conflict, written by ingestion; README "Card ownership"), newest first through the
# index phone_conflict_recent. A conflict whose file or other file is voided is left out.
# `kept`: whether the event's phone is this copy's. No phone is read out.
PHONE_CONFLICTS = """
SELECT p.file_id, p.line, f.partner, p.card_id, p.status::text, p.occurred_at,
       p.other_file_id, p.other_line, o.partner, c.owner_partner,
       (e.phone_hash IS NOT DISTINCT FROM mine.phone_hash), p.detected_at
FROM phone_conflict p
JOIN ingested_file f ON f.id = p.file_id
JOIN ingested_file o ON o.id = p.other_file_id
LEFT JOIN card_event e
  ON (e.card_id, e.status, e.occurred_at) = (p.card_id, p.status, p.occurred_at)
LEFT JOIN event_copy mine
  ON (mine.file_id, mine.card_id, mine.status, mine.occurred_at)
     = (p.file_id, p.card_id, p.status, p.occurred_at)
LEFT JOIN card c ON c.card_id = p.card_id
WHERE f.voided_at IS NULL AND o.voided_at IS NULL
  AND (%(since)s::timestamptz IS NULL OR p.detected_at >= %(since)s::timestamptz)
  AND (%(after_at)s::timestamptz IS NULL
       OR (p.detected_at, p.file_id, p.line)
          < (%(after_at)s::timestamptz, %(after_id)s::bigint, %(after_line)s::integer))
ORDER BY p.detected_at DESC, p.file_id DESC, p.line DESC
LIMIT %(limit)s
"""
