-- Operations read routes (README "Operations"): recent files, a file's rejects, stuck cards.
-- Each query of cardstatus/sql/ops.py is an index scan in the order it answers (keyset paging,
-- no sort), at 1M cards / 100k files (tests/api/test_api_ops_queries.py checks the plans).
--
-- Plain CREATE INDEX (the migration runs in one transaction): on a large table it blocks writes
-- to that table for the seconds the build takes, once, at deploy time.

-- GET /files: newest first by (finished_at, id), optionally one partner or one outcome.
-- (A backward scan of an ascending index serves the descending order and the row comparison
-- `(finished_at, id) < (cursor)`.)
CREATE INDEX ingested_file_recent ON ingested_file (finished_at, id);
CREATE INDEX ingested_file_partner_recent ON ingested_file (partner, finished_at, id);
CREATE INDEX ingested_file_outcome_recent ON ingested_file (outcome, finished_at, id);

-- GET /files/{id}/rejects pages through rejected_row's primary key (file_id, line): no index.

-- GET /stuck_cards: cards whose current status is still open (picked up, or in exception),
-- oldest first. Partial: delivered and returned cards (the vast majority) are not in it.
-- The partner of a card is the partner of its current event: a primary-key lookup in card_event.
CREATE INDEX card_open_status_age ON card (status, status_at, card_id)
    WHERE status IN ('PICKED_UP', 'DELIVERY_EXCEPTION');

-- No grants: indexes need none (the api role reads every table, 0005).
