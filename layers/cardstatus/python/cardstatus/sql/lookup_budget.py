"""SQL of the per-caller lookup budget (cardstatus/lookup_budget.py, migration 0012).

The api role has no privilege on the `lookup_budget` table: it counts a lookup through the
SECURITY DEFINER function, in an explicit read-write transaction (the role is read-only by
default): BEGIN and the count in one round trip, COMMIT in a second.
"""

from __future__ import annotations

BEGIN_READ_WRITE = "BEGIN READ WRITE"

SPEND = "SELECT lookup_budget_spend(%(caller)s, %(mismatch)s, %(budget)s, %(window_s)s, %(now)s)"

# The count with the BEGIN in front: the last statement's result (the count) comes back.
BEGIN_AND_SPEND = f"{BEGIN_READ_WRITE}; {SPEND}"

COMMIT = "COMMIT"
