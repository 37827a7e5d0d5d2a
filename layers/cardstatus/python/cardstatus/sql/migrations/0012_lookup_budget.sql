-- Per-caller budget of card-id + phone lookups that do not match (SPEC §5, 12-06; README
-- "Caller roles"): closes the phone oracle (guessing a card's phone one 404 at a time).
--
-- One row per caller (the API caller's IAM role or user ARN; locally one caller). A fixed
-- window starts at the caller's first counted lookup; past `budget` mismatches in the window
-- every card-id + phone lookup of that caller answers 429 until the window ends.
--
-- The api role is read-only at role level (default_transaction_read_only = on, 0005) and
-- keeps NO privilege on this table. It may only EXECUTE lookup_budget_spend, a SECURITY
-- DEFINER function owned by the schema owner (the migrating user) that can do nothing but
-- count one lookup for one caller. The api code calls it in an explicit
-- `BEGIN READ WRITE` transaction (cardstatus/lookup_budget.py): the role-level read-only
-- default stays in force for every other statement, and privileges, not the read-only flag,
-- are what keep the api role from writing anything else.
CREATE TABLE lookup_budget (
    caller       text        PRIMARY KEY,
    window_start timestamptz NOT NULL,
    mismatches   integer     NOT NULL DEFAULT 0 CHECK (mismatches >= 0)
);

-- Count one card-id + phone lookup of p_caller (p_mismatch: it did not match) and answer
-- 0 when it may be answered normally, else the seconds until the caller's window ends (the
-- lookup is then refused with 429 and not counted). Matches and mismatches run the same
-- statements (one upsert), so their timing does not tell them apart; only mismatches count.
-- p_now: the caller's clock (tests inject one); NULL = the database's clock.
CREATE FUNCTION lookup_budget_spend(
    p_caller text, p_mismatch boolean, p_budget integer, p_window_s integer,
    p_now timestamptz DEFAULT NULL
) RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public
AS $$
DECLARE
    t timestamptz := COALESCE(p_now, clock_timestamp());
    w interval;
    r lookup_budget%ROWTYPE;
BEGIN
    IF p_caller IS NULL OR length(p_caller) > 2048 OR p_budget IS NULL OR p_budget < 1
       OR p_window_s IS NULL OR p_window_s < 1 OR p_mismatch IS NULL THEN
        RAISE EXCEPTION 'lookup_budget_spend: invalid arguments';
    END IF;
    w := make_interval(secs => p_window_s);
    INSERT INTO lookup_budget AS b (caller, window_start, mismatches)
    VALUES (p_caller, t, 0)
    ON CONFLICT (caller) DO UPDATE SET
        window_start = CASE WHEN b.window_start + w <= t THEN t ELSE b.window_start END,
        mismatches   = CASE WHEN b.window_start + w <= t THEN 0 ELSE b.mismatches END
    RETURNING b.* INTO r;
    IF r.mismatches >= p_budget THEN
        RETURN GREATEST(1, ceil(extract(epoch FROM r.window_start + w - t))::integer);
    END IF;
    UPDATE lookup_budget
    SET mismatches = mismatches + CASE WHEN p_mismatch THEN 1 ELSE 0 END
    WHERE caller = p_caller;
    RETURN 0;
END
$$;

-- Functions are executable by PUBLIC by default: only the api role may count lookups.
REVOKE ALL ON FUNCTION lookup_budget_spend(text, boolean, integer, integer, timestamptz)
    FROM PUBLIC;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cardstatus_api') THEN
        GRANT EXECUTE ON FUNCTION
            lookup_budget_spend(text, boolean, integer, integer, timestamptz) TO cardstatus_api;
    END IF;
END
$$;
