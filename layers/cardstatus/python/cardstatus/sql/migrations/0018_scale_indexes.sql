-- migrate: no-transaction
-- Scale (issue 21): GET /stuck_cards?partner=P. A stuck card's partner is its current event's
-- (card_event, not card), so the unfiltered plan walks card_open_status_age and looks each card's
-- event up: for a partner with few stuck cards that is every stuck card of the status (200k at
-- 10M cards, seconds). This index lets the partner-filtered statement (STUCK_CARDS_OF_PARTNER in
-- cardstatus/sql/ops.py) start from the partner's open events instead, oldest first (the order
-- the route answers in), and keep those that are still their card's current status. Partial:
-- only the open statuses the route asks for. Built CONCURRENTLY: card_event is large and
-- written by every ingest; a failed build leaves an INVALID index that the next run drops first.
CREATE INDEX CONCURRENTLY IF NOT EXISTS card_event_partner_open
    ON card_event (partner, status, occurred_at, card_id)
    WHERE status IN ('PICKED_UP', 'DELIVERY_EXCEPTION');
