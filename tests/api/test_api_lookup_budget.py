"""The phone oracle is closed (issue 18, H2 residual; README "Caller roles"): card-id + phone
lookups that do not match count against a per-caller budget kept in PostgreSQL (migration
0012); past it 429 with Retry-After and the LookupBudgetExceeded metric. Time comes from an
injected clock, never from sleeping.
"""

from __future__ import annotations

import io
import json
import os
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import psycopg2
import psycopg2.errors
import pytest
from api_helpers import Api, CountingCursor, event_for

from cardstatus import lookup_budget
from cardstatus.errors import TooManyMismatches

CARD, PHONE, WRONG = "ZYW8827", "585949014", "585949015"
ROLE = "arn:aws:iam::123456789012:role/support-console"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 6, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(api_module: ModuleType, monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(api_module, "budget_clock", c)
    return c


def _lookup(
    api: Api, phone: str, caller: str | None = None, via_search: bool = False
) -> tuple[int, dict[str, str], Any]:
    if via_search:
        event = event_for("/cards/search", method="POST")
        event["headers"] = {"Content-Type": "application/json"}
        event["multiValueHeaders"] = {"Content-Type": ["application/json"]}
        event["body"] = json.dumps({"card_id": CARD, "user_phone": phone})
    else:
        event = event_for("/get_card_status", {"card_id": CARD, "user_phone": phone})
    if caller is not None:
        event["requestContext"]["identity"]["userArn"] = caller
    return api.call(event)


def test_twenty_first_mismatch_is_429_with_retry_after(api: Api, seeded: Any, clock: Clock) -> None:
    for _ in range(20):
        status, _, body = _lookup(api, WRONG)
        assert status == 404 and body["error"]["code"] == "not_found"
    status, headers, body = _lookup(api, WRONG)
    assert status == 429
    assert body["error"]["code"] == "too_many_requests"
    assert headers["Retry-After"] == "3600"
    clock.now += timedelta(minutes=59, seconds=30)
    status, headers, _ = _lookup(api, WRONG, via_search=True)
    assert (status, headers["Retry-After"]) == (429, "30")


def test_a_match_is_200_until_the_budget_is_spent_and_never_counts(
    api: Api, seeded: Any, clock: Clock
) -> None:
    for _ in range(19):
        assert _lookup(api, WRONG)[0] == 404
    for _ in range(30):  # matches do not spend the budget
        assert _lookup(api, PHONE)[0] == 200
    assert _lookup(api, WRONG)[0] == 404  # the 20th mismatch
    # Spent: a match is refused too (a 200 now would still confirm a guessed phone).
    assert _lookup(api, PHONE)[0] == 429
    assert _lookup(api, PHONE, via_search=True)[0] == 429


def test_the_budget_resets_after_its_window(api: Api, seeded: Any, clock: Clock) -> None:
    for _ in range(20):
        _lookup(api, WRONG)
    assert _lookup(api, PHONE)[0] == 429
    clock.now += timedelta(seconds=3599)
    assert _lookup(api, PHONE)[0] == 429
    clock.now += timedelta(seconds=1)
    assert _lookup(api, PHONE)[0] == 200
    for _ in range(20):
        assert _lookup(api, WRONG)[0] == 404
    assert _lookup(api, WRONG)[0] == 429


def test_each_caller_has_its_own_budget_whatever_its_session_name(
    api: Api, seeded: Any, clock: Clock
) -> None:
    spender = "arn:aws:sts::123456789012:assumed-role/support-console/session-{}"
    for i in range(20):  # a new session name per request does not buy a new budget
        assert _lookup(api, WRONG, caller=spender.format(i))[0] == 404
    assert _lookup(api, WRONG, caller=spender.format("x"))[0] == 429
    assert _lookup(api, PHONE, caller=ROLE)[0] == 200  # another caller is not affected
    assert _lookup(api, WRONG, caller=ROLE)[0] == 404


def test_lookups_by_one_identifier_never_count(api: Api, seeded: Any, clock: Clock) -> None:
    for _ in range(25):
        assert api.call(event_for("/get_card_status", {"card_id": "ZYW0000"}))[0] == 404
        assert api.call(event_for("/cards", {"user_phone": WRONG}))[0] == 200
    assert _lookup(api, PHONE)[0] == 200


def test_budget_is_configurable(
    api: Api, seeded: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cardstatus.config import reset_settings_cache

    monkeypatch.setenv("LOOKUP_MISMATCH_BUDGET", "2")
    monkeypatch.setenv("LOOKUP_BUDGET_WINDOW_S", "60")
    reset_settings_cache()
    try:
        assert _lookup(api, WRONG)[0] == 404
        assert _lookup(api, WRONG)[0] == 404
        status, headers, _ = _lookup(api, WRONG)
        assert (status, headers["Retry-After"]) == (429, "60")
    finally:
        monkeypatch.delenv("LOOKUP_MISMATCH_BUDGET")
        monkeypatch.delenv("LOOKUP_BUDGET_WINDOW_S")
        reset_settings_cache()


def test_429_emits_the_metric_and_a_log_line_naming_the_caller(
    api: Api,
    api_module: ModuleType,
    seeded: Any,
    clock: Clock,
    captured_logs: io.StringIO,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for _ in range(20):
        _lookup(api, WRONG, caller=ROLE)
    capsys.readouterr()
    assert _lookup(api, WRONG, caller=ROLE)[0] == 429
    out = capsys.readouterr().out
    blobs = [json.loads(line) for line in out.splitlines() if "LookupBudgetExceeded" in line]
    assert blobs, out
    metric = blobs[0]
    assert metric["LookupBudgetExceeded"] == [1.0] or metric["LookupBudgetExceeded"] == 1.0
    directive = metric["_aws"]["CloudWatchMetrics"][0]
    assert directive["Dimensions"] == [["service"]]
    # The function's service name (cardstatus-api in the stack: the alarm's dimension).
    assert metric["service"] == os.environ.get("POWERTOOLS_SERVICE_NAME", "cardstatus-api")
    lines = [json.loads(x) for x in captured_logs.getvalue().splitlines() if x.strip()]
    (line,) = [x for x in lines if x.get("outcome") == "budget_exceeded"]
    assert line["caller"].endswith("role/support-console")
    assert WRONG not in captured_logs.getvalue()


# -- the database side: the api role may count, and nothing else -------------------------------


def test_api_role_counts_through_the_function_only(db_url: str, seeded: Any) -> None:
    conn = psycopg2.connect(db_url, user="cardstatus_api")
    conn.autocommit = True
    try:
        budget = lookup_budget.Budget(mismatches=1, window_s=60)
        now = datetime(2026, 12, 6, tzinfo=UTC)
        lookup_budget.spend(conn, "c", mismatch=True, budget=budget, clock=lambda: now)
        with pytest.raises(TooManyMismatches) as spent:
            lookup_budget.spend(conn, "c", mismatch=False, budget=budget, clock=lambda: now)
        assert spent.value.retry_after_s == 60
        with conn.cursor() as cur:  # the role is still read-only by default ...
            with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):
                cur.execute("UPDATE lookup_budget SET mismatches = 0")
            # ... and has no privilege on the table even in a read-write transaction.
            cur.execute("BEGIN READ WRITE")
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute("UPDATE lookup_budget SET mismatches = 0")
            cur.execute("ROLLBACK")
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute("SELECT * FROM lookup_budget")
        assert conn.autocommit  # left as it was
    finally:
        conn.close()


def test_other_roles_cannot_count(db_url: str) -> None:
    for role in ("cardstatus_ingest", "cardstatus_void"):
        conn = psycopg2.connect(db_url, user=role)
        try:
            for function in ("lookup_budget_spend", "lookup_budget_charge"):
                with conn.cursor() as cur, pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    cur.execute(f"SELECT {function}('x', true, 1, 60, NULL)")
                conn.rollback()
        finally:
            conn.close()


def test_caller_of_events() -> None:
    def ev(identity: dict[str, Any]) -> dict[str, Any]:
        return {"requestContext": {"identity": identity}}

    assert lookup_budget.caller_of(ev({})) == "local"
    assert lookup_budget.caller_of({}) == "local"
    assert lookup_budget.caller_of(ev({"userArn": ROLE})) == ROLE
    assert (
        lookup_budget.caller_of(
            ev({"userArn": "arn:aws:sts::123456789012:assumed-role/r-1/botocore-session-9"})
        )
        == "arn:aws:sts::123456789012:assumed-role/r-1"
    )
    assert lookup_budget.caller_of(ev({"caller": "AIDAEXAMPLE"})) == "AIDAEXAMPLE"


def test_a_failed_count_leaves_no_transaction_open(db_url: str, seeded: Any) -> None:
    conn = psycopg2.connect(db_url, user="cardstatus_api")
    conn.autocommit = True
    try:
        refused = lookup_budget.Budget(mismatches=0, window_s=60)  # the function refuses it
        with pytest.raises(psycopg2.errors.RaiseException):
            lookup_budget.spend(conn, "c", mismatch=True, budget=refused)
        assert conn.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_IDLE
        budget = lookup_budget.Budget(mismatches=1, window_s=60)
        lookup_budget.spend(conn, "c", mismatch=True, budget=budget)  # usable, and counted:
        with pytest.raises(TooManyMismatches):
            lookup_budget.spend(conn, "c", mismatch=False, budget=budget)
        assert conn.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_IDLE
    finally:
        conn.close()


def test_a_count_is_one_round_trip_and_a_refusal_two(db_url: str, seeded: Any) -> None:
    """BEGIN READ WRITE, the count and COMMIT go as one query (0027); a refused lookup raises in
    the database, and only then is a ROLLBACK sent."""
    conn = psycopg2.connect(db_url, user="cardstatus_api", cursor_factory=CountingCursor)
    conn.autocommit = True
    try:
        budget = lookup_budget.Budget(mismatches=1, window_s=60)
        CountingCursor.statements = []
        lookup_budget.spend(conn, "c", mismatch=True, budget=budget)
        assert len(CountingCursor.statements) == 1
        assert "COMMIT" in CountingCursor.statements[0]
        CountingCursor.statements = []
        with pytest.raises(TooManyMismatches):
            lookup_budget.spend(conn, "c", mismatch=True, budget=budget)
        assert [s.split()[0] for s in CountingCursor.statements] == ["BEGIN", "ROLLBACK"]
        assert conn.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_IDLE
    finally:
        conn.close()
