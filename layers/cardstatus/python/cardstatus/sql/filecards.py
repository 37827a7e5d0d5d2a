"""Read-side SQL linking files and cards (migration 0016; cardstatus.filecards).

- FILE_CARDS: what a file did to each card (file_card_change, written by ingestion and by a
  void), through the table's primary key (file_id, action, card_id): keyset, no sort.
- VOID_PREVIEW: what a void of the file would do, computed read-only from the events other
  files keep: the cards the file carried events of (event_copy's primary key starts with
  file_id, so they come in card_id order), each with its current status and the status it
  would have without this file's copies (the latest event that another file also carried).
- REJECTS_PAGE: every rejected row with its card id and masked raw row (rejected_row's
  primary key).
"""

from __future__ import annotations

FILE_CARDS = """
SELECT x.action, x.card_id, x.status_before::text, x.status_after::text, x.changed_at,
       c.status::text
FROM file_card_change x
LEFT JOIN card c ON c.card_id = x.card_id
WHERE x.file_id = %(file_id)s
  AND (%(action)s::text IS NULL OR x.action = %(action)s::text)
  AND (%(after_action)s::text IS NULL
       OR (x.action, x.card_id) > (%(after_action)s::text, %(after_card)s::text))
ORDER BY x.action, x.card_id
LIMIT %(limit)s
"""

FILE_STATE = """
SELECT f.outcome::text, f.voided_at IS NOT NULL,
       (f.report ->> 'cards_touched')::bigint, (f.report ->> 'status_changes')::bigint,
       (f.report -> 'voided' ->> 'status_changes')::bigint
FROM ingested_file f
WHERE f.id = %(file_id)s
"""

# One page of the cards the file touched (at most %(scan)s of them, from %(after_card)s on),
# each with what a void would leave: (card_id, status now, status after, whether the current
# event changes, whether the card would be deleted). The caller keeps the changing ones.
_TOUCHED = """
WITH touched AS (
    SELECT DISTINCT o.card_id
    FROM event_copy o
    WHERE o.file_id = %(file_id)s
      AND (%(after_card)s::text IS NULL OR o.card_id > %(after_card)s::text)
    ORDER BY o.card_id
    LIMIT %(scan)s
),
judged AS (
    SELECT t.card_id, c.status AS status_now, c.status_at AS status_at_now,
           r.status AS status_after, r.occurred_at AS status_at_after
    FROM touched t
    JOIN card c ON c.card_id = t.card_id
    LEFT JOIN LATERAL (
        SELECT e.status, e.occurred_at
        FROM card_event e
        WHERE e.card_id = t.card_id
          AND EXISTS (
              SELECT 1 FROM event_copy k
              WHERE (k.card_id, k.status, k.occurred_at) = (e.card_id, e.status, e.occurred_at)
                AND k.file_id <> %(file_id)s)
        ORDER BY e.occurred_at DESC, e.status DESC
        LIMIT 1
    ) r ON true
)
"""

VOID_PREVIEW = (
    _TOUCHED
    + """
SELECT card_id, status_now::text, status_after::text,
       (status_now, status_at_now) IS DISTINCT FROM (status_after, status_at_after),
       (SELECT max(card_id) FROM touched), (SELECT count(*) FROM touched)
FROM judged
ORDER BY card_id
"""
)

VOID_PREVIEW_COUNT = (
    _TOUCHED
    + """
SELECT count(*), count(*) FILTER (
           WHERE (status_now, status_at_now) IS DISTINCT FROM (status_after, status_at_after)),
       count(*) FILTER (WHERE status_after IS NULL)
FROM judged
"""
)

REJECTS_PAGE = """
SELECT r.line, r.reason, r.card_id, r.raw_row
FROM rejected_row r
WHERE r.file_id = %(file_id)s
  AND (%(after_line)s::integer IS NULL OR r.line > %(after_line)s::integer)
ORDER BY r.line
LIMIT %(limit)s
"""
