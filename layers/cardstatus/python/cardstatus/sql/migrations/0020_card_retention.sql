-- Retention of cards (README "Privacy"): a card whose latest event is older than the retention
-- period is deleted with its events and their copies, in small batches run by the sweeper.
-- A tombstone keeps the card's version (card_tombstone, 0008), so a card seen again later
-- continues its CardStatusChanged sequence. A purge is not a status change: nothing is emitted.
--
-- SECURITY DEFINER: the sweeper logs in as cardstatus_ingest, which may not DELETE events or
-- copies; it may only run this function, which deletes nothing newer than `cutoff`.
CREATE FUNCTION retention_purge(cutoff timestamptz, batch integer)
RETURNS TABLE (cards integer, events integer, copies integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    ids    text[];
    n_ev   integer;
    n_cp   integer;
BEGIN
    IF batch < 1 OR batch > 10000 THEN
        RAISE EXCEPTION 'batch must be 1-10000, got %', batch;
    END IF;
    -- Oldest first; cards an ingest or a void holds right now are left for the next run.
    SELECT array_agg(card_id) INTO ids FROM (
        SELECT card_id FROM card WHERE status_at < cutoff
        ORDER BY status_at LIMIT batch FOR UPDATE SKIP LOCKED) old;
    IF ids IS NULL THEN
        RETURN QUERY SELECT 0, 0, 0;
        RETURN;
    END IF;
    INSERT INTO card_tombstone (card_id, version)
    SELECT card_id, version FROM card WHERE card_id = ANY (ids)
    ON CONFLICT (card_id) DO UPDATE
        SET version = GREATEST(card_tombstone.version, EXCLUDED.version), deleted_at = now();
    DELETE FROM event_copy WHERE card_id = ANY (ids);
    GET DIAGNOSTICS n_cp = ROW_COUNT;
    DELETE FROM card_event WHERE card_id = ANY (ids);
    GET DIAGNOSTICS n_ev = ROW_COUNT;
    DELETE FROM card WHERE card_id = ANY (ids);
    RETURN QUERY SELECT cardinality(ids), n_ev, n_cp;
END
$$;
REVOKE ALL ON FUNCTION retention_purge(timestamptz, integer) FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cardstatus_ingest') THEN
        GRANT EXECUTE ON FUNCTION retention_purge(timestamptz, integer) TO cardstatus_ingest;
    END IF;
END
$$;
