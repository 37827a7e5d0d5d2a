-- The void function publishes its file's status-change events right after its commit, like
-- the ingest function (cardstatus.events.publish_file by the outbox id range the void wrote),
-- instead of leaving them to the sweeper (up to a minute later).
--
-- What the publisher (cardstatus/sql/events.py) needs beyond the SELECT and INSERT that 0006
-- granted: claiming rows with SELECT ... FOR UPDATE SKIP LOCKED (which needs an UPDATE
-- privilege) and marking them published or failed (MARK_PUBLISHED, MARK_FAILED). Only those
-- three columns: the void role cannot rewrite an event's detail, its id or its event_id, and
-- (no DELETE) cannot remove outbox rows.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cardstatus_void') THEN
        GRANT UPDATE (published_at, attempts, last_error) ON status_outbox TO cardstatus_void;
    END IF;
END
$$;
