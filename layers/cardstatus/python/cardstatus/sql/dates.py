"""Date checks of an applied file (README "Partner files and reports": date order from
evidence), run once per file after its rows are merged, set-based over the file's copies
(event_copy, keyed by file_id first).

* BEFORE_FIRST_PICKUP: the file's non-pickup events earlier than their card's first pickup
  (any file's); index probes only for the few cards where that is possible (see below).
* OUTSIDE_DAYS: the file's events outside its main date range; the range comes from the day
  counts kept while the rows streamed (``cardstatus.ingest.rows.far_days``), so this runs only
  for a file that has such events.
Each listing query returns at most %(limit)s lines and the total as its last column.
"""

# Run after the projection step (its temp tables changed_event, this file's events, and
# card_before, the cards that existed before it, are still there). Only cards that can have an
# event before their first pickup are probed: a non-pickup event of this file earlier than
# this file's own pickup of the card, or a card that existed before this file and has no
# pickup in it. A new card without a pickup in this file has no pickup at all: no probe.
BEFORE_FIRST_PICKUP = """
WITH mine AS (
    SELECT card_id,
           min(occurred_at) FILTER (WHERE status <> 'PICKED_UP') AS earliest_other,
           min(occurred_at) FILTER (WHERE status = 'PICKED_UP') AS file_pickup
    FROM changed_event
    GROUP BY card_id
), candidates AS (
    SELECT m.card_id
    FROM mine m
    WHERE m.earliest_other IS NOT NULL
      AND (m.file_pickup > m.earliest_other
           OR (m.file_pickup IS NULL AND m.card_id IN (SELECT card_id FROM card_before)))
)
SELECT c.line, k.card_id, c.status, c.occurred_at, p.first_pickup, count(*) OVER ()
FROM candidates k
CROSS JOIN LATERAL (
    SELECT e.occurred_at AS first_pickup
    FROM card_event e
    WHERE e.card_id = k.card_id AND e.status = 'PICKED_UP'
    ORDER BY e.occurred_at
    LIMIT 1
) p
CROSS JOIN LATERAL (
    SELECT x.line, x.status, x.occurred_at
    FROM event_copy x
    WHERE x.file_id = %(file_id)s AND x.card_id = k.card_id
      AND x.status <> 'PICKED_UP' AND x.occurred_at < p.first_pickup
    -- OFFSET 0 keeps this a primary-key probe per candidate. Flattened into a join, the
    -- planner reads this new file's copies as one row (its statistics predate the file) and
    -- loops over all candidates for each of them: minutes for a 100k-row file.
    OFFSET 0
) c
ORDER BY c.line
LIMIT %(limit)s
"""

# The events of the file outside its main date range (far_days in cardstatus.ingest.rows,
# from the day counts kept while the rows streamed): only run when there are such days.
OUTSIDE_DAYS = """
SELECT line, occurred_at, count(*) OVER ()
FROM event_copy
WHERE file_id = %(file_id)s
  AND ((occurred_at AT TIME ZONE 'UTC')::date < %(first_day)s::date
       OR (occurred_at AT TIME ZONE 'UTC')::date > %(last_day)s::date)
ORDER BY line
LIMIT %(limit)s
"""
