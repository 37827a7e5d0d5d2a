"""No-transaction migrations (`-- migrate: no-transaction`, cardstatus/migrate.py): a
concurrent index build is applied outside a transaction, an INVALID leftover of a failed
build is dropped and rebuilt, and a re-run after a failure completes the file exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest

import cardstatus.migrate as migrate
from cardstatus.migrate import (
    NO_TRANSACTION_MARKER,
    Migration,
    apply_migrations,
    available_migrations,
)


def _index(conn: Any, name: str) -> tuple[bool, bool] | None:
    """(valid, ready) of an index, None when it does not exist."""
    with conn.cursor() as cur:
        cur.execute(
            """SELECT i.indisvalid, i.indisready FROM pg_index i
               JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = %s""",
            (name,),
        )
        row = cur.fetchone()
    conn.rollback()
    return (bool(row[0]), bool(row[1])) if row else None


def _recorded(conn: Any) -> list[str]:
    with conn.cursor() as cur:
        cur.execute("SELECT version FROM schema_migrations ORDER BY version")
        versions = [r[0] for r in cur.fetchall()]
    conn.rollback()
    return versions


@pytest.fixture
def with_extra(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Run apply_migrations with the real migrations plus the given extra ones."""

    def use(*extra: Migration) -> None:
        monkeypatch.setattr(migrate, "available_migrations", lambda: [*_REAL, *extra])

    yield use


_REAL = available_migrations()
VERSION = "9990_test_concurrent"


def concurrent(sql: str, version: str = VERSION) -> Migration:
    return Migration(version=version, sql=f"{NO_TRANSACTION_MARKER}\n{sql}")


def test_a_concurrent_index_is_built_outside_the_transaction(db: Any, with_extra: Any) -> None:
    """CREATE INDEX CONCURRENTLY fails inside a transaction block: applied and recorded, the
    runner ran it in autocommit."""
    migration = concurrent(
        "-- an index on an existing table, built without blocking writes\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS card_test_status_at ON card (status_at);\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS ingested_file_test_partner\n"
        "    ON ingested_file (partner);\n"
    )
    assert not migration.in_transaction
    assert migration.statements() == [
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS card_test_status_at ON card (status_at)",
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS ingested_file_test_partner\n"
        "    ON ingested_file (partner)",
    ]
    with_extra(migration)
    assert apply_migrations(db) == [VERSION]
    assert _index(db, "card_test_status_at") == (True, True)
    assert _index(db, "ingested_file_test_partner") == (True, True)
    assert _recorded(db)[-1] == VERSION
    assert db.autocommit is False  # the connection is handed back as it came
    assert apply_migrations(db) == []  # idempotent: recorded, not run again


def test_the_same_statement_in_a_transactional_file_fails(db: Any, with_extra: Any) -> None:
    """The control: without the marker the build runs in the migration's transaction."""
    plain = Migration(
        version=VERSION,
        sql="CREATE INDEX CONCURRENTLY IF NOT EXISTS card_test_status_at ON card (status_at);",
    )
    with_extra(plain)
    with pytest.raises(psycopg2.errors.ActiveSqlTransaction):
        apply_migrations(db)
    assert VERSION not in _recorded(db)


def _leave_an_invalid_unique_index(db_url: str) -> None:
    """A failed CREATE UNIQUE INDEX CONCURRENTLY (duplicate keys) leaves an INVALID index."""
    conn = psycopg2.connect(db_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO card (card_id, status, status_at) VALUES"
                " ('DUP1', 'PICKED_UP', '2026-01-01T10:00Z'),"
                " ('DUP2', 'PICKED_UP', '2026-01-01T10:00Z')"
            )
            with pytest.raises(psycopg2.errors.UniqueViolation):
                cur.execute(
                    "CREATE UNIQUE INDEX CONCURRENTLY card_test_unique_at ON card (status_at)"
                )
            cur.execute("DELETE FROM card WHERE card_id = 'DUP2'")
    finally:
        conn.close()


def test_an_invalid_leftover_is_dropped_and_rebuilt(db: Any, db_url: str, with_extra: Any) -> None:
    _leave_an_invalid_unique_index(db_url)
    leftover = _index(db, "card_test_unique_at")
    assert leftover is not None and leftover[0] is False  # exists, INVALID
    with_extra(
        concurrent(
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS card_test_unique_at ON card (status_at);"
        )
    )
    assert apply_migrations(db) == [VERSION]
    # IF NOT EXISTS alone would have kept the INVALID index (never used by a query, still
    # maintained on every write): the runner dropped it first and built it again.
    assert _index(db, "card_test_unique_at") == (True, True)
    with db.cursor() as cur, pytest.raises(psycopg2.errors.UniqueViolation):
        cur.execute(
            "INSERT INTO card (card_id, status, status_at)"
            " VALUES ('DUP3', 'PICKED_UP', '2026-01-01T10:00Z')"
        )
    db.rollback()


def test_a_failed_file_is_completed_by_the_next_run_exactly_once(db: Any, with_extra: Any) -> None:
    """Statement 2 fails (a deploy interrupted): statement 1 stays built, nothing is recorded;
    the next deploy re-runs the file, skips what exists and records it once."""
    failing = concurrent(
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS card_test_a ON card (status_at);\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS card_test_b ON card (no_such_column);\n"
    )
    with_extra(failing)
    with pytest.raises(psycopg2.errors.UndefinedColumn):
        apply_migrations(db)
    assert _index(db, "card_test_a") == (True, True)
    assert VERSION not in _recorded(db)
    fixed = concurrent(
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS card_test_a ON card (status_at);\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS card_test_b ON card (status, status_at);\n"
    )
    with_extra(fixed)
    assert apply_migrations(db) == [VERSION]
    assert _index(db, "card_test_b") == (True, True)
    assert _recorded(db).count(VERSION) == 1
    assert apply_migrations(db) == []
    # the migration lock was released on both runs: another session can take it
    with db.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s)", (migrate._MIGRATION_LOCK_KEY,))
        assert cur.fetchone() == (True,)
        cur.execute("SELECT pg_advisory_unlock(%s)", (migrate._MIGRATION_LOCK_KEY,))
    db.rollback()
