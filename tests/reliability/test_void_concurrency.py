"""Voids running concurrently with ingestion, and with each other, on files that share cards
and events: each end in the state of a serial run (locks in one order; a deadlock is retried),
and the outbox keeps every card's versions strictly increasing."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg2
import pytest
import rel_support as rs
import void_support as vs

ROWS = (1500, 3000)


def _run_together(
    db_url: str, jobs: list[Callable[[Any], Any]], delays: tuple[float, ...] = ()
) -> list[BaseException]:
    """Each job on its own connection, all released at once (job i after delays[i] seconds);
    the errors they raised."""
    errors: list[BaseException] = []
    start = threading.Barrier(len(jobs))

    def worker(job: Callable[[Any], Any], delay: float) -> None:
        conn = psycopg2.connect(db_url)
        try:
            start.wait()
            time.sleep(delay)
            job(conn)
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()

    waits = list(delays) + [0.0] * (len(jobs) - len(delays))
    threads = [threading.Thread(target=worker, args=(job, d)) for job, d in zip(jobs, waits)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
        assert not t.is_alive(), "a void or an ingest hangs"
    return errors


def _files(seed: int) -> list[vs.VoidFile]:
    # Many rows over few cards and times: the files share most cards and many events.
    return vs.random_files(random.Random(seed), 4, ROWS, n_cards=150, n_times=8, tag="c")


@pytest.mark.parametrize(("seed", "void_delay"), [(1, 0.0), (2, 0.05), (3, 0.15), (4, 0.3)])
def test_a_void_while_another_file_ingests_equals_the_serial_run(
    db_url: str, db: Any, seed: int, void_delay: float
) -> None:
    """The void starts while the file is being read, merged or projected (delays)."""
    files = _files(seed)
    voided, ingested = files[0], files[1]
    vs.reset(db)
    vs.apply_all(db, [f for f in files if f is not voided])
    reference = vs.state(db)

    vs.reset(db)
    ids = vs.apply_all(db, [f for f in files if f is not ingested])
    errors = _run_together(
        db_url,
        [
            lambda conn: vs.void(conn, ids[voided.key]),
            lambda conn: vs.ingest(conn, ingested),
        ],
        delays=(void_delay,),
    )
    assert not errors, errors
    assert vs.state(db) == reference
    vs.assert_versions_strictly_increase(db)
    rs.count("void_concurrent_runs")


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_two_voids_of_files_that_share_cards_equal_the_serial_run(
    db_url: str, db: Any, seed: int
) -> None:
    files = _files(seed)
    first, second = files[0], files[2]
    vs.reset(db)
    vs.apply_all(db, [f for f in files if f not in (first, second)])
    reference = vs.state(db)

    vs.reset(db)
    ids = vs.apply_all(db, files)
    errors = _run_together(
        db_url,
        [
            lambda conn: vs.void(conn, ids[first.key]),
            lambda conn: vs.void(conn, ids[second.key]),
        ],
    )
    assert not errors, errors
    assert vs.state(db) == reference
    vs.assert_versions_strictly_increase(db)
    rs.count("void_concurrent_runs")


def test_a_void_and_the_same_bytes_uploaded_again_at_once(db_url: str, db: Any) -> None:
    """Void F while F's bytes arrive under another key: either order is a serial run — the
    upload is a duplicate of F and then F is voided (F's events gone), or F is voided and the
    upload is applied (F's events back). Never both applied, never a half state."""
    files = _files(7)
    target = files[0]
    again = vs.VoidFile(target.file, target.key.replace(".csv", " again.csv"))
    vs.reset(db)
    vs.apply_all(db, files[1:])
    without = vs.state(db)
    vs.reset(db)
    ids = vs.apply_all(db, files)
    with_it = vs.state(db)
    reports: list[dict[str, Any]] = []
    errors = _run_together(
        db_url,
        [
            lambda conn: vs.void(conn, ids[target.key]),
            lambda conn: reports.append(rs.ingest_bytes(conn, again.render(), again.key)),
        ],
    )
    assert not errors, errors
    outcome = reports[0]["outcome"]
    final = vs.state(db)
    if outcome == "duplicate_file":
        assert final == without
    else:
        assert outcome == "applied"
        # The same state as S, with F's copies under the new key.
        # (history entries name their file by key: F's events now come from the new key)
        renamed = {c: text.replace(again.key, target.key) for c, text in final["api"].items()}
        assert renamed == with_it["api"] and final["projection"] == with_it["projection"]
