"""The per-caller budget of card-id + phone lookups that do not match (README "Caller roles",
SPEC §5 12-06): closes the phone oracle.

A lookup by card id and phone answers the card only when that phone is the card's, so a
caller that knows a card id could confirm a phone by trying numbers. Each such lookup that
does not match counts against the caller's budget (`LOOKUP_MISMATCH_BUDGET`, default 20, per
`LOOKUP_BUDGET_WINDOW_S`, default 3600 s, cardstatus/config.py; cdk.json
api.lookupMismatchBudget / api.lookupBudgetWindowSeconds). Past it, every card-id + phone
lookup of that caller is refused with 429 and `Retry-After` until its window ends: a match
as well (else a 200 after the budget would still confirm a guess). Matches never count.
Both answers stay indistinguishable otherwise: the same statements run for a match and a
mismatch, and the mismatch is the same 404 as an unknown card.

The count lives in PostgreSQL (`lookup_budget`, migration 0012), written only by the
SECURITY DEFINER function `lookup_budget_spend`, which the api role may execute in an
explicit read-write transaction (`spend`: one round trip, through `lookup_budget_charge`,
migration 0027).

Who is a caller: the IAM role (session name dropped) or user that signed the request
(`caller_of`); locally (`cardstatus serve` / `local`) there is no signature, so every request
is the one caller `local` and the budget is exercised there too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg2
from psycopg2.extensions import connection as Connection

from cardstatus.config import settings
from cardstatus.db import roll_back_open_transaction
from cardstatus.errors import TooManyMismatches
from cardstatus.sql import lookup_budget as sql

LOCAL_CALLER = "local"
# arn:aws:sts::123456789012:assumed-role/RoleName/session-name -> the role, whatever the session
_ASSUMED_ROLE = re.compile(r"^(arn:[\w-]+:sts::\d{12}:assumed-role/[^/]+)/.*$")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Budget:
    """At most `mismatches` non-matching card-id + phone lookups per `window_s` per caller."""

    mismatches: int
    window_s: int

    @classmethod
    def from_settings(cls) -> Budget:
        cfg = settings()
        return cls(cfg.lookup_mismatch_budget, cfg.lookup_budget_window_s)


def caller_of(event: dict[str, Any] | None) -> str:
    """The caller an API Gateway proxy event came from, as the budget counts it: the signing
    role's ARN (a new session name does not buy a new budget), else the user ARN, else the
    IAM caller id, else `local` (no signature: the local server)."""
    identity = ((event or {}).get("requestContext") or {}).get("identity") or {}
    arn = identity.get("userArn") or ""
    if isinstance(arn, str) and arn:
        match = _ASSUMED_ROLE.match(arn)
        return match.group(1) if match else arn
    caller = identity.get("caller")
    return caller if isinstance(caller, str) and caller else LOCAL_CALLER


def spend(
    conn: Connection,
    caller: str,
    *,
    mismatch: bool,
    budget: Budget,
    clock: Clock = utc_now,
) -> None:
    """Count one card-id + phone lookup of `caller` (mismatch: it did not match); raises
    TooManyMismatches (429, retry_after_s) when the caller's budget is spent.

    One round trip: `BEGIN READ WRITE`, the count and `COMMIT` in one query (no SET, which
    would pin an RDS Proxy session). A refused lookup raises in the database (sql.BUDGET_SPENT,
    the seconds in the error's DETAIL) and its aborted transaction is rolled back: one more
    round trip, for refusals only. Leaves the connection as it found it (autocommit or not)."""
    params = {
        "caller": caller,
        "mismatch": mismatch,
        "budget": budget.mismatches,
        "window_s": budget.window_s,
        "now": clock(),
    }
    autocommit = conn.autocommit
    conn.autocommit = True  # so that BEGIN READ WRITE below starts the transaction
    retry_after_s = 0
    try:
        with conn.cursor() as cur:
            try:
                cur.execute(sql.CHARGE, params)
            except BaseException as exc:
                roll_back_open_transaction(conn)
                if not isinstance(exc, psycopg2.Error) or exc.pgcode != sql.BUDGET_SPENT:
                    raise
                retry_after_s = int(exc.diag.message_detail or "1")
    finally:
        if not conn.closed:
            conn.autocommit = autocommit
    if retry_after_s > 0:
        raise TooManyMismatches(retry_after_s)
