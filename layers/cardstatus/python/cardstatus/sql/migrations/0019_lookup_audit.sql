-- Every lookup accountable (README "Privacy"): one row per API lookup — who asked (the caller's
-- IAM ARN), which route, whether by phone, which card ids were answered, when. Never the phone.
--
-- Append-only by privilege: the api role may INSERT and nothing else (it cannot read who else
-- looked); only the schema owner reads it (`cardstatus audit`) and manages its partitions.
-- Partitioned by UTC day so that retention drops whole days instead of deleting rows; the
-- DEFAULT partition takes any row whose day has no partition yet (nothing is ever refused),
-- and lookup_audit_maintain() (run by the sweeper) creates the next days and drops old ones.
CREATE TABLE lookup_audit (
    at       timestamptz NOT NULL DEFAULT now(),
    caller   text        NOT NULL,
    route    text        NOT NULL,
    by_phone boolean     NOT NULL,
    outcome  text        NOT NULL,
    card_ids text[]      NOT NULL DEFAULT '{}'
) PARTITION BY RANGE (at);
CREATE TABLE lookup_audit_default PARTITION OF lookup_audit DEFAULT;
-- "who looked at this card (since …)": the card-id containment test, then the time.
CREATE INDEX lookup_audit_card_ids ON lookup_audit USING gin (card_ids);
CREATE INDEX lookup_audit_at ON lookup_audit (at);

-- Creates the partitions of the UTC days [today, today + ahead_days] and drops those that end
-- at or before today - keep_days (rows of the DEFAULT partition that old are deleted). A row
-- that went to DEFAULT for a day that now gets its partition is moved into it first.
-- SECURITY DEFINER: the sweeper (as cardstatus_ingest) runs it without owning the table.
CREATE FUNCTION lookup_audit_maintain(keep_days integer, ahead_days integer DEFAULT 2,
                                      as_of timestamptz DEFAULT now())
RETURNS TABLE (created integer, dropped integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    today  date := (as_of AT TIME ZONE 'UTC')::date;
    day    date;
    name   text;
    part   record;
    n_made integer := 0;
    n_gone integer := 0;
BEGIN
    IF keep_days < 1 THEN
        RAISE EXCEPTION 'keep_days must be at least 1, got %', keep_days;
    END IF;
    FOR i IN 0..ahead_days LOOP
        day := today + i;
        name := 'lookup_audit_' || to_char(day, 'YYYYMMDD');
        CONTINUE WHEN to_regclass(name) IS NOT NULL;
        EXECUTE format('CREATE TABLE %I (LIKE lookup_audit INCLUDING DEFAULTS)', name);
        -- (0005's default privileges would let the api read the new day)
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cardstatus_api') THEN
            EXECUTE format('REVOKE ALL ON %I FROM cardstatus_api', name);
        END IF;
        EXECUTE format(
            'WITH moved AS (DELETE FROM lookup_audit_default WHERE at >= %L::timestamptz'
            ' AND at < %L::timestamptz RETURNING *) INSERT INTO %I SELECT * FROM moved',
            day::text || ' 00:00+00', (day + 1)::text || ' 00:00+00', name);
        EXECUTE format(
            'ALTER TABLE lookup_audit ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
            name, day::text || ' 00:00+00', (day + 1)::text || ' 00:00+00');
        n_made := n_made + 1;
    END LOOP;
    FOR part IN
        SELECT c.relname FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'lookup_audit'::regclass
          AND c.relname ~ '^lookup_audit_[0-9]{8}$'
          AND to_date(substr(c.relname, 14), 'YYYYMMDD') + 1 <= today - keep_days
    LOOP
        EXECUTE format('DROP TABLE %I', part.relname);
        n_gone := n_gone + 1;
    END LOOP;
    DELETE FROM lookup_audit_default
    WHERE at < (today - keep_days)::timestamp AT TIME ZONE 'UTC';
    RETURN QUERY SELECT n_made, n_gone;
END
$$;
REVOKE ALL ON FUNCTION lookup_audit_maintain(integer, integer, timestamptz) FROM PUBLIC;

-- Today's partitions exist from the start (the sweeper keeps them ahead afterwards).
SELECT * FROM lookup_audit_maintain(400);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cardstatus_api') THEN
        -- the default privileges of 0005 would let the api read the trail: it may only append
        REVOKE ALL ON lookup_audit, lookup_audit_default FROM cardstatus_api;
        GRANT INSERT ON lookup_audit TO cardstatus_api;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cardstatus_ingest') THEN
        GRANT EXECUTE ON FUNCTION lookup_audit_maintain(integer, integer, timestamptz)
            TO cardstatus_ingest;
    END IF;
END
$$;
