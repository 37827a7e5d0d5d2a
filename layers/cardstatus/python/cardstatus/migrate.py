"""Versioned SQL migrations, applied in order under an advisory lock; re-running is a no-op.

Called by the deploy-time migrate Lambda and by `cardstatus migrate`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from psycopg2.extensions import connection as Connection

from cardstatus.dbroles import MIGRATE_LOCK_TIMEOUT_MS, MIGRATE_STATEMENT_TIMEOUT_MS

# Arbitrary constant shared by every migrator so that two deploys never migrate at once.
_MIGRATION_LOCK_KEY = 0x6361726473  # "cards"


@dataclass(frozen=True)
class Migration:
    version: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


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
        cur.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK_KEY,))
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
            with conn.cursor() as cur:
                cur.execute(migration.sql)
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
