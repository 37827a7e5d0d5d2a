-- Least privilege (issue 18 N7, SPEC §10): each role keeps exactly the statements (and, for
-- the writes the review found too wide, the columns) its code runs. tests/test_db_privileges.py
-- lists every privilege of every cardstatus role and compares it with tests/db_privileges.json.
--
-- * api: reads card, card_event, ingested_file, rejected_row (sql/cards.py, sql/ops.py), no
--   longer every table: no event_copy (per-copy phones), status_outbox, card_tombstone, and no
--   default privileges on future tables (each migration grants what the api reads, explicitly).
-- * void (sql/void.py): no INSERT on card (a void never creates a card), no UPDATE on
--   event_copy (it deletes its file's copies, never rewrites others), and on ingested_file only
--   the void columns (it cannot re-point a file's bucket/object_key, where its report goes).
-- * ingest (sql/ingest.py): on ingested_file only the columns of its report and identity (it
--   cannot mark a file voided); on status_outbox only the publish columns (it cannot rewrite
--   an event's detail).
-- * The sweeper logs in as ingest (0019/0020 grant it their maintenance functions), so the
--   ingest narrowing above bounds it too.
-- api
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT ON TABLES FROM cardstatus_api;
REVOKE ALL ON event_copy, status_outbox, card_tombstone, schema_migrations
    FROM cardstatus_api;
GRANT SELECT ON card, card_event, ingested_file, rejected_row TO cardstatus_api;

-- void
REVOKE INSERT ON card FROM cardstatus_void;
REVOKE UPDATE ON event_copy FROM cardstatus_void;
REVOKE UPDATE ON ingested_file FROM cardstatus_void;
GRANT UPDATE (voided_at, voided_by, void_reason, report) ON ingested_file TO cardstatus_void;
REVOKE UPDATE ON card_tombstone FROM cardstatus_void;
GRANT UPDATE (version, deleted_at) ON card_tombstone TO cardstatus_void;

-- ingest
REVOKE UPDATE ON ingested_file FROM cardstatus_ingest;
GRANT UPDATE (sha256, meaning_key, size_bytes, outcome, rows_total, rows_accepted,
              rows_duplicate, rows_rejected, warnings, report, finished_at, duration_ms)
    ON ingested_file TO cardstatus_ingest;
REVOKE UPDATE ON status_outbox FROM cardstatus_ingest;
GRANT UPDATE (published_at, attempts, last_error) ON status_outbox TO cardstatus_ingest;

-- The outbox id comes from nextval (USAGE); nothing reads the sequence itself.
REVOKE SELECT ON SEQUENCE status_outbox_id_seq FROM cardstatus_ingest, cardstatus_void;
