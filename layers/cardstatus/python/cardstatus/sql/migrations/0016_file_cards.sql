-- Files and cards linked both ways, rejects ops can act on, files in progress (SPEC §9b;
-- README "Operations"). Additive only: a new table, nullable columns (no table rewrite), a new
-- enum value. The previous release's code runs unchanged against this schema.

-- 1. A file being ingested is visible: its ingested_file row is committed with this outcome
--    in a short transaction of its own before the rows are read, and set to the final outcome
--    by the file's own transaction (cardstatus/ingest/pipeline.py). ADD VALUE runs inside this
--    migration's transaction (PostgreSQL >= 12); nothing below uses the new value.
ALTER TYPE file_outcome ADD VALUE IF NOT EXISTS 'in_progress';

-- 2. Each card a file changed, and what a void of it did: one row per (file, action, card)
--    whose current event (status, time) changed. Written set-based in the same transaction as
--    the change: by ingestion's projection step (action 'apply', one INSERT ... SELECT from the
--    cards whose status it changed) and by a void (action 'void'). status_before NULL: the
--    card was new; status_after NULL: the void removed the card's last event (card deleted).
--    GET /files/{file_id}/cards pages through the primary key (file_id first, keyset on the
--    rest). No foreign key (like event_copy: a per-row check on the ingest hot path).
CREATE TABLE file_card_change (
    file_id       bigint      NOT NULL,
    card_id       text        NOT NULL,
    action        text        NOT NULL,
    status_before card_status,
    status_after  card_status,
    changed_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT file_card_change_pkey PRIMARY KEY (file_id, action, card_id),
    CONSTRAINT file_card_change_action CHECK (action IN ('apply', 'void'))
);

-- 3. Rejects ops can act on: the card id when it was readable, and the raw row as CSV text
--    with only the phone cells masked (last 4 digits kept) and free-text comments phone-masked.
ALTER TABLE rejected_row
    ADD COLUMN card_id text,
    ADD COLUMN raw_row text;

-- 4. Grants, explicit per role (never through default privileges).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cardstatus_ingest') THEN
        GRANT INSERT ON file_card_change TO cardstatus_ingest;
        -- rejected_row's new columns: INSERT (COPY) is table-wide already (0005), restated.
        GRANT INSERT ON rejected_row TO cardstatus_ingest;
        -- a run removes its own in-progress row when it turns out to be a redelivery (nothing
        -- references that row: its copies were rolled back), and a stale one of a crashed run
        GRANT DELETE ON ingested_file TO cardstatus_ingest;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cardstatus_void') THEN
        GRANT INSERT ON file_card_change TO cardstatus_void;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cardstatus_api') THEN
        GRANT SELECT ON file_card_change TO cardstatus_api;
    END IF;
END
$$;
