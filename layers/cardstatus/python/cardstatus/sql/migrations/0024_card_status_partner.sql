-- Scale (issue 21): the partner of each card's current status event, on the card itself.
-- GET /stuck_cards?partner=P and GET /partners need every stuck card's current partner, which
-- only card_event held (a primary-key lookup per card: every stuck card read for a rare partner,
-- p99 690 ms and 2.75 s at 10M cards). card.status_partner is that partner, kept in step with
-- card.status by every writer of the projection (ingestion's card upsert and owner re-merge,
-- cardstatus.sql.ingest; the void's recompute, cardstatus.sql.void); read through the partial
-- index card_status_partner_open (0025).
--
-- Nullable, no default: no table rewrite. Existing cards are backfilled in batches after the
-- migrations (cardstatus.statuspartner, run by the migrate function and `cardstatus migrate`;
-- one short transaction per batch, never a 10M-row UPDATE holding every card's row lock).
ALTER TABLE card ADD COLUMN status_partner text;

-- A card row written without status_partner (the previous release's code while a deploy rolls
-- out; seeds and tools that insert cards directly) gets it from its current event when the
-- event is there. The writers of this release always set it, so the WHEN clause (evaluated
-- without calling the function) keeps this off their path. Not covered: the previous
-- release's UPDATE of an existing card's status during the rollout keeps that card's previous
-- partner until its next status change (README "Stuck cards by partner").
CREATE FUNCTION card_status_partner_fill() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    NEW.status_partner := (
        SELECT e.partner FROM card_event e
        WHERE e.card_id = NEW.card_id AND e.status = NEW.status AND e.occurred_at = NEW.status_at);
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION card_status_partner_fill() FROM PUBLIC;

CREATE TRIGGER card_status_partner_fill
    BEFORE INSERT OR UPDATE ON card
    FOR EACH ROW
    WHEN (NEW.status_partner IS NULL)
    EXECUTE FUNCTION card_status_partner_fill();
