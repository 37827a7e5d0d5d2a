-- migrate: no-transaction
-- Lookups by phone go through phone_hash (cardstatus/sql/cards.py): the same shape as
-- card_phone_latest (0001), which serves the old `phone` column until the contract migration
-- drops it. card_event and event_copy get one too: erasure by phone (SPEC §11) finds every
-- event and copy of a number by its hash. Built CONCURRENTLY (no lock on busy tables).
CREATE INDEX CONCURRENTLY IF NOT EXISTS card_phone_hash_latest
    ON card (phone_hash, status_at DESC, status DESC) WHERE phone_hash IS NOT NULL;
CREATE INDEX CONCURRENTLY IF NOT EXISTS card_event_phone_hash
    ON card_event (phone_hash) WHERE phone_hash IS NOT NULL;
CREATE INDEX CONCURRENTLY IF NOT EXISTS event_copy_phone_hash
    ON event_copy (phone_hash) WHERE phone_hash IS NOT NULL;
