"""Read-side SQL of the status API: every statement is a single indexed lookup.

- by card id: primary key of `card`, history through the primary key of `card_event`
  (its leading column is card_id);
- by phone: the partial index `card_phone_hash_latest (phone_hash, status_at DESC, status
  DESC)` (0014), which also yields the "latest status first" order without a sort. A phone is
  looked up by its hashes (`cardstatus.phonehash.lookup_hashes`: one per key the ring holds,
  usually one; two or more only during a key rotation), never by the number.

History comes back as parallel arrays (one per column, same order, newest first) from a
LATERAL aggregate, so a card and its history cost one round trip and arrive typed
(timestamptz[] -> datetime list) without any session-level setting (the API talks to
PostgreSQL through RDS Proxy, where SET would pin the session).
"""

from __future__ import annotations

# Columns of the card object, in the order the domain code unpacks them.
_CARD_COLUMNS = """
    c.card_id,
    c.status::text,
    c.status_at,
    c.comment,
    c.reason,
    c.phone_last4,
    c.picked_up_at,
    c.delivered_at,
    c.returned_at,
    c.exception_count,
    h.statuses,
    h.ats,
    h.comments,
    h.reasons,
    h.partners,
    h.file_ids,
    h.lines
"""

# Newest first; on equal times the higher-ranked status first (same rule as the current status).
_HISTORY = """
LEFT JOIN LATERAL (
    SELECT array_agg(e.status::text ORDER BY e.occurred_at DESC, e.status DESC) AS statuses,
           array_agg(e.occurred_at  ORDER BY e.occurred_at DESC, e.status DESC) AS ats,
           array_agg(e.comment      ORDER BY e.occurred_at DESC, e.status DESC) AS comments,
           array_agg(e.reason       ORDER BY e.occurred_at DESC, e.status DESC) AS reasons,
           array_agg(e.partner      ORDER BY e.occurred_at DESC, e.status DESC) AS partners,
           array_agg(e.source_file_id ORDER BY e.occurred_at DESC, e.status DESC) AS file_ids,
           array_agg(e.source_line  ORDER BY e.occurred_at DESC, e.status DESC) AS lines
    FROM card_event e
    WHERE e.card_id = c.card_id
) h ON true
"""

CARD_BY_ID = f"""
SELECT {_CARD_COLUMNS}
FROM card c
{_HISTORY}
WHERE c.card_id = %(card_id)s
"""

# The same card, only when its current phone is the given one (a mismatch looks like "not found").
CARD_BY_ID_AND_PHONE = f"""
SELECT {_CARD_COLUMNS}
FROM card c
{_HISTORY}
WHERE c.card_id = %(card_id)s AND c.phone_hash = ANY(%(phone_hashes)s)
"""

# All cards of one phone, latest status first (index order), each with its history.
CARDS_BY_PHONE = f"""
SELECT {_CARD_COLUMNS}
FROM card c
{_HISTORY}
WHERE c.phone_hash = ANY(%(phone_hashes)s)
ORDER BY c.status_at DESC, c.status DESC, c.card_id
LIMIT %(limit)s
"""

# GET /get_card_status by phone: the phone's cards, latest status first (index order), the
# history aggregated for the first one only (the others are answered as id/status/time): the
# LATERAL is gated by `c.n = 1`, so the other cards cost no card_event reads.
LATEST_CARD_BY_PHONE = f"""
SELECT {_CARD_COLUMNS}
FROM (
    SELECT c.*,
           row_number() OVER (ORDER BY c.status_at DESC, c.status DESC, c.card_id) AS n
    FROM card c
    WHERE c.phone_hash = ANY(%(phone_hashes)s)
    ORDER BY c.status_at DESC, c.status DESC, c.card_id
    LIMIT %(limit)s
) c
{_HISTORY.replace("WHERE e.card_id = c.card_id", "WHERE e.card_id = c.card_id AND c.n = 1")}
ORDER BY c.n
"""

# GET /get_card_status by card id and phone in one round trip: the card (only when its
# current phone is the given one) and, as parallel arrays, the phone's other cards (id,
# status, time; latest status first, at most %(limit)s).
CARD_BY_ID_AND_PHONE_WITH_OTHERS = f"""
SELECT {_CARD_COLUMNS},
       o.card_ids, o.statuses, o.status_ats
FROM card c
{_HISTORY}
LEFT JOIN LATERAL (
    SELECT array_agg(x.card_id ORDER BY x.n) AS card_ids,
           array_agg(x.status::text ORDER BY x.n) AS statuses,
           array_agg(x.status_at ORDER BY x.n) AS status_ats
    FROM (
        SELECT o.card_id, o.status, o.status_at,
               row_number() OVER (ORDER BY o.status_at DESC, o.status DESC, o.card_id) AS n
        FROM card o
        WHERE o.phone_hash = ANY(%(phone_hashes)s) AND o.card_id <> c.card_id
        ORDER BY o.status_at DESC, o.status DESC, o.card_id
        LIMIT %(limit)s
    ) x
) o ON true
WHERE c.card_id = %(card_id)s AND c.phone_hash = ANY(%(phone_hashes)s)
"""

# The other cards of one phone (id, status, time only), latest status first.
CARD_SUMMARIES_BY_PHONE = """
SELECT c.card_id, c.status::text, c.status_at
FROM card c
WHERE c.phone_hash = ANY(%(phone_hashes)s) AND c.card_id <> %(exclude_card_id)s
ORDER BY c.status_at DESC, c.status DESC, c.card_id
LIMIT %(limit)s
"""

# Health check: the database answers (no table access, nothing to pin).
PING = "SELECT 1"
