"""Versioned SQL migrations, applied in order under an advisory lock; re-running is a no-op.

Called by the deploy-time migrate Lambda and by `cardstatus migrate`.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from importlib import resources
from typing import Any

from psycopg2.extensions import connection as Connection

from cardstatus.dbroles import MIGRATE_LOCK_TIMEOUT_MS, MIGRATE_STATEMENT_TIMEOUT_MS

# Arbitrary constant shared by every migrator so that two deploys never migrate at once.
_MIGRATION_LOCK_KEY = 0x6361726473  # "cards"


# First line of a migration that must run outside a transaction (CREATE INDEX CONCURRENTLY):
# its statements run one by one in autocommit, so each must be idempotent (IF NOT EXISTS) and
# none may use dollar quoting (statements are split at a ';' that ends a line).
NO_TRANSACTION_MARKER = "-- migrate: no-transaction"


@dataclass(frozen=True)
class Migration:
    version: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()

    @property
    def in_transaction(self) -> bool:
        return not self.sql.startswith(NO_TRANSACTION_MARKER)

    def statements(self) -> list[str]:
        """The statements of a no-transaction migration, comments and blank lines dropped."""
        lines = [line for line in self.sql.splitlines() if not line.lstrip().startswith("--")]
        parts = re.split(r";[ \t]*$", "\n".join(lines), flags=re.MULTILINE)
        return [part.strip() for part in parts if part.strip()]


def available_migrations() -> list[Migration]:
    folder = resources.files("cardstatus.sql") / "migrations"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [Migration(version=f.name.removesuffix(".sql"), sql=f.read_text("utf-8")) for f in files]


def migrations_fingerprint() -> str:
    """Changes whenever a migration file is added or edited (drives the deploy-time migration)."""
    digest = hashlib.sha256()
    for m in available_migrations():
        digest.update(m.version.encode() + b"\0" + m.checksum.encode() + b"\n")
    return digest.hexdigest()


def apply_migrations(conn: Connection) -> list[str]:
    """Apply pending migrations, each in its own transaction. Returns the versions applied.

    Runs as the schema owner. No statement runs longer than MIGRATE_STATEMENT_TIMEOUT_MS (the
    wait for another migrator included), and once this migrator holds the migration lock a DDL
    statement waits at most MIGRATE_LOCK_TIMEOUT_MS for a table lock (e.g. held by an ingest
    transaction) instead of queueing every other query behind its ACCESS EXCLUSIVE request:
    the deploy then fails with a lock timeout and can simply be retried.
    """
    applied_now: list[str] = []
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SET statement_timeout = %s", (MIGRATE_STATEMENT_TIMEOUT_MS,))
        _wait_for_migration_lock(cur)
        cur.execute("SET lock_timeout = %s", (MIGRATE_LOCK_TIMEOUT_MS,))
    try:
        conn.autocommit = False
        with conn.cursor() as cur:
            cur.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version    text PRIMARY KEY,
                       checksum   text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            cur.execute("SELECT version, checksum FROM schema_migrations")
            done = dict(cur.fetchall())
        conn.commit()
        for migration in available_migrations():
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    raise RuntimeError(
                        f"migration {migration.version} was edited after it was applied; "
                        "add a new migration instead"
                    )
                continue
            if migration.in_transaction:
                with conn.cursor() as cur:
                    cur.execute(migration.sql)
            else:
                _apply_outside_transaction(conn, migration)
            with conn.cursor() as cur:
                cur.execute(
                    "INSERT INTO schema_migrations (version, checksum) VALUES (%s, %s)",
                    (migration.version, migration.checksum),
                )
            conn.commit()
            applied_now.append(migration.version)
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK_KEY,))
            cur.execute("RESET lock_timeout")
            cur.execute("RESET statement_timeout")
        conn.autocommit = False
    return applied_now


def _wait_for_migration_lock(cur: Any) -> None:
    """Take the migration lock, polling instead of blocking in pg_advisory_lock: a migrator
    blocked inside a statement holds a snapshot, and CREATE INDEX CONCURRENTLY in the migrator
    that holds the lock waits for every older snapshot to end — a deadlock between two deploys.
    Gives up after MIGRATE_STATEMENT_TIMEOUT_MS, like a blocked statement would."""
    deadline = time.monotonic() + MIGRATE_STATEMENT_TIMEOUT_MS / 1000
    while True:
        cur.execute("SELECT pg_try_advisory_lock(%s)", (_MIGRATION_LOCK_KEY,))
        if cur.fetchone()[0]:
            return
        if time.monotonic() >= deadline:
            raise TimeoutError("another migrator held the migration lock for too long")
        time.sleep(0.2)


def _apply_outside_transaction(conn: Connection, migration: Migration) -> None:
    """Run each statement in autocommit (CREATE INDEX CONCURRENTLY cannot run in a transaction).

    A concurrent build that failed half-way leaves an INVALID index of that name behind, which
    `IF NOT EXISTS` would then keep: such leftovers are dropped before the statements run again.
    """
    conn.commit()
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for statement in migration.statements():
                name = _concurrent_index_name(statement)
                if name is not None:
                    cur.execute(
                        """SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                           WHERE c.relname = %s AND NOT i.indisvalid""",
                        (name,),
                    )
                    if cur.fetchone():
                        cur.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')
                cur.execute(statement)
    finally:
        conn.autocommit = False


_CONCURRENT_INDEX = re.compile(
    r"CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.IGNORECASE
)


def _concurrent_index_name(statement: str) -> str | None:
    match = _CONCURRENT_INDEX.match(statement)
    return match.group(1) if match else None
