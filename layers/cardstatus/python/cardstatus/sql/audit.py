"""SQL of the lookup audit trail (0019_lookup_audit.sql).

The api role connects read-only (default_transaction_read_only) and may only INSERT into
lookup_audit: the insert runs in its own READ WRITE transaction, sent with BEGIN and COMMIT in
one round trip.
"""

from __future__ import annotations

# The row alone, for a read-write transaction the caller has open (the card-id + phone
# lookup's budget count: cardstatus/lookup_budget.py `spend`, `then`).
INSERT_LOOKUP = """
INSERT INTO lookup_audit (caller, route, by_phone, outcome, card_ids)
VALUES (%(caller)s, %(route)s, %(by_phone)s, %(outcome)s, %(card_ids)s::text[])"""

RECORD_LOOKUP = f"BEGIN READ WRITE;{INSERT_LOOKUP};\nCOMMIT;"

# "Who looked at this card": newest first, one page.
TRAIL = """
SELECT at, caller, route, by_phone, outcome, card_ids
FROM lookup_audit
WHERE card_ids @> ARRAY[%(card_id)s::text]
  AND (%(since)s::timestamptz IS NULL OR at >= %(since)s::timestamptz)
ORDER BY at DESC
LIMIT %(limit)s
"""

# A caller's lookups (any card), newest first.
BY_CALLER = """
SELECT at, caller, route, by_phone, outcome, card_ids
FROM lookup_audit
WHERE caller = %(caller)s
  AND (%(since)s::timestamptz IS NULL OR at >= %(since)s::timestamptz)
ORDER BY at DESC
LIMIT %(limit)s
"""

MAINTAIN = "SELECT created, dropped FROM lookup_audit_maintain(%(keep_days)s, 2, %(as_of)s)"
