"""SQL of partner feed health (`cardstatus.partners`): which partners exist, their files over
a window, their stuck cards, and the recorded feed state (migration 0015).

Every file read is a range scan of ingested_file_partner_recent (partner, finished_at, id)
from 0007, one partner spelling at a time (`unnest` + LATERAL), bounded by the time window or
a LIMIT. "As of" a time: only files finished at or before %(at)s count.

Note on the "newest N files of a partner" reads: written `partner = p` with ORDER BY
finished_at DESC, the planner may walk the global ingested_file_recent index backwards and
filter on the partner, which reads the whole table for a partner that has few or no files
(a new or silent partner: exactly the ones health is about). Written as the range
`partner >= p AND partner <= p` with ORDER BY partner, finished_at, id, only the partner index
gives that order: the scan starts at (p, at) and stops at the partner's first file.
(tests/api/test_api_partner_queries.py checks the plans on 100k files.)
"""

from __future__ import annotations

from cardstatus.sql.outbox import _ISO_UTC, _NOW_MS, _UUID_V7

# Every partner name ingestion has seen: a skip scan of ingested_file_partner_recent (one index
# probe per distinct partner, not a read of every file).
KNOWN_PARTNERS = """
WITH RECURSIVE names AS (
    (SELECT partner FROM ingested_file ORDER BY partner LIMIT 1)
    UNION ALL
    SELECT (SELECT f.partner FROM ingested_file f WHERE f.partner > n.partner
            ORDER BY f.partner LIMIT 1)
    FROM names n
    WHERE n.partner IS NOT NULL
)
SELECT partner FROM names WHERE partner IS NOT NULL
"""

# The files of a partner (its spellings) finished in (since, at], oldest first; duplicates of
# files already applied are not new files and are left out.
FILES_IN_WINDOW = """
SELECT f.id, f.started_at, f.finished_at, f.outcome::text, f.rows_total, f.rows_accepted,
       f.rows_rejected, f.voided_at IS NOT NULL
FROM unnest(%(names)s::text[]) AS n(partner)
CROSS JOIN LATERAL (
    SELECT * FROM ingested_file f
    WHERE f.partner = n.partner
      AND f.finished_at > %(since)s::timestamptz
      AND f.finished_at <= %(at)s::timestamptz
      AND f.outcome <> 'duplicate_file'
    OFFSET 0  -- keeps the subquery per spelling: a range scan of (partner, finished_at)
) f
ORDER BY f.finished_at, f.id
"""

# The partner's latest file at or before `at` (any outcome but duplicate_file): the feed's
# last delivery, whenever it was.
LAST_FILE = """
SELECT f.id, f.object_key, f.started_at, f.finished_at, f.outcome::text, f.rows_total
FROM unnest(%(names)s::text[]) AS n(partner)
CROSS JOIN LATERAL (
    SELECT * FROM ingested_file f
    WHERE f.partner >= n.partner AND f.partner <= n.partner  -- = (see the note above)
      AND f.finished_at <= %(at)s::timestamptz
      AND f.outcome <> 'duplicate_file'
    ORDER BY f.partner DESC, f.finished_at DESC, f.id DESC
    LIMIT 1
) f
ORDER BY f.finished_at DESC, f.id DESC
LIMIT 1
"""

# Rows of the partner's latest applied, not voided files at or before `at`, newest first (the
# volume check: the newest against the median of the ones before it).
RECENT_APPLIED_ROWS = """
SELECT f.id, f.rows_total
FROM unnest(%(names)s::text[]) AS n(partner)
CROSS JOIN LATERAL (
    SELECT f.id, f.rows_total, f.finished_at FROM ingested_file f
    WHERE f.partner >= n.partner AND f.partner <= n.partner  -- = (see the note above)
      AND f.finished_at <= %(at)s::timestamptz
      AND f.outcome = 'applied'
      AND f.voided_at IS NULL
    ORDER BY f.partner DESC, f.finished_at DESC, f.id DESC
    LIMIT %(limit)s
) f
ORDER BY f.finished_at DESC, f.id DESC
LIMIT %(limit)s
"""

# Ingestion's volume check (cardstatus.ingest.pipeline): rows of the partner's last applied,
# not voided files before this one, newest first. One backward range scan of
# ingested_file_partner_recent.
PREVIOUS_APPLIED_ROWS = """
SELECT f.rows_total
FROM ingested_file f
WHERE f.partner >= %(partner)s AND f.partner <= %(partner)s  -- = (see the note above)
  AND f.id <> %(file_id)s
  AND f.outcome = 'applied'
  AND f.voided_at IS NULL
ORDER BY f.partner DESC, f.finished_at DESC, f.id DESC
LIMIT %(limit)s
"""

# Stuck cards per partner and status: current status PICKED_UP or DELIVERY_EXCEPTION since
# before the cutoff, the partner being the partner of the card's current event
# (card.status_partner, 0024), as GET /stuck_cards counts them; spellings of one partner are
# added up under its lower-case key. Read from the partial index card_status_partner_open
# (0025): the partners that have open cards by a skip scan (one probe per partner), then per
# partner and status one index-only range up to the cutoff. Its cost is the stuck cards,
# not the open ones (cards picked up within the last 72 h are not read). The `status IN`
# conditions are the index's predicate, written out so that the planner may use it.
STUCK_BY_PARTNER = """
WITH RECURSIVE partner AS (
    (SELECT c.status_partner AS name FROM card c
     WHERE c.status IN ('PICKED_UP', 'DELIVERY_EXCEPTION') AND c.status_partner IS NOT NULL
     ORDER BY c.status_partner LIMIT 1)
    UNION ALL
    SELECT (SELECT c.status_partner FROM card c
            WHERE c.status IN ('PICKED_UP', 'DELIVERY_EXCEPTION') AND c.status_partner > p.name
            ORDER BY c.status_partner LIMIT 1)
    FROM partner p
    WHERE p.name IS NOT NULL
)
SELECT lower(p.name), s.status::text, sum(n.cards)
FROM partner p
CROSS JOIN (VALUES ('PICKED_UP'::card_status), ('DELIVERY_EXCEPTION'::card_status)) s(status)
CROSS JOIN LATERAL (
    SELECT count(*) AS cards FROM card c
    WHERE c.status_partner = p.name
      AND c.status = s.status
      AND c.status IN ('PICKED_UP', 'DELIVERY_EXCEPTION')
      AND c.status_at < %(cutoff)s::timestamptz
) n
WHERE p.name IS NOT NULL AND n.cards > 0
GROUP BY 1, 2
"""

# --- recorded state (the sweeper, as cardstatus_ingest) -----------------------------------

ENSURE_STATE = """
INSERT INTO partner_feed_state (partner, state, since, checked_at)
VALUES (%(partner)s, 'unknown', %(at)s, %(at)s)
ON CONFLICT (partner) DO NOTHING
"""

# Locked until commit: two sweeps at once see each other's transition, never send it twice.
LOCK_STATE = """
SELECT state, since FROM partner_feed_state WHERE partner = %(partner)s FOR UPDATE
"""

UPDATE_STATE = """
UPDATE partner_feed_state
SET state = %(state)s,
    since = CASE WHEN state = %(state)s THEN since ELSE %(since)s END,
    last_file_at = %(last_file_at)s,
    checked_at = %(at)s,
    last_event_id = COALESCE(%(event_id)s::uuid, last_event_id)
WHERE partner = %(partner)s
"""

READ_STATES = "SELECT partner, state, since FROM partner_feed_state"

# One PartnerFeedLate / PartnerFeedRecovered event in the outbox (same table, publisher and
# guarantees as CardStatusChanged; detail_type from 0015). Returns (outbox id, event id).
INSERT_FEED_EVENT = f"""
INSERT INTO status_outbox (event_id, card_id, card_version, detail, detail_type)
SELECT e.event_id, NULL, NULL,
       jsonb_build_object('event_id', e.event_id::text) || %(detail)s::jsonb
           || jsonb_build_object('emitted_at', {_ISO_UTC.format(_NOW_MS)}),
       %(detail_type)s
FROM (SELECT {_UUID_V7} AS event_id) e
RETURNING id, event_id::text
"""
