-- Ingestion truth: every file's copy of every event (provenance), file identity by meaning,
-- voiding, and the status-change outbox (SPEC §3 and §8, 12-01).
--
-- Works on an empty database and on one that already holds files and events (backfilled).

-- 1. Provenance: one row per (file, event). Two lines of ONE file carrying the same event are
--    one copy: `line` is the file's first line with it, and its fields are merged with the same
--    rule as card_event's (non-null beats null; among different non-null values the smallest
--    in byte order). Every file that carried an event has its own row, so "which files carried
--    this event, at which line, with which fields" is a lookup, and voiding a file deletes its
--    rows and re-merges the events it touched from the remaining copies.
--    No foreign key to ingested_file: the copies are written by COPY in the same transaction as
--    their file row, and a per-row FK check cost more than half of the event insert (profile).
CREATE TABLE event_copy (
    file_id        bigint      NOT NULL,
    card_id        text        NOT NULL,
    status         card_status NOT NULL,
    occurred_at    timestamptz NOT NULL,
    line           integer     NOT NULL,
    phone          text,
    comment        text,
    reason         text,
    partner_row_id text,
    partner        text        NOT NULL,
    CONSTRAINT event_copy_pkey PRIMARY KEY (file_id, card_id, status, occurred_at)
);
CREATE INDEX event_copy_event ON event_copy (card_id, status, occurred_at);

INSERT INTO event_copy (
    file_id, card_id, status, occurred_at, line, phone, comment, reason, partner_row_id, partner)
SELECT source_file_id, card_id, status, occurred_at, source_line, phone, comment, reason,
       partner_row_id, partner
FROM card_event;

-- card_event keeps the merged event; its provenance is event_copy now.
ALTER TABLE card_event DROP CONSTRAINT IF EXISTS card_event_source_file_id_fkey;
DROP INDEX IF EXISTS card_event_source_file;

-- 2. File identity = bytes + meaning. meaning_key = sha256 of (content sha256, partner,
--    fingerprint of the partner's reading settings, event type from the file name), computed
--    by the pipeline. Unique among applied files that are not voided: the same bytes read the
--    same way are applied once; a void frees the key so the file can be applied again.
--    Files applied before this migration keep meaning_key NULL and are matched by sha256 +
--    partner (+ event type from the name) by the pipeline.
ALTER TABLE ingested_file
    ADD COLUMN meaning_key text,
    ADD COLUMN voided_at   timestamptz,
    ADD COLUMN voided_by   text,
    ADD COLUMN void_reason text;
DROP INDEX IF EXISTS ingested_file_applied_sha256;
CREATE UNIQUE INDEX ingested_file_applied_meaning ON ingested_file (meaning_key)
    WHERE outcome = 'applied' AND voided_at IS NULL;
CREATE INDEX ingested_file_applied_sha256 ON ingested_file (sha256)
    WHERE outcome = 'applied' AND voided_at IS NULL;

-- 3. Status-change events (transactional outbox). card.version counts the card's status
--    changes (first sighting = 1); existing cards were sighted once already.
ALTER TABLE card ADD COLUMN version bigint NOT NULL DEFAULT 1;
ALTER TABLE card ALTER COLUMN version SET DEFAULT 0;

CREATE TABLE status_outbox (
    id           bigserial   PRIMARY KEY,
    event_id     uuid        NOT NULL UNIQUE,
    card_id      text,
    card_version bigint,
    detail       jsonb       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    attempts     integer     NOT NULL DEFAULT 0,
    last_error   text
);
CREATE INDEX status_outbox_pending ON status_outbox (id) WHERE published_at IS NULL;

-- 4. Grants. The roles come from 0005_roles.sql (and 0004 for the api role); each grant only
--    when its role exists, so this migration also runs where they do not (yet).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cardstatus_ingest') THEN
        GRANT SELECT, INSERT, UPDATE ON event_copy, status_outbox TO cardstatus_ingest;
        -- the merge of a file's copies into events other files brought (sql/ingest.py):
        -- the merged fields only, never an event's identity (card, status, time)
        GRANT UPDATE (phone, comment, reason, partner_row_id, partner, source_file_id,
                      source_line) ON card_event TO cardstatus_ingest;
        GRANT USAGE, SELECT ON SEQUENCE status_outbox_id_seq TO cardstatus_ingest;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cardstatus_void') THEN
        GRANT SELECT, DELETE, UPDATE ON event_copy TO cardstatus_void;
        GRANT SELECT, INSERT ON status_outbox TO cardstatus_void;
        GRANT USAGE, SELECT ON SEQUENCE status_outbox_id_seq TO cardstatus_void;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cardstatus_api') THEN
        GRANT SELECT ON event_copy, status_outbox TO cardstatus_api;
    END IF;
END
$$;
