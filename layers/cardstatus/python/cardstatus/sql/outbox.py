"""Status-change outbox: rows written in the same transaction as the change (README).

A card's *current status changes* when its current event (status, status_at) is replaced:
first sighting (previous_status NULL), a newer event, or a void that removes the current
event. A late older event, a duplicate, a redelivery or a merge of an event's fields changes
nothing. Each change increments `card.version` (first sighting = 1) and writes one
`status_outbox` row; `cardstatus.events` publishes the rows after commit.

Reuse (e.g. a void): fill a temp table

    CREATE TEMP TABLE card_change (
        card_id text, previous_status card_status, status card_status,
        status_at timestamptz, reason text, partner text, card_version bigint
    ) ON COMMIT DROP;

with one row per card whose current status changed (card_version = the card's new,
incremented version), then execute INSERT_OUTBOX_FROM_CARD_CHANGE with
{"file_id": <file id or None>}; it returns (count, first id, last id).
"""

from __future__ import annotations

# RFC 3339 UTC: '2023-11-13T09:34:56Z', fractional seconds only when present ('…:56.5Z'): the
# jsonb rendering of a timestamp (far cheaper than to_char).
_ISO_UTC = "((to_jsonb(({0}) AT TIME ZONE 'UTC') #>> '{{}}') || 'Z')"

# A UUID version 7 (RFC 9562): 48 bits of Unix milliseconds, then random bits. Time-ordered, so
# a file's thousands of rows go to the right edge of the event_id index instead of random pages.
# (The millisecond prefix is taken once per statement.)
_UUID_V7 = (
    "encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) placing"
    " (SELECT substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint)"
    " FROM 3)) FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid"
)


_NOW_MS = "date_trunc('milliseconds', clock_timestamp())"


def outbox_insert(source: str) -> str:
    """INSERT ... RETURNING id: one outbox row per row of `source` (a table or CTE name) with
    columns card_id, previous_status, status, status_at, reason, partner, card_version.

    event_id is a UUIDv7 stored once with the row: every publish of the row (retry, sweeper)
    carries the same id, and consumers de-duplicate on it. emitted_at is the time the change
    was written (one value per statement). The detail is the row itself (to_jsonb of a
    subquery row: ~3 x cheaper than jsonb_build_object here).
    """
    return f"""
INSERT INTO status_outbox (event_id, card_id, card_version, detail)
SELECT d.event_id, d.card_id, d.card_version, to_jsonb(d)
FROM (
    SELECT {_UUID_V7} AS event_id,
           s.card_id,
           s.status,
           s.previous_status,
           {_ISO_UTC.format("s.status_at")} AS status_at,
           s.reason,
           s.partner,
           %(file_id)s::bigint AS file_id,
           s.card_version,
           (SELECT {_ISO_UTC.format(_NOW_MS)}) AS emitted_at
    FROM {source} s
    ORDER BY s.card_id
) d
RETURNING id"""


INSERT_OUTBOX_FROM_CARD_CHANGE = f"""
WITH outbox AS ({outbox_insert("card_change")})
SELECT count(*), min(id), max(id) FROM outbox
"""
