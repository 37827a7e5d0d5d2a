"""Least-privilege database roles (migration 0005, cardstatus/dbroles.py; docs/DEPLOY.md
"Database roles").

Roles are cluster-wide and the embedded server is shared by the whole session, so nothing here
assumes a role is new. Database ACLs (CONNECT/TEMPORARY) are not copied by CREATE DATABASE ...
TEMPLATE, so these tests migrate a database of their own from scratch.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import pytest

from cardstatus import dbroles, migrate
from cardstatus.config import load_settings
from cardstatus.ingest import ingest_path
from cardstatus.migrate import Migration, apply_migrations, available_migrations
from fixture_paths import EVENTS, ROOT

REFUSED = (psycopg2.errors.InsufficientPrivilege, psycopg2.errors.ReadOnlySqlTransaction)
ROLES_SQL = "0005_roles"


def _with_db(url: str, dbname: str) -> str:
    params = psycopg2.extensions.parse_dsn(url)
    params["dbname"] = dbname
    return psycopg2.extensions.make_dsn(**params)


def _admin(url: str, sql: str) -> None:
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


@pytest.fixture(scope="module")
def roles_db(pg_admin_url: str) -> Iterator[str]:
    """A database migrated from scratch (as the owner), with another schema beside `public`."""
    name = f"cs_roles_{uuid.uuid4().hex[:10]}"
    _admin(pg_admin_url, f'CREATE DATABASE "{name}"')
    url = _with_db(pg_admin_url, name)
    conn = psycopg2.connect(url)
    try:
        apply_migrations(conn)
        with conn.cursor() as cur:
            cur.execute("CREATE SCHEMA other; CREATE TABLE other.secret (v text)")
            cur.execute("INSERT INTO other.secret VALUES ('x')")
        conn.commit()
    finally:
        conn.close()
    yield url
    _admin(pg_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def connect_as(url: str, role: str) -> Any:
    return psycopg2.connect(url, user=role)


def refused(conn: Any, sql: str, errors: tuple[type[BaseException], ...] = REFUSED) -> None:
    with conn.cursor() as cur, pytest.raises(errors):
        cur.execute(sql)
    conn.rollback()


def _setting(conn: Any, name: str) -> str:
    with conn.cursor() as cur:
        cur.execute("SELECT setting FROM pg_settings WHERE name = %s", (name,))
        row = cur.fetchone()
    conn.rollback()
    return str(row[0])


# -- one place for the names and settings --------------------------------------------------


def test_migration_names_only_the_roles_of_dbroles() -> None:
    sql = (resources.files("cardstatus.sql") / "migrations" / f"{ROLES_SQL}.sql").read_text()
    assert set(re.findall(r"cardstatus_[a-z_]+", sql)) == set(dbroles.ALL)


@pytest.mark.parametrize("role", dbroles.ALL)
def test_role_level_settings_match_dbroles(roles_db: str, role: str) -> None:
    conn = connect_as(roles_db, role)
    try:
        for name, millis in dbroles.ROLE_SETTINGS_MS[role].items():
            assert int(_setting(conn, name)) == millis, (role, name)
        read_only = _setting(conn, "default_transaction_read_only")
        assert read_only == ("on" if role == dbroles.API else "off")
    finally:
        conn.close()


# -- ingest -----------------------------------------------------------------------------------


def test_ingest_role_can_ingest_a_file_with_rejects(roles_db: str, tmp_path: Path) -> None:
    sample = EVENTS / "partner_samples" / "Sample Card Status Info - Delivery exceptions.csv"
    text = sample.read_text("utf-8-sig").rstrip("\n") + "\nA999,not a card!,x,99-99-9999 99:99,\n"
    path = tmp_path / f"roles {uuid.uuid4().hex[:6]} - Delivery exceptions.csv"
    path.write_text(text, "utf-8")
    conn = connect_as(roles_db, dbroles.INGEST)
    try:
        report = ingest_path(conn, path, load_settings())
        assert report["outcome"] == "applied", report
        assert report["counts"]["rejected"] == 1, report
        again = ingest_path(conn, path, load_settings())
        assert again["outcome"] == "duplicate_file", again
    finally:
        conn.close()
    owner = psycopg2.connect(roles_db)
    try:
        with owner.cursor() as cur:
            cur.execute("SELECT count(*) FROM rejected_row")
            assert cur.fetchone()[0] >= 1
            cur.execute("SELECT count(*) FROM card")
            assert cur.fetchone()[0] >= 1
    finally:
        owner.close()


@pytest.mark.parametrize(
    "sql",
    [
        "DROP TABLE card",
        "TRUNCATE card_event",
        "DELETE FROM card",
        "DELETE FROM card_event",
        "UPDATE card_event SET occurred_at = now()",  # merged fields only (0006)
        "SELECT * FROM rejected_row",
        "SELECT * FROM schema_migrations",
        "INSERT INTO schema_migrations (version, checksum) VALUES ('9999', 'x')",
        "SELECT * FROM other.secret",
        "CREATE TABLE public.mine (v int)",
        "CREATE SCHEMA mine",
        "ALTER TABLE card ADD COLUMN x int",
        "CREATE ROLE cardstatus_test_evil LOGIN",
        "GRANT cardstatus_api TO cardstatus_ingest",
        "SELECT * FROM pg_authid",
        "COPY card TO '/tmp/cardstatus-leak'",
    ],
)
def test_ingest_role_cannot_leave_its_grants(roles_db: str, sql: str) -> None:
    conn = connect_as(roles_db, dbroles.INGEST)
    try:
        refused(conn, sql)
    finally:
        conn.close()


def test_ingest_role_is_no_superuser_and_cannot_create_roles(roles_db: str) -> None:
    conn = connect_as(roles_db, dbroles.INGEST)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication "
                "FROM pg_roles WHERE rolname = current_user"
            )
            assert cur.fetchone() == (False, False, False, False, False)
    finally:
        conn.close()


# -- api --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM card",
        "UPDATE card SET comment = NULL",
        "INSERT INTO rejected_row (file_id, line, reason) VALUES (1, 1, 'x')",
        "DROP TABLE card_event",
        "CREATE TABLE public.mine (v int)",
        "SELECT * FROM other.secret",
    ],
)
def test_api_role_cannot_write(roles_db: str, sql: str) -> None:
    conn = connect_as(roles_db, dbroles.API)
    try:
        refused(conn, sql)
    finally:
        conn.close()


def test_api_role_writes_nothing_even_with_read_only_switched_off(roles_db: str) -> None:
    """Read-only at role level is the second line; the first is that it has no write grant."""
    conn = connect_as(roles_db, dbroles.API)
    try:
        with conn.cursor() as cur:
            cur.execute("SET default_transaction_read_only = off")
        conn.commit()
        refused(conn, "DELETE FROM card", (psycopg2.errors.InsufficientPrivilege,))
        # No temporary tables either (through RDS Proxy they would pin the connection).
        refused(conn, "CREATE TEMP TABLE t (v int)", (psycopg2.errors.InsufficientPrivilege,))
    finally:
        conn.close()


def test_api_role_reads_what_it_queries_and_no_later_table(roles_db: str) -> None:
    """N7: SELECT on the tables its queries read (sql/cards.py, sql/ops.py), nothing else, and
    no default privileges: a later table is not readable unless its migration grants it."""
    owner = psycopg2.connect(roles_db)
    try:
        with owner.cursor() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS public.later_table (v int)")
        owner.commit()
    finally:
        owner.close()
    conn = connect_as(roles_db, dbroles.API)
    try:
        with conn.cursor() as cur:
            for table in ("card", "card_event", "ingested_file", "rejected_row"):
                cur.execute(f"SELECT count(*) FROM {table}")
        for table in ("later_table", "event_copy", "status_outbox", "card_tombstone"):
            refused(conn, f"SELECT count(*) FROM {table}")
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("role", "sql"),
    [
        # void (N7): never creates a card, never rewrites another file's copies, and on
        # ingested_file only its void columns (not the bucket/key its report is written to).
        (
            dbroles.VOID,
            "INSERT INTO card (card_id, status, status_at) VALUES ('X', 'DELIVERED', now())",
        ),
        (dbroles.VOID, "UPDATE event_copy SET phone = '+12015550123'"),
        (dbroles.VOID, "UPDATE ingested_file SET bucket = 'attacker', object_key = '../x'"),
        (dbroles.VOID, "UPDATE ingested_file SET outcome = 'rejected_file'"),
        # ingest: cannot mark a file voided, cannot rewrite an event's detail.
        (dbroles.INGEST, "UPDATE ingested_file SET voided_at = now()"),
        (dbroles.INGEST, "UPDATE ingested_file SET bucket = 'attacker'"),
        (dbroles.INGEST, "UPDATE status_outbox SET detail = '{}'"),
        (dbroles.INGEST, "UPDATE status_outbox SET card_version = 9223372036854775807"),
    ],
)
def test_narrowed_grants_refuse_what_the_code_never_does(
    roles_db: str, role: str, sql: str
) -> None:
    conn = connect_as(roles_db, role)
    try:
        refused(conn, sql)
    finally:
        conn.close()


# -- void -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "DROP TABLE card",
        "TRUNCATE card",
        "DELETE FROM ingested_file",
        "INSERT INTO card_event (card_id, status, occurred_at, partner, source_file_id, "
        "source_line) VALUES ('X', 'DELIVERED', now(), 'p', 1, 1)",
        "SELECT * FROM schema_migrations",
        "SELECT * FROM other.secret",
        "CREATE ROLE cardstatus_test_evil LOGIN",
        # 0009 lets it mark outbox rows published, and nothing more on the outbox.
        "DELETE FROM status_outbox",
        "TRUNCATE status_outbox",
        "UPDATE status_outbox SET detail = '{}'",
        "UPDATE status_outbox SET event_id = gen_random_uuid()",
    ],
)
def test_void_role_cannot_leave_its_grants(roles_db: str, sql: str) -> None:
    conn = connect_as(roles_db, dbroles.VOID)
    try:
        refused(conn, sql)
    finally:
        conn.close()


def test_void_role_can_undo_events_and_cards(roles_db: str) -> None:
    conn = connect_as(roles_db, dbroles.VOID)
    try:
        with conn.cursor() as cur:
            cur.execute("DELETE FROM card_event WHERE source_file_id = -1")
            cur.execute("DELETE FROM card WHERE card_id = 'none'")
            cur.execute("UPDATE ingested_file SET report = report WHERE id = -1")
            cur.execute("CREATE TEMP TABLE recompute (card_id text)")
        conn.rollback()
    finally:
        conn.close()


def test_void_role_can_publish_its_events(roles_db: str) -> None:
    """The void function publishes its rows after commit (migration 0009): claim them FOR
    UPDATE SKIP LOCKED and mark them published or failed, as cardstatus.events does."""
    from cardstatus.sql import events as events_sql

    owner = psycopg2.connect(roles_db)
    try:
        with owner.cursor() as cur:
            cur.execute(
                "INSERT INTO status_outbox (event_id, card_id, card_version, detail)"
                " VALUES (gen_random_uuid(), 'VOIDPUB1', 1, '{\"file_id\": -9}'),"
                " (gen_random_uuid(), 'VOIDPUB2', 1, '{\"file_id\": -9}') RETURNING id"
            )
            first, second = (r[0] for r in cur.fetchall())
        owner.commit()
        conn = connect_as(roles_db, dbroles.VOID)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    events_sql.CLAIM_RANGE,
                    {"first_id": first, "last_id": second, "after": 0, "limit": 10},
                )
                assert [r[0] for r in cur.fetchall()] == [first, second]
                cur.execute(events_sql.MARK_PUBLISHED, {"ids": [first]})
                cur.execute(events_sql.MARK_FAILED, {"ids": [second], "errors": ["bus down"]})
            conn.commit()
            refused(conn, f"DELETE FROM status_outbox WHERE id = {first}")
        finally:
            conn.close()
        with owner.cursor() as cur:
            cur.execute(
                "SELECT published_at IS NOT NULL, attempts, last_error FROM status_outbox"
                " WHERE id IN (%s, %s) ORDER BY id",
                (first, second),
            )
            assert cur.fetchall() == [(True, 1, None), (False, 1, "bus down")]
            cur.execute("DELETE FROM status_outbox WHERE id IN (%s, %s)", (first, second))
        owner.commit()
    finally:
        owner.close()


# -- migrate ----------------------------------------------------------------------------------


def test_migrate_gives_up_on_a_held_lock_instead_of_queueing(
    pg_admin_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A migration blocked by an open transaction fails after lock_timeout (and is retried)."""
    name = f"cs_lock_{uuid.uuid4().hex[:10]}"
    _admin(pg_admin_url, f'CREATE DATABASE "{name}"')
    url = _with_db(pg_admin_url, name)
    try:
        conn = psycopg2.connect(url)
        apply_migrations(conn)
        blocker = psycopg2.connect(url)
        with blocker.cursor() as cur:
            cur.execute("SELECT count(*) FROM card")  # ACCESS SHARE held until rollback
        extra = Migration(version="9999_test_lock", sql="ALTER TABLE card ADD COLUMN x int")
        monkeypatch.setattr(
            migrate, "available_migrations", lambda: [*available_migrations(), extra]
        )
        monkeypatch.setattr(migrate, "MIGRATE_LOCK_TIMEOUT_MS", 200)
        with pytest.raises(psycopg2.errors.LockNotAvailable):
            apply_migrations(conn)
        blocker.rollback()
        assert apply_migrations(conn) == ["9999_test_lock"]
        with conn.cursor() as cur:
            cur.execute("SHOW lock_timeout")
            assert cur.fetchone()[0] == "0"  # reset after migrating
        blocker.close()
        conn.close()
    finally:
        _admin(pg_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_statement_timeouts_leave_a_margin_below_the_function_timeouts() -> None:
    functions = json.loads((ROOT / "cdk.json").read_text())["context"]["cardstatus:shared"][
        "functions"
    ]
    checked = 0
    for role, (function, margin) in dbroles.FUNCTION_OF_ROLE.items():
        if function in functions:
            timeout = functions[function]["timeoutSeconds"]
            assert dbroles.statement_timeout_s(role) + margin <= timeout, role
            checked += 1
    assert checked >= 2  # ingest and api at least
    function, margin = dbroles.MIGRATE_FUNCTION
    assert (
        dbroles.MIGRATE_STATEMENT_TIMEOUT_MS / 1000 + margin
        <= (functions[function]["timeoutSeconds"])
    )
