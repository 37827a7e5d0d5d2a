"""A void is one transaction: a crash at any point (the backend killed) leaves the state of
before the void, and running the void again completes it (the state of S without the file)."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import psycopg2
import rel_support as rs
import void_support as vs

from cardstatus.void import void_file


def _scenario(db: Any, seed: int) -> tuple[list[vs.VoidFile], vs.VoidFile, dict[str, Any]]:
    """Files sharing cards and events; the reference state of all of them but the victim."""
    rng = random.Random(seed)
    files = vs.random_files(rng, 4, (20, 40), n_cards=6, n_times=8)
    victim = files[1]
    vs.reset(db)
    vs.apply_all(db, [f for f in files if f is not victim])
    reference = vs.state(db)
    vs.reset(db)
    return files, victim, reference


def _voided_at(db: Any, file_id: int) -> Any:
    with db.cursor() as cur:
        cur.execute("SELECT voided_at FROM ingested_file WHERE id = %s", (file_id,))
        value = cur.fetchone()[0]
    db.commit()
    return value


def test_a_void_killed_before_any_of_its_statements_changes_nothing_and_the_retry_completes(
    db_url: str, db: Any, admin_url_for: Any
) -> None:
    files, victim, reference = _scenario(db, 7)
    ids = vs.apply_all(db, files)
    before = vs.state(db)
    outbox_before = vs.last_outbox_id(db)
    admin = psycopg2.connect(db_url)
    try:
        kill_at = 0
        while True:
            plan = rs.FaultPlan(admin, kill_at)
            conn = rs.fault_connection(db_url, plan)
            try:
                result = void_file(conn, ids[victim.key], "wrong file", "tester")
            except psycopg2.Error:
                assert plan.killed, plan.calls
                assert vs.state(db) == before, f"killed before call {kill_at}: {plan.calls}"
                assert _voided_at(db, ids[victim.key]) is None
                assert vs.last_outbox_id(db) == outbox_before
                kill_at += 1
                continue
            finally:
                conn.close()
            assert not plan.killed
            break
        # Every call of the void (statements and the commit) was a crash point once.
        assert kill_at == len(plan.calls) >= 10, plan.calls
        assert result.voided_by == "tester"
        assert vs.state(db) == reference
        vs.assert_versions_strictly_increase(db)
    finally:
        admin.close()


def test_a_void_whose_backend_is_terminated_while_it_waits_for_a_card_lock(
    db_url: str, db: Any
) -> None:
    """pg_terminate_backend from another connection while the void runs (it has deleted the
    file's copies and events and waits for a card row another transaction holds)."""
    files, victim, reference = _scenario(db, 11)
    ids = vs.apply_all(db, files)
    before = vs.state(db)
    blocker = psycopg2.connect(db_url)
    voider = psycopg2.connect(db_url)
    pid = voider.get_backend_pid()
    errors: list[BaseException] = []
    try:
        with blocker.cursor() as cur:
            cur.execute(
                "SELECT c.card_id FROM card c JOIN event_copy o USING (card_id)"
                " WHERE o.file_id = %s ORDER BY 1 DESC LIMIT 1 FOR UPDATE OF c",
                (ids[victim.key],),
            )

        def run() -> None:
            try:
                void_file(voider, ids[victim.key], "wrong file", "tester")
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=run)
        thread.start()
        deadline = time.monotonic() + 30
        with db.cursor() as cur:
            while True:
                cur.execute(
                    "SELECT wait_event_type, query FROM pg_stat_activity WHERE pid = %s", (pid,)
                )
                wait, query = cur.fetchone()
                db.commit()
                if wait == "Lock" and "FOR UPDATE OF c" in query:
                    break
                assert time.monotonic() < deadline, "the void never waited for the card lock"
                time.sleep(0.02)
        # The void has already deleted the file's copies and events in its transaction.
        with blocker.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
        thread.join(30)
        assert not thread.is_alive()
        assert errors and isinstance(errors[0], psycopg2.OperationalError), errors
        blocker.rollback()
        assert vs.state(db) == before
        assert _voided_at(db, ids[victim.key]) is None
    finally:
        blocker.close()
        voider.close()
    vs.void(db, ids[victim.key])
    assert vs.state(db) == reference
