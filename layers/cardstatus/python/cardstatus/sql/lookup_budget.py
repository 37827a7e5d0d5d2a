"""SQL of the per-caller lookup budget (cardstatus/lookup_budget.py, migrations 0012, 0027).

The api role has no privilege on the `lookup_budget` table: it counts a lookup through the
SECURITY DEFINER function `lookup_budget_charge`, in an explicit read-write transaction (the
role is read-only by default), sent with its BEGIN and COMMIT in one round trip: a refused
lookup raises BUDGET_SPENT instead of answering, so nothing has to be read before the COMMIT.
"""

from __future__ import annotations

# SQLSTATE of a refused lookup; the error's DETAIL holds the seconds until the window ends.
BUDGET_SPENT = "CSB01"

CHARGE = (
    "BEGIN READ WRITE;"
    " SELECT lookup_budget_charge(%(caller)s, %(mismatch)s, %(budget)s, %(window_s)s, %(now)s);"
    " COMMIT"
)
