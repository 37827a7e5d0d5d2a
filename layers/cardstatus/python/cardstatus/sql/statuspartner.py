"""SQL of the card.status_partner backfill (cardstatus.statuspartner; migrations 0024, 0025).

Each statement fills one batch of cards whose status_partner is still NULL with the partner of
their current event (card_event's primary key is the card's (card_id, status, status_at)), in
one short transaction, and answers the batch's last key (the next batch starts after it) and
how many it filled. The batch's cards are locked in index order, skipping those a writer holds
(an ingest or a void sets status_partner itself); a card without a current event stays NULL
and is passed over. First the open cards (the ones GET /stuck_cards and GET /partners read),
through card_status_partner_open, then every other card through card_status_partner_unset.
"""

from __future__ import annotations

_FILL = """
filled AS (
    UPDATE card c
    SET status_partner = e.partner
    FROM todo t
    JOIN card_event e
      ON (e.card_id, e.status, e.occurred_at) = (t.card_id, t.status, t.status_at)
    WHERE c.card_id = t.card_id
    RETURNING 1
)
"""

FILL_OPEN = f"""
WITH todo AS (
    SELECT c.card_id, c.status, c.status_at
    FROM card c
    WHERE c.status_partner IS NULL
      AND c.status IN ('PICKED_UP', 'DELIVERY_EXCEPTION')
      AND (%(after_id)s::text IS NULL
           OR (c.status, c.status_at, c.card_id)
              > (%(after_status)s::card_status, %(after_at)s::timestamptz, %(after_id)s::text))
    ORDER BY c.status, c.status_at, c.card_id
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
),
{_FILL}
SELECT t.card_id, t.status::text, t.status_at, (SELECT count(*) FROM filled)
FROM todo t
ORDER BY t.status DESC, t.status_at DESC, t.card_id DESC
LIMIT 1
"""

FILL_ALL = f"""
WITH todo AS (
    SELECT c.card_id, c.status, c.status_at
    FROM card c
    WHERE c.status_partner IS NULL
      AND (%(after_id)s::text IS NULL OR c.card_id > %(after_id)s::text)
    ORDER BY c.card_id
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
),
{_FILL}
SELECT t.card_id, t.status::text, t.status_at, (SELECT count(*) FROM filled)
FROM todo t
ORDER BY t.card_id DESC
LIMIT 1
"""

# Cards still without a partner (those without a current event, or not reached yet).
UNSET = "SELECT count(*) FROM card WHERE status_partner IS NULL"
