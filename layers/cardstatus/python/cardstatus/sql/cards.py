"""Read-side SQL of the status API: every statement is a single indexed lookup.

- by card id: primary key of `card`, history through the primary key of `card_event`
  (its leading column is card_id);
- by phone: the partial index `card_phone_latest (phone, status_at DESC, status DESC)`,
  which also yields the "latest status first" order without a sort.

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
    c.phone,
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
WHERE c.card_id = %(card_id)s AND c.phone = %(phone)s
"""

# All cards of one phone, latest status first (index order), each with its history.
CARDS_BY_PHONE = f"""
SELECT {_CARD_COLUMNS}
FROM card c
{_HISTORY}
WHERE c.phone = %(phone)s
ORDER BY c.status_at DESC, c.status DESC, c.card_id
LIMIT %(limit)s
"""

# The other cards of one phone (id, status, time only), latest status first.
CARD_SUMMARIES_BY_PHONE = """
SELECT c.card_id, c.status::text, c.status_at
FROM card c
WHERE c.phone = %(phone)s AND c.card_id <> %(exclude_card_id)s
ORDER BY c.status_at DESC, c.status DESC, c.card_id
LIMIT %(limit)s
"""

# Health check: the database answers (no table access, nothing to pin).
PING = "SELECT 1"
