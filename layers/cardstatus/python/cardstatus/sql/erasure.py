"""SQL of erasure on request (0022_erasure.sql): each request is one SECURITY DEFINER call."""

from __future__ import annotations

ERASE_PHONE = """
SELECT request_id, cards, events, copies
FROM erase_phone(%(hashes)s::text[], %(versions)s::smallint[], %(actor)s, %(reason)s)
"""

ERASE_CARD = """
SELECT request_id, cards, events, copies FROM erase_card(%(card_id)s, %(actor)s, %(reason)s)
"""

# Ingest: does any number erased on request exist at all (almost always not: nothing more)?
ANY_ERASED = "SELECT EXISTS (SELECT 1 FROM erased_phone)"

# Ingest: the lines of this file whose phone was erased on request before (its report says so).
ERASED_LINES = """
SELECT c.line, p.request_id, p.erased_at
FROM event_copy c
JOIN erased_phone p ON p.phone_hash = c.phone_hash AND p.phone_key = c.phone_key
WHERE c.file_id = %(file_id)s
ORDER BY c.line
LIMIT %(limit)s
"""

FORGET_ERASED = "DELETE FROM erased_phone WHERE erased_at < %(cutoff)s"
