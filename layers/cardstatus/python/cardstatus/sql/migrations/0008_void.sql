-- Voiding a file (SPEC §3 "Void a file", cardstatus/void.py).
--
-- A void that removes every event of a card deletes the card (the state is exactly what it
-- would be had the file never been applied) and emits a CardStatusChanged with status null at
-- version n+1. If the card is sighted again later, its first-sighting event must continue
-- that sequence (consumers drop an event whose card_version is not greater than the last one
-- they applied), so the last version of a deleted card is kept here and ingestion starts a
-- re-created card at tombstone version + 1 instead of 1. A row stays after the card comes
-- back (harmless: only an INSERT of a new card reads it, and a later void overwrites it).
CREATE TABLE card_tombstone (
    card_id    text        PRIMARY KEY,
    version    bigint      NOT NULL,
    deleted_at timestamptz NOT NULL DEFAULT now()
);

-- Grants (the roles come from 0005; cardstatus_api reads it through the default privileges).
-- 0005 and 0006 already granted the void role everything else a void does: SELECT/UPDATE on
-- ingested_file, SELECT/UPDATE/DELETE on card_event and event_copy, SELECT/INSERT/UPDATE/DELETE
-- on card, INSERT on status_outbox.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cardstatus_void') THEN
        GRANT SELECT, INSERT, UPDATE ON card_tombstone TO cardstatus_void;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cardstatus_ingest') THEN
        GRANT SELECT ON card_tombstone TO cardstatus_ingest;
    END IF;
END
$$;
