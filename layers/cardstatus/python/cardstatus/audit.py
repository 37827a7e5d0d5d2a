"""Every lookup accountable (README "Privacy"): one audit row per API lookup, and the trail.

A row says who asked (the caller's IAM ARN), by which route, whether by phone, with which
outcome and which card ids: the cards answered, or the card id asked for when nothing was
found. Never a phone number, in any form. The api role may only append (0019_lookup_audit.sql);
`cardstatus audit` reads the trail as the schema owner. Partitions by UTC day and their
retention: `maintain()`, run by the sweeper.

`record_lookup` writes a row and returns when the server has it. `start_record` sends the
same write from the one writer thread of the process and returns at once with an `InFlight`
whose `wait()` returns (or raises the write's error) once the server has answered: the api
sends a lookup's row as soon as it knows the answered card ids, shapes the answer while the
server inserts it, and waits before the answer leaves (functions/api/audit_trail.py).
psycopg2 releases the GIL while it waits for the server, so the write overlaps the answer's
Python work. The connection is the caller's to keep idle until `wait()` returned: a
psycopg2 connection runs one statement at a time.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg2.extensions import connection as Connection

from cardstatus.sql import audit as sql

# Outcomes of a lookup as the trail records them.
FOUND = "found"
NOT_FOUND = "not_found"


@dataclass(frozen=True)
class LookupRecord:
    caller: str
    route: str
    by_phone: bool
    outcome: str
    card_ids: tuple[str, ...]

    def to_params(self) -> dict[str, Any]:
        return {
            "caller": self.caller,
            "route": self.route,
            "by_phone": self.by_phone,
            "outcome": self.outcome,
            "card_ids": list(self.card_ids),
        }


def record_lookup(conn: Connection, record: LookupRecord) -> None:
    """Append one row (own short transaction; `conn` must be in autocommit)."""
    with conn.cursor() as cur:
        cur.execute(sql.RECORD_LOOKUP, record.to_params())


class InFlight:
    """One audit row being written on the writer thread (`start_record`)."""

    __slots__ = ("_conn", "_done", "_error", "_record", "_sent")

    def __init__(self, conn: Connection, record: LookupRecord) -> None:
        self._conn = conn
        self._record = record
        self._error: BaseException | None = None
        self._sent = threading.Lock()  # released by the writer as it sends the row
        self._done = threading.Lock()  # released by the writer once the server answered
        self._sent.acquire()
        self._done.acquire()

    def _run(self) -> None:  # on the writer thread
        try:
            # Main thread resumes once psycopg2 releases the GIL to wait for the server.
            self._sent.release()
            record_lookup(self._conn, self._record)
        except BaseException as exc:  # handed to wait()
            self._error = exc
        finally:
            self._done.release()

    def wait(self) -> None:
        """Return once the row is written; raise the write's error if it failed."""
        self._done.acquire()
        self._done.release()
        if self._error is not None:
            raise self._error


_jobs: queue.SimpleQueue[InFlight] = queue.SimpleQueue()
_writer: threading.Thread | None = None
_writer_lock = threading.Lock()


def _write_rows() -> None:
    while True:
        _jobs.get()._run()


def start_record(conn: Connection, record: LookupRecord) -> InFlight:
    """Send one row from the writer thread (see the module); `conn` must be in autocommit
    and stay unused until the returned InFlight's `wait()` returned."""
    global _writer
    if _writer is None or not _writer.is_alive():
        with _writer_lock:
            if _writer is None or not _writer.is_alive():
                _writer = threading.Thread(target=_write_rows, name="lookup-audit", daemon=True)
                _writer.start()
    job = InFlight(conn, record)
    _jobs.put(job)
    job._sent.acquire()  # until the writer holds the job: it then sends without waiting on us
    return job


def trail(
    conn: Connection,
    *,
    card_id: str | None = None,
    caller: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Lookups of one card (or by one caller), newest first."""
    if (card_id is None) == (caller is None):
        raise ValueError("give exactly one of card_id and caller")
    params = {"card_id": card_id, "caller": caller, "since": since, "limit": limit}
    with conn.cursor() as cur:
        cur.execute(sql.TRAIL if card_id is not None else sql.BY_CALLER, params)
        rows: Sequence[tuple[Any, ...]] = cur.fetchall()
    return [
        {
            "at": at.isoformat(),
            "caller": who,
            "route": route,
            "by_phone": by_phone,
            "outcome": outcome,
            "card_ids": list(ids),
        }
        for at, who, route, by_phone, outcome, ids in rows
    ]


def maintain(conn: Connection, keep_days: int, as_of: datetime | None = None) -> tuple[int, int]:
    """Create the next days' partitions and drop those past `keep_days`: (created, dropped)."""
    with conn.cursor() as cur:
        cur.execute(
            sql.MAINTAIN, {"keep_days": keep_days, "as_of": as_of or datetime.now().astimezone()}
        )
        created, dropped = cur.fetchone() or (0, 0)
    conn.commit()
    return int(created), int(dropped)
