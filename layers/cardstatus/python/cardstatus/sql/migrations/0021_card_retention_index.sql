-- migrate: no-transaction
-- The retention purge (0020) takes the oldest cards first: an index on the card's latest event
-- time, built without blocking writes to `card`.
CREATE INDEX CONCURRENTLY IF NOT EXISTS card_status_at ON card (status_at);
