-- Partner feed health (README "Partner feed health", SPEC §9b): the last feed state the
-- sweeper saw per partner, so that PartnerFeedLate / PartnerFeedRecovered go out once per
-- transition and never again while the state holds; and the outbox learns other event types.
--
-- Expand only: a new table, and a nullable column without a default on status_outbox (a
-- catalog change, no table rewrite). The previous release ignores both.

-- One row per monitored partner (key: the partner name in lower case, as cardstatus.partners
-- matches names). `state` is the state last recorded; `since` when it began.
CREATE TABLE partner_feed_state (
    partner      text        PRIMARY KEY,
    state        text        NOT NULL,
    since        timestamptz NOT NULL,
    last_file_at timestamptz,
    checked_at   timestamptz NOT NULL,
    last_event_id uuid,
    CONSTRAINT partner_feed_state_state CHECK (
        state IN ('unknown', 'on_time', 'late', 'missing', 'not_monitored')),
    CONSTRAINT partner_feed_state_key_lower CHECK (partner = lower(partner))
);

-- The EventBridge detail-type of an outbox row; NULL = CardStatusChanged (every row written
-- before this migration, and every row ingestion and voids write).
ALTER TABLE status_outbox ADD COLUMN detail_type text;

-- Grants, explicitly per role (never through default privileges):
-- the sweeper logs in as cardstatus_ingest and records transitions (sql/partners.py);
-- the API reads the state (GET /partners shows since when a partner is late).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cardstatus_ingest') THEN
        GRANT SELECT, INSERT, UPDATE ON partner_feed_state TO cardstatus_ingest;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cardstatus_api') THEN
        GRANT SELECT ON partner_feed_state TO cardstatus_api;
    END IF;
END
$$;
