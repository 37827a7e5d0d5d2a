"""SQL of erasure on request (0022_erasure.sql): each request is one SECURITY DEFINER call."""

from __future__ import annotations

ERASE_PHONE = """
SELECT request_id, cards, events, copies
FROM erase_phone(%(hashes)s::text[], %(versions)s::smallint[], %(actor)s, %(reason)s)
"""

ERASE_CARD = """
SELECT request_id, cards, events, copies FROM erase_card(%(card_id)s, %(actor)s, %(reason)s)
"""

# Lines of the staged file whose phone was erased on request before (the ingest report says so).
ERASED_LINES = """
SELECT s.source_line, r.id, r.requested_at
FROM staging_event s
JOIN erased_phone p ON p.phone_hash = s.phone_hash
JOIN erasure_request r ON r.id = p.request_id
ORDER BY s.source_line
LIMIT %(limit)s
"""

FORGET_ERASED = "DELETE FROM erased_phone WHERE erased_at < %(cutoff)s"
