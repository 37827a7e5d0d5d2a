-- Cards belong to partners (SPEC §3 "Cards belong to partners", README "Card ownership").
--
-- 1. card.owner_partner = the partner of the card's earliest event: the smallest
--    (occurred_at, status, partner in byte order) over the card's copies (event_copy).
--    (first_event_at, first_event_rank) is that event, kept so that ingestion folds a file's
--    events into the owner with a commutative minimum (any order of files, same owner) and a
--    void recomputes it from the copies that remain. Nullable columns without a default: no
--    table rewrite; existing cards are backfilled from their copies below (one UPDATE: it
--    row-locks the cards until the migration commits, so a file of existing cards waits for
--    it). A card the previous release creates after this backfill, while the deploy runs, has
--    no owner: ingestion then reads it from the card's copies and writes it down
--    (cardstatus.sql.ownership FOREIGN_ROWS, cardstatus.sql.ingest HEAL_OWNERS).
ALTER TABLE card
    ADD COLUMN owner_partner    text,
    ADD COLUMN first_event_at   timestamptz,
    ADD COLUMN first_event_rank card_status;

UPDATE card c
SET owner_partner = f.partner, first_event_at = f.occurred_at, first_event_rank = f.status
FROM (
    SELECT DISTINCT ON (card_id) card_id, occurred_at, status, partner
    FROM event_copy
    ORDER BY card_id, occurred_at, status, partner COLLATE "C"
) f
WHERE f.card_id = c.card_id;

-- 2. Phone conflicts between copies of one event, for ops (GET /phone_conflicts): one row per
--    copy a file brought whose phone differs from another file's copy of the same event. No
--    phone is stored here (the copies keep theirs); a conflict whose file or other file is
--    voided is no longer listed (the read filters it, so a void writes nothing here).
CREATE TABLE phone_conflict (
    file_id       bigint      NOT NULL,
    line          integer     NOT NULL,
    card_id       text        NOT NULL,
    status        card_status NOT NULL,
    occurred_at   timestamptz NOT NULL,
    other_file_id bigint      NOT NULL,
    other_line    integer     NOT NULL,
    detected_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT phone_conflict_pkey PRIMARY KEY (file_id, card_id, status, occurred_at)
);
CREATE INDEX phone_conflict_recent ON phone_conflict (detected_at DESC, file_id DESC, line DESC);

-- Grants: ingestion records conflicts, the API lists them; voiding never touches them. The new
-- card columns are covered by the table grants of 0005 (ingest and void write card).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cardstatus_ingest') THEN
        GRANT SELECT, INSERT ON phone_conflict TO cardstatus_ingest;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cardstatus_api') THEN
        GRANT SELECT ON phone_conflict TO cardstatus_api;
    END IF;
END
$$;
