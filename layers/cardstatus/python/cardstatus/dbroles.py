"""PostgreSQL login roles, in one place.

Migration ``sql/migrations/0005_roles.sql`` creates these roles and sets their role-level
settings; the CDK stack grants ``rds-db:connect`` on the same names and hands each function
its ``DB_USER``. ``tests/test_db_roles.py`` proves the migration and these constants agree,
and ``infra.settings`` checks every role's ``statement_timeout`` against its function's timeout.

Who connects as whom (docs/DEPLOY.md "Database roles"):

- ``cardstatus_ingest`` — the ingest function: IAM token, directly to the instance (COPY and
  long transactions do not belong behind RDS Proxy). Writes only what ingestion writes.
- ``cardstatus_api`` — the API function: IAM token through RDS Proxy. Read-only at role level.
- ``cardstatus_void`` — voiding an applied file: undo exactly one file's effects.
- migrate runs as the schema owner (the RDS master user on AWS, whose secret is kept for
  migrate, rotation and break-glass only); it sets its own timeouts in ``apply_migrations``.

Every migration that adds a table adds its GRANTs to these roles in the same file, the api
role's SELECT included: migration 0011 revoked the default privileges that used to give the
api role every new table (tests/test_db_privileges.py compares every privilege with
tests/db_privileges.json).
"""

from __future__ import annotations

from typing import Final

INGEST: Final = "cardstatus_ingest"
API: Final = "cardstatus_api"
VOID: Final = "cardstatus_void"
ALL: Final = (INGEST, API, VOID)

# Role-level settings (ALTER ROLE ... SET), in milliseconds. A session SET would pin RDS Proxy
# connections, and IAM-authenticated connections skip the session SET in db.connect().
# statement_timeout stays below the calling function's timeout (infra.settings checks it with
# the margin of FUNCTION_OF_ROLE to spare), so PostgreSQL ends a statement before Lambda kills the
# sandbox and leaves the backend running with its locks held.
ROLE_SETTINGS_MS: Final[dict[str, dict[str, int]]] = {
    INGEST: {
        "statement_timeout": 240_000,
        "lock_timeout": 30_000,
        "idle_in_transaction_session_timeout": 60_000,
    },
    API: {
        "statement_timeout": 5_000,
        "lock_timeout": 2_000,
        "idle_in_transaction_session_timeout": 10_000,
    },
    VOID: {
        "statement_timeout": 240_000,
        "lock_timeout": 30_000,
        "idle_in_transaction_session_timeout": 60_000,
    },
}

# The function (cdk.json ``functions.<name>``) that logs in as each role, and the seconds it
# keeps between the role's statement_timeout and its own timeout (time to roll back, write the
# report, answer). infra.settings refuses a cdk.json that leaves less.
FUNCTION_OF_ROLE: Final[dict[str, tuple[str, int]]] = {
    INGEST: ("ingest", 30),
    API: ("api", 2),
    VOID: ("void", 30),
}

# The migrating session (schema owner): waits at most this long for a lock (then the deploy
# fails and can be retried) instead of queueing every other query behind an ACCESS EXCLUSIVE
# request; and no statement runs past the migrate function's timeout.
MIGRATE_LOCK_TIMEOUT_MS: Final = 10_000
MIGRATE_STATEMENT_TIMEOUT_MS: Final = 240_000
MIGRATE_FUNCTION: Final = ("migrate", 30)


def statement_timeout_s(role: str) -> float:
    return ROLE_SETTINGS_MS[role]["statement_timeout"] / 1000
