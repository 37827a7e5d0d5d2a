-- Least-privilege login roles, one per function (SPEC §10). Names and role-level settings
-- mirror cardstatus/dbroles.py (tests/test_db_roles.py checks they agree). Migrations run as
-- the schema owner (the RDS master user on AWS), which owns every table created here and later.
-- Roles are cluster-wide, hence the existence checks; grants and database ACLs are per database.
-- On RDS the roles authenticate with IAM tokens (rds_iam), so none has a password anywhere.
--
-- Every later migration that adds a table adds its GRANTs to these roles in the same file;
-- cardstatus_api also gets SELECT on new tables through the default privileges below.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['cardstatus_ingest', 'cardstatus_void', 'cardstatus_api'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
            EXECUTE format('CREATE ROLE %I LOGIN', r);
        END IF;
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_iam') THEN
            EXECUTE format('GRANT rds_iam TO %I', r);
        END IF;
    END LOOP;

    -- Nothing for PUBLIC on the database: only the roles below connect, and only the two that
    -- use temporary tables (ingest's staging, void's recompute) may create them. (The api role
    -- goes through RDS Proxy, where a temporary table would pin the connection.)
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO cardstatus_api', current_database());
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO cardstatus_ingest, cardstatus_void',
                   current_database());
END
$$;

REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO cardstatus_ingest, cardstatus_void, cardstatus_api;

-- ingest: exactly what one file's ingestion writes today (sql/ingest.py): its ingested_file row
-- (INSERT ... RETURNING, report UPDATE, duplicate lookups), new card_event rows
-- (INSERT ... ON CONFLICT DO NOTHING RETURNING), rejected_row (COPY), the card upsert.
GRANT SELECT, INSERT, UPDATE ON ingested_file TO cardstatus_ingest;
GRANT USAGE ON SEQUENCE ingested_file_id_seq TO cardstatus_ingest;
GRANT SELECT, INSERT ON card_event TO cardstatus_ingest;
GRANT INSERT ON rejected_row TO cardstatus_ingest;
GRANT SELECT, INSERT, UPDATE ON card TO cardstatus_ingest;

-- void: undo one applied file — mark the file voided, delete or re-merge the events it brought,
-- recompute (or delete) the cards they touched.
GRANT SELECT, UPDATE ON ingested_file TO cardstatus_void;
GRANT SELECT, UPDATE, DELETE ON card_event TO cardstatus_void;
GRANT SELECT, INSERT, UPDATE, DELETE ON card TO cardstatus_void;

-- api: reads everything, writes nothing (also refused at role level below).
GRANT SELECT ON ALL TABLES IN SCHEMA public TO cardstatus_api;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO cardstatus_api;

-- Role-level settings: a session SET would pin RDS Proxy connections, and IAM-authenticated
-- connections skip it. statement_timeout < the function's timeout (checked by infra.settings),
-- so a statement ends before Lambda freezes the sandbox with the backend still holding locks.
ALTER ROLE cardstatus_ingest SET statement_timeout = '240s';
ALTER ROLE cardstatus_ingest SET lock_timeout = '30s';
ALTER ROLE cardstatus_ingest SET idle_in_transaction_session_timeout = '60s';

ALTER ROLE cardstatus_void SET statement_timeout = '240s';
ALTER ROLE cardstatus_void SET lock_timeout = '30s';
ALTER ROLE cardstatus_void SET idle_in_transaction_session_timeout = '60s';

ALTER ROLE cardstatus_api SET statement_timeout = '5s';
ALTER ROLE cardstatus_api SET lock_timeout = '2s';
ALTER ROLE cardstatus_api SET idle_in_transaction_session_timeout = '10s';
ALTER ROLE cardstatus_api SET default_transaction_read_only = on;
