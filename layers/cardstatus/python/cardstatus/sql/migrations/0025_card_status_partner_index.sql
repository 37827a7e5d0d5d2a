-- migrate: no-transaction
-- Scale (issue 21): the stuck cards of one partner, oldest first (GET /stuck_cards?partner=P,
-- STUCK_CARDS_OF_PARTNER and STUCK_COUNT_OF_PARTNER in cardstatus/sql/ops.py), and the count of
-- stuck cards per partner and status (GET /partners, STUCK_BY_PARTNER in sql/partners.py): one
-- range of this index per (partner, status), read in the order the route answers in, up to
-- the page size or the cutoff. Partial: only the open statuses those routes ask for.
CREATE INDEX CONCURRENTLY IF NOT EXISTS card_status_partner_open
    ON card (status_partner, status, status_at, card_id)
    WHERE status IN ('PICKED_UP', 'DELIVERY_EXCEPTION');

-- The cards the backfill (cardstatus.statuspartner) has yet to fill: all of them once, after
-- 0024; then none but the few written without a current event, so a later migrate run checks
-- them in an instant instead of reading every card.
CREATE INDEX CONCURRENTLY IF NOT EXISTS card_status_partner_unset
    ON card (card_id)
    WHERE status_partner IS NULL;
