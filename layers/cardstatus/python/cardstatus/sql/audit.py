"""SQL of the lookup audit trail (0019_lookup_audit.sql).

The api role connects read-only (default_transaction_read_only) and may only INSERT into
lookup_audit: the insert runs in its own READ WRITE transaction, sent with BEGIN and COMMIT in
one round trip.
"""

from __future__ import annotations

# The row alone, for a read-write transaction the caller has open (the card-id + phone
# lookup's budget count: cardstatus/lookup_budget.py `spend`, `then`).
INSERT_LOOKUP = """
INSERT INTO lookup_audit (at, caller, route, by_phone, outcome, card_ids, request_id)
VALUES (%(at)s, %(caller)s, %(route)s, %(by_phone)s, %(outcome)s, %(card_ids)s::text[],
        %(request_id)s)"""

RECORD_LOOKUP = f"BEGIN READ WRITE;{INSERT_LOOKUP};\nCOMMIT;"

# The card ids a row written with its lookup holds (0026_lookup_audit_request.sql), as the
# lookup's last column: one evaluation per statement (an InitPlan), not one per row.
RECORDED_IDS = "(SELECT lookup_audit_answered(%(audit_at)s, %(audit_request_id)s))"


def with_lookup(lookup: str, answered: str) -> str:
    """The audit row and the lookup in one round trip (README "Who looked at a card"): the row
    in its own READ WRITE transaction, its card ids computed by `answered` (a query of the ids
    the lookup answers, with the lookup's own predicate and parameters), then - committed - the
    lookup itself, whose last column must be RECORDED_IDS. PostgreSQL answers a multi-statement
    query with its last result: the lookup's rows. A lookup that finds nothing records the card
    id asked for (`audit_asked`) as not found, or, for a listing, an empty "found". (OFFSET 0
    keeps the ids a subquery evaluated once: pulled up, it ran once per use of `m.ids`.)"""
    return f"""BEGIN READ WRITE;
INSERT INTO lookup_audit (at, caller, route, by_phone, outcome, card_ids, request_id)
SELECT %(audit_at)s, %(audit_caller)s, %(audit_route)s, %(audit_by_phone)s,
       CASE WHEN cardinality(m.ids) > 0 OR %(audit_listing)s THEN 'found' ELSE 'not_found' END,
       CASE WHEN cardinality(m.ids) > 0 THEN m.ids ELSE %(audit_asked)s::text[] END,
       %(audit_request_id)s
FROM (SELECT ARRAY({answered}) AS ids OFFSET 0) m;
COMMIT;
{lookup}"""


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
