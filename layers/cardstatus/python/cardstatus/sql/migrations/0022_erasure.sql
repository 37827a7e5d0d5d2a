-- Erasure on request (README "Privacy"): a phone number, or a whole card, removed on a valid
-- request, recorded with who asked and why — never the number itself.
--
-- erasure_request: one row per request (kind 'phone' or 'card', actor, reason, counts; for a
--   card, its id: the card is gone, the id is what the request named).
-- erased_phone: the hashes of erased numbers (one per key version the ring held), so that a
--   later file carrying the number again says so in its report (the partner still has it and
--   the number is stored again). A hash is what lookups use, never the number; these rows go
--   with the card retention period (the sweeper), like the cards they came from.
CREATE TABLE erasure_request (
    id           bigserial   PRIMARY KEY,
    requested_at timestamptz NOT NULL DEFAULT now(),
    actor        text        NOT NULL,
    reason       text        NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    kind         text        NOT NULL CHECK (kind IN ('phone', 'card')),
    card_id      text,
    cards        integer     NOT NULL DEFAULT 0,
    events       integer     NOT NULL DEFAULT 0,
    copies       integer     NOT NULL DEFAULT 0
);

CREATE TABLE erased_phone (
    phone_hash text        NOT NULL,
    phone_key  smallint    NOT NULL,
    request_id bigint      NOT NULL REFERENCES erasure_request (id),
    erased_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (phone_hash, phone_key)
);

-- Every card, event and copy carrying one of `hashes` loses its phone (hash, key version, last
-- 4 digits); a card that showed that phone shows the phone of its latest event that still has
-- one (the usual rule), else none. Delivery history (statuses, times, comments) stays.
-- SECURITY DEFINER: the void function's role runs it without UPDATE rights on the columns.
-- card_event and event_copy have no index on phone_hash (it would slow every ingest): an
-- erasure reads them sequentially, seconds at tens of millions of rows, on a rare request.
CREATE FUNCTION erase_phone(hashes text[], key_versions smallint[], by_actor text, why text)
RETURNS TABLE (request_id bigint, cards integer, events integer, copies integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    req    bigint;
    ids    text[];
    n_card integer;
    n_ev   integer;
    n_cp   integer;
BEGIN
    INSERT INTO erasure_request (actor, reason, kind) VALUES (by_actor, why, 'phone')
    RETURNING id INTO req;
    SELECT array_agg(card_id) INTO ids FROM card WHERE phone_hash = ANY (hashes);
    UPDATE card_event SET phone_hash = NULL, phone_key = NULL, phone_last4 = NULL
    WHERE phone_hash = ANY (hashes);
    GET DIAGNOSTICS n_ev = ROW_COUNT;
    UPDATE event_copy SET phone_hash = NULL, phone_key = NULL, phone_last4 = NULL
    WHERE phone_hash = ANY (hashes);
    GET DIAGNOSTICS n_cp = ROW_COUNT;
    UPDATE card c
    SET phone_hash = p.phone_hash, phone_key = p.phone_key, phone_last4 = p.phone_last4,
        phone_at = p.occurred_at, phone_rank = p.status, updated_at = now()
    FROM (
        SELECT i.card_id, e.phone_hash, e.phone_key, e.phone_last4, e.occurred_at, e.status
        FROM unnest(coalesce(ids, '{}')) AS i (card_id)
        LEFT JOIN LATERAL (
            SELECT * FROM card_event ev
            WHERE ev.card_id = i.card_id AND ev.phone_hash IS NOT NULL
            ORDER BY ev.occurred_at DESC, ev.status DESC LIMIT 1) e ON true
    ) p
    WHERE c.card_id = p.card_id;
    GET DIAGNOSTICS n_card = ROW_COUNT;
    INSERT INTO erased_phone (phone_hash, phone_key, request_id)
    SELECT h, k, req FROM unnest(hashes, key_versions) AS u (h, k)
    ON CONFLICT (phone_hash, phone_key) DO UPDATE
        SET request_id = EXCLUDED.request_id, erased_at = now();
    UPDATE erasure_request SET cards = n_card, events = n_ev, copies = n_cp WHERE id = req;
    RETURN QUERY SELECT req, n_card, n_ev, n_cp;
END
$$;

-- The card, its events and their copies are deleted; a tombstone keeps its version (a card
-- reported again continues its event sequence, README "Events"). Nothing is emitted.
CREATE FUNCTION erase_card(erased_card_id text, by_actor text, why text)
RETURNS TABLE (request_id bigint, cards integer, events integer, copies integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    req    bigint;
    n_card integer;
    n_ev   integer;
    n_cp   integer;
BEGIN
    INSERT INTO erasure_request (actor, reason, kind, card_id)
    VALUES (by_actor, why, 'card', erased_card_id) RETURNING id INTO req;
    INSERT INTO card_tombstone (card_id, version)
    SELECT card_id, version FROM card WHERE card_id = erased_card_id
    ON CONFLICT (card_id) DO UPDATE
        SET version = GREATEST(card_tombstone.version, EXCLUDED.version), deleted_at = now();
    DELETE FROM event_copy WHERE card_id = erased_card_id;
    GET DIAGNOSTICS n_cp = ROW_COUNT;
    DELETE FROM card_event WHERE card_id = erased_card_id;
    GET DIAGNOSTICS n_ev = ROW_COUNT;
    DELETE FROM card WHERE card_id = erased_card_id;
    GET DIAGNOSTICS n_card = ROW_COUNT;
    UPDATE erasure_request SET cards = n_card, events = n_ev, copies = n_cp WHERE id = req;
    RETURN QUERY SELECT req, n_card, n_ev, n_cp;
END
$$;

REVOKE ALL ON FUNCTION erase_phone(text[], smallint[], text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION erase_card(text, text, text) FROM PUBLIC;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cardstatus_void') THEN
        GRANT EXECUTE ON FUNCTION erase_phone(text[], smallint[], text, text) TO cardstatus_void;
        GRANT EXECUTE ON FUNCTION erase_card(text, text, text) TO cardstatus_void;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cardstatus_ingest') THEN
        -- the ingest report says when an erased number comes back; the sweeper (same role)
        -- forgets erased numbers after the card retention period
        GRANT SELECT, DELETE ON erased_phone TO cardstatus_ingest;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cardstatus_api') THEN
        REVOKE ALL ON erasure_request, erased_phone FROM cardstatus_api;
    END IF;
END
$$;
