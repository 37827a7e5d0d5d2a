-- No full phone number at rest (README "Privacy", cardstatus/phonehash.py). Expand step of an
-- expand/contract change:
--
-- * card, card_event and event_copy gain phone_hash (hex HMAC-SHA-256 of the E.164 number under
--   a secret key), phone_key (that key's version) and phone_last4 (the last 4 digits, for
--   display). Adding nullable columns without a default rewrites nothing.
-- * The old `phone` columns stay for one release (the previous release's code still writes
--   them while a deploy rolls out) and are NULLed by the backfill (cardstatus/phonebackfill.py),
--   which needs the key and therefore runs in Python right after the migrations: the migrate
--   function and `cardstatus migrate` run it after every migration run, so rows the previous
--   release wrote during the rollout are hashed by the next run (or `cardstatus phone-key
--   backfill`). A later contract migration drops the `phone` columns and their index.
-- * Indexes on phone_hash: 0014_phone_hash_indexes.sql (CONCURRENTLY, outside a transaction).
ALTER TABLE card
    ADD COLUMN phone_hash  text,
    ADD COLUMN phone_key   smallint,
    ADD COLUMN phone_last4 text;
ALTER TABLE card_event
    ADD COLUMN phone_hash  text,
    ADD COLUMN phone_key   smallint,
    ADD COLUMN phone_last4 text;
ALTER TABLE event_copy
    ADD COLUMN phone_hash  text,
    ADD COLUMN phone_key   smallint,
    ADD COLUMN phone_last4 text;

-- The three travel together: all set or all NULL; a hash is 64 hex digits. NOT VALID: existing
-- rows are all NULL anyway, and validating would scan the tables under a lock.
ALTER TABLE card ADD CONSTRAINT card_phone_hash_shape CHECK (
    (phone_hash IS NULL AND phone_key IS NULL AND phone_last4 IS NULL)
    OR (phone_hash ~ '^[0-9a-f]{64}$' AND phone_key > 0 AND phone_last4 ~ '^[0-9]{4}$')) NOT VALID;
ALTER TABLE card_event ADD CONSTRAINT card_event_phone_hash_shape CHECK (
    (phone_hash IS NULL AND phone_key IS NULL AND phone_last4 IS NULL)
    OR (phone_hash ~ '^[0-9a-f]{64}$' AND phone_key > 0 AND phone_last4 ~ '^[0-9]{4}$')) NOT VALID;
ALTER TABLE event_copy ADD CONSTRAINT event_copy_phone_hash_shape CHECK (
    (phone_hash IS NULL AND phone_key IS NULL AND phone_last4 IS NULL)
    OR (phone_hash ~ '^[0-9a-f]{64}$' AND phone_key > 0 AND phone_last4 ~ '^[0-9]{4}$')) NOT VALID;

-- Grants: ingestion merges the new columns into events other files brought (0006 granted the
-- same on `phone`); card and event_copy are granted table-wide (0005, 0006), and the void and
-- api roles have table-wide rights on all three.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cardstatus_ingest') THEN
        GRANT UPDATE (phone_hash, phone_key, phone_last4) ON card_event TO cardstatus_ingest;
    END IF;
END
$$;
