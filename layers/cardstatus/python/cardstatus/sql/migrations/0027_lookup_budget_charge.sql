-- The card-id + phone lookup's budget count in one round trip (README "Caller roles"; issue 21:
-- every round trip of a lookup is ~0.1 ms here and ~0.5-1 ms behind RDS Proxy).
--
-- lookup_budget_spend (0012) answers the seconds to wait when the caller's budget is spent, so
-- the api had to read its result before sending COMMIT: two round trips. lookup_budget_charge
-- counts the same way and, instead of answering, raises SQLSTATE CSB01 with those seconds as
-- the error's DETAIL, so the api sends `BEGIN READ WRITE; SELECT lookup_budget_charge(...);
-- COMMIT` as one query: a counted lookup commits, a refused one raises (the api then rolls the
-- aborted transaction back and answers 429). A refused lookup is not counted either way.
--
-- Expand only: lookup_budget_spend stays for the previous release's code.
CREATE FUNCTION lookup_budget_charge(
    p_caller text, p_mismatch boolean, p_budget integer, p_window_s integer,
    p_now timestamptz DEFAULT NULL
) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
DECLARE
    retry_after integer := lookup_budget_spend(p_caller, p_mismatch, p_budget, p_window_s, p_now);
BEGIN
    IF retry_after > 0 THEN
        RAISE EXCEPTION 'lookup budget spent' USING ERRCODE = 'CSB01', DETAIL = retry_after::text;
    END IF;
END
$$;

REVOKE ALL ON FUNCTION lookup_budget_charge(text, boolean, integer, integer, timestamptz)
    FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cardstatus_api') THEN
        GRANT EXECUTE ON FUNCTION
            lookup_budget_charge(text, boolean, integer, integer, timestamptz) TO cardstatus_api;
    END IF;
END
$$;
