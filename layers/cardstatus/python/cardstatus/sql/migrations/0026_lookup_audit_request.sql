-- The lookup audit row in the lookup's own round trip (README "Who looked at a card"; issue 22:
-- the row may add at most 0.2 ms to a lookup at p50, and a round trip of its own cost more).
--
-- Without a reader the api sends one query: BEGIN READ WRITE; the audit row, whose card ids
-- the INSERT computes with the lookup's own predicate; COMMIT; then the lookup, which also
-- reads back the card ids the row holds. The api compares those with the cards it answers
-- and writes a second row for any card the first one missed (a card that changed between the
-- two statements), so the trail always names every card answered.
--
-- request_id: API Gateway's id of the request (the id in the api's log lines and in the
-- access log), for every row from now on; NULL for rows written before, and by the previous
-- release during a deploy.
ALTER TABLE lookup_audit ADD COLUMN request_id text;

-- The card ids of one row the api just wrote, found by its exact time and request id through
-- the lookup_audit_at index (an equality on `at` reads one partition). SECURITY DEFINER: the
-- api may append to the trail but not read it; this answers only for a row whose time and
-- request id the caller already knows, and only for a lookup that found cards.
CREATE FUNCTION lookup_audit_answered(p_at timestamptz, p_request_id text)
RETURNS text[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT card_ids FROM lookup_audit
    WHERE at = p_at AND request_id = p_request_id AND outcome = 'found'
    LIMIT 1
$$;
REVOKE ALL ON FUNCTION lookup_audit_answered(timestamptz, text) FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cardstatus_api') THEN
        GRANT EXECUTE ON FUNCTION lookup_audit_answered(timestamptz, text) TO cardstatus_api;
    END IF;
END
$$;
