"""SQL of the lookup audit trail (0019_lookup_audit.sql).

The audit function appends as the api role, which connects read-only (default_transaction_read_only)
and may only INSERT into lookup_audit: a batch is appended in its own READ WRITE transaction,
sent with BEGIN and COMMIT in one round trip.
"""

from __future__ import annotations

# A batch of records as one JSON array (cardstatus/audit.py `append`): one INSERT for them all.
APPEND = """BEGIN READ WRITE;
INSERT INTO lookup_audit (at, caller, route, by_phone, outcome, card_ids, request_id)
SELECT r.at, r.caller, r.route, r.by_phone, r.outcome, r.card_ids, r.request_id
FROM jsonb_to_recordset(%(rows)s::jsonb) AS r(
    at timestamptz, caller text, route text, by_phone boolean, outcome text, card_ids text[],
    request_id text
);
COMMIT;"""


# "Who looked at this card": newest first, one page.
TRAIL = """
SELECT at, caller, route, by_phone, outcome, card_ids, request_id
FROM lookup_audit
WHERE card_ids @> ARRAY[%(card_id)s::text]
  AND (%(since)s::timestamptz IS NULL OR at >= %(since)s::timestamptz)
ORDER BY at DESC
LIMIT %(limit)s
"""

# A caller's lookups (any card), newest first.
BY_CALLER = """
SELECT at, caller, route, by_phone, outcome, card_ids, request_id
FROM lookup_audit
WHERE caller = %(caller)s
  AND (%(since)s::timestamptz IS NULL OR at >= %(since)s::timestamptz)
ORDER BY at DESC
LIMIT %(limit)s
"""

MAINTAIN = "SELECT created, dropped FROM lookup_audit_maintain(%(keep_days)s, 2, %(as_of)s)"
