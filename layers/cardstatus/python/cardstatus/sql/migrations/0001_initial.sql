-- Card delivery events, the current-card projection, and one row per ingested file.

CREATE TYPE card_status AS ENUM ('PICKED_UP', 'DELIVERY_EXCEPTION', 'DELIVERED', 'RETURNED');
-- Declaration order is the tie-break rank on equal times: RETURNED > DELIVERED > ... (SPEC §4).

CREATE TYPE file_outcome AS ENUM ('applied', 'duplicate_file', 'rejected_file');

CREATE TABLE ingested_file (
    id             bigserial PRIMARY KEY,
    bucket         text,
    object_key     text        NOT NULL,
    version_id     text,
    etag           text,
    sha256         text,
    size_bytes     bigint,
    partner        text        NOT NULL,
    event_type     card_status,
    outcome        file_outcome NOT NULL,
    rows_total     integer     NOT NULL DEFAULT 0,
    rows_accepted  integer     NOT NULL DEFAULT 0,
    rows_duplicate integer     NOT NULL DEFAULT 0,
    rows_rejected  integer     NOT NULL DEFAULT 0,
    warnings       integer     NOT NULL DEFAULT 0,
    report         jsonb       NOT NULL,
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz NOT NULL DEFAULT now(),
    duration_ms    integer     NOT NULL DEFAULT 0
);
-- The same bytes are applied at most once, whatever key they arrive under.
CREATE UNIQUE INDEX ingested_file_applied_sha256 ON ingested_file (sha256) WHERE outcome = 'applied';
CREATE INDEX ingested_file_object ON ingested_file (bucket, object_key, version_id);

CREATE TABLE card_event (
    card_id        text        NOT NULL,
    status         card_status NOT NULL,
    occurred_at    timestamptz NOT NULL,
    comment        text,
    reason         text,
    phone          text,
    partner        text        NOT NULL,
    source_file_id bigint      NOT NULL REFERENCES ingested_file (id),
    source_line    integer     NOT NULL,
    partner_row_id text,
    ingested_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT card_event_pkey PRIMARY KEY (card_id, status, occurred_at),
    CONSTRAINT card_event_phone_e164 CHECK (phone IS NULL OR phone ~ '^\+[1-9][0-9]{6,14}$'),
    CONSTRAINT card_event_reason_known CHECK (
        reason IS NULL OR reason IN ('recipient_unavailable', 'refused', 'address_problem', 'other'))
);
CREATE INDEX card_event_source_file ON card_event (source_file_id);

-- Every rejected data row, in full (a file's report carries only the first few hundred).
CREATE TABLE rejected_row (
    file_id     bigint  NOT NULL REFERENCES ingested_file (id),
    line        integer NOT NULL,
    reason      text    NOT NULL,
    PRIMARY KEY (file_id, line)
);

-- Current state per card, maintained by set-based upserts that commute (any file order, same result).
CREATE TABLE card (
    card_id         text        PRIMARY KEY,
    status          card_status NOT NULL,
    status_at       timestamptz NOT NULL,
    comment         text,
    reason          text,
    phone           text,
    -- (phone_at, phone_rank) identify the event the phone came from: latest event with a valid phone.
    phone_at        timestamptz,
    phone_rank      card_status,
    picked_up_at    timestamptz,
    delivered_at    timestamptz,
    returned_at     timestamptz,
    exception_count integer     NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX card_phone_latest ON card (phone, status_at DESC, status DESC) WHERE phone IS NOT NULL;
