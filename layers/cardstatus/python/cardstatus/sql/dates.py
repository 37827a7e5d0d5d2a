"""Date checks of an applied file (README "Partner files and reports": date order from
evidence), run once per file after its rows are merged, set-based over the file's copies
(event_copy, keyed by file_id first).

* BEFORE_FIRST_PICKUP: the file's non-pickup events earlier than their card's first pickup
  (any file's), one index probe per such event (card_event's primary key).
* DATE_CLUSTERS: the file's event days split where two consecutive days are more than
  GAP_DAYS apart; FAR_FROM_THE_FILE (only run when there are several clusters): the events
  outside the largest cluster (most events; the later one on a tie).
Each listing query returns at most %(limit)s lines and the total as its last column.
"""

GAP_DAYS = 31

BEFORE_FIRST_PICKUP = """
SELECT c.line, c.card_id, c.status, c.occurred_at, p.first_pickup, count(*) OVER ()
FROM event_copy c
CROSS JOIN LATERAL (
    SELECT e.occurred_at AS first_pickup
    FROM card_event e
    WHERE e.card_id = c.card_id AND e.status = 'PICKED_UP'
    ORDER BY e.occurred_at
    LIMIT 1
) p
WHERE c.file_id = %(file_id)s AND c.status <> 'PICKED_UP' AND c.occurred_at < p.first_pickup
ORDER BY c.line
LIMIT %(limit)s
"""

_CLUSTERED = """
WITH days AS (
    SELECT date_trunc('day', occurred_at, 'UTC') AS day, count(*) AS n
    FROM event_copy WHERE file_id = %(file_id)s GROUP BY 1
), marked AS (
    SELECT day, n,
           CASE WHEN day - lag(day) OVER (ORDER BY day) > make_interval(days => %(gap_days)s)
                THEN 1 ELSE 0 END AS brk
    FROM days
), clustered AS (
    SELECT day, n, sum(brk) OVER (ORDER BY day) AS cluster FROM marked
), sizes AS (
    SELECT cluster, sum(n) AS events, min(day) AS first_day, max(day) AS last_day
    FROM clustered GROUP BY cluster
)
"""

DATE_CLUSTERS = (
    _CLUSTERED
    + """
SELECT cluster, events, first_day, last_day FROM sizes ORDER BY cluster
"""
)

FAR_FROM_THE_FILE = (
    _CLUSTERED
    + """
, main AS (
    SELECT cluster, first_day, last_day FROM sizes ORDER BY events DESC, cluster DESC LIMIT 1
)
SELECT c.line, c.occurred_at, main.first_day, main.last_day, count(*) OVER ()
FROM event_copy c
JOIN clustered k ON k.day = date_trunc('day', c.occurred_at, 'UTC')
CROSS JOIN main
WHERE c.file_id = %(file_id)s AND k.cluster <> main.cluster
ORDER BY c.line
LIMIT %(limit)s
"""
)
