"""Every privilege of every cardstatus role, compared with tests/db_privileges.json (issue 18
N7, migration 0011).

A database migrated from scratch is asked for everything each role (dbroles.ALL) and PUBLIC
may do: table privileges (information_schema.role_table_grants), column privileges
(column_privileges), routine privileges (routine_privileges), sequence privileges
(usage_privileges), database privileges (CONNECT/TEMPORARY), schema privileges, role
memberships and role settings, and the default ACLs (pg_default_acl). A migration that grants
something new must add it to the expected table: the failure prints the exact lines to add or
remove. Regenerate the whole file (after reviewing the diff) with:

    CARDSTATUS_WRITE_PRIVILEGES=1 python -m pytest tests/test_db_privileges.py
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extensions
import pytest

from cardstatus import dbroles
from cardstatus.migrate import apply_migrations

EXPECTED = Path(__file__).with_name("db_privileges.json")
GRANTEES = (*sorted(dbroles.ALL), "PUBLIC")

_TABLES = """
SELECT grantee, table_name, privilege_type
FROM information_schema.role_table_grants
WHERE table_schema = 'public' AND grantee = ANY(%(grantees)s)
"""
# Column grants that are not implied by a table grant of the same privilege.
_COLUMNS = """
SELECT c.grantee, c.table_name, c.column_name, c.privilege_type
FROM information_schema.column_privileges c
WHERE c.table_schema = 'public' AND c.grantee = ANY(%(grantees)s)
  AND NOT EXISTS (
      SELECT 1 FROM information_schema.role_table_grants t
      WHERE t.table_schema = c.table_schema AND t.table_name = c.table_name
        AND t.grantee = c.grantee AND t.privilege_type = c.privilege_type)
"""
_ROUTINES = """
SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,
       a.privilege_type
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
CROSS JOIN LATERAL aclexplode(COALESCE(p.proacl, acldefault('f', p.proowner))) a
WHERE n.nspname = 'public'
"""
_SEQUENCES = """
SELECT c.relname,
       CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,
       a.privilege_type
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL aclexplode(COALESCE(c.relacl, acldefault('S', c.relowner))) a
WHERE n.nspname = 'public' AND c.relkind = 'S'
"""
_DATABASE = """
SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,
       a.privilege_type
FROM pg_database d
CROSS JOIN LATERAL aclexplode(COALESCE(d.datacl, acldefault('d', d.datdba))) a
WHERE d.datname = current_database()
"""
_SCHEMAS = """
SELECT n.nspname,
       CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,
       a.privilege_type
FROM pg_namespace n
CROSS JOIN LATERAL aclexplode(COALESCE(n.nspacl, acldefault('n', n.nspowner))) a
WHERE n.nspname = 'public'
"""
_DEFAULT_ACLS = """
SELECT COALESCE(n.nspname, '*'), d.defaclobjtype,
       CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END,
       a.privilege_type
FROM pg_default_acl d
LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
CROSS JOIN LATERAL aclexplode(d.defaclacl) a
"""
_MEMBERSHIPS = """
SELECT m.rolname, r.rolname
FROM pg_auth_members am
JOIN pg_roles r ON r.oid = am.roleid
JOIN pg_roles m ON m.oid = am.member
WHERE m.rolname = ANY(%(grantees)s)
"""
_ATTRIBUTES = """
SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication,
       rolbypassrls, rolinherit
FROM pg_roles WHERE rolname = ANY(%(grantees)s)
"""
_SETTINGS = """
SELECT r.rolname, unnest(s.setconfig)
FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole
WHERE r.rolname = ANY(%(grantees)s)
"""


def privilege_lines(conn: Any) -> list[str]:
    """One line per privilege of a cardstatus role (or PUBLIC), sorted."""
    params = {"grantees": list(GRANTEES)}
    lines: set[str] = set()
    with conn.cursor() as cur:
        cur.execute(_TABLES, params)
        lines |= {f"table {t} {g} {p}" for g, t, p in cur.fetchall()}
        cur.execute(_COLUMNS, params)
        lines |= {f"column {t}.{c} {g} {p}" for g, t, c, p in cur.fetchall()}
        for kind, query in (("routine", _ROUTINES), ("sequence", _SEQUENCES)):
            cur.execute(query)
            lines |= {f"{kind} {o} {g} {p}" for o, g, p in cur.fetchall() if g in GRANTEES}
        cur.execute(_DATABASE)
        lines |= {f"database {g} {p}" for g, p in cur.fetchall() if g in GRANTEES}
        cur.execute(_SCHEMAS)
        lines |= {f"schema {s} {g} {p}" for s, g, p in cur.fetchall() if g in GRANTEES}
        cur.execute(_DEFAULT_ACLS)
        lines |= {f"default {s} {k} {g} {p}" for s, k, g, p in cur.fetchall() if g in GRANTEES}
        cur.execute(_MEMBERSHIPS, params)
        lines |= {f"member {m} of {r}" for m, r in cur.fetchall() if r != "rds_iam"}
        cur.execute(_ATTRIBUTES, params)
        names = ("super", "createrole", "createdb", "login", "replication", "bypassrls")
        for name, *flags, inherit in cur.fetchall():
            granted = [n for n, on in zip(names, flags, strict=True) if on]
            lines.add(f"role {name} {','.join(granted) or '-'}")
        cur.execute(_SETTINGS, params)
        lines |= {f"setting {r} {s}" for r, s in cur.fetchall()}
    return sorted(lines)


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
def fresh_db(pg_admin_url: str) -> Iterator[str]:
    """Migrated from scratch: database ACLs are not copied by CREATE DATABASE ... TEMPLATE."""
    name = f"cs_privs_{uuid.uuid4().hex[:10]}"
    _admin(pg_admin_url, f'CREATE DATABASE "{name}"')
    url = _with_db(pg_admin_url, name)
    conn = psycopg2.connect(url)
    try:
        apply_migrations(conn)
    finally:
        conn.close()
    yield url
    _admin(pg_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def diff_message(expected: list[str], actual: list[str]) -> str:
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    out = ["the roles' privileges differ from tests/db_privileges.json:"]
    out += [f"  + {line}   (granted, not expected: add it, or revoke it)" for line in extra]
    out += [f"  - {line}   (expected, not granted: remove it, or grant it)" for line in missing]
    return "\n".join(out)


def test_every_privilege_of_every_role_is_the_expected_one(fresh_db: str) -> None:
    conn = psycopg2.connect(fresh_db)
    try:
        actual = privilege_lines(conn)
    finally:
        conn.close()
    if os.environ.get("CARDSTATUS_WRITE_PRIVILEGES"):
        EXPECTED.write_text(json.dumps(actual, indent=1) + "\n", encoding="utf-8")
    expected = json.loads(EXPECTED.read_text(encoding="utf-8"))
    assert actual == expected, diff_message(expected, actual)


def test_the_expected_table_holds_what_issue_18_asks(fresh_db: str) -> None:
    """The narrowing itself (the inventory could be regenerated blindly; this cannot)."""
    expected = set(json.loads(EXPECTED.read_text(encoding="utf-8")))
    api_tables = {
        line.split()[1]
        for line in expected
        if line.startswith("table ") and line.endswith(" cardstatus_api SELECT")
    }
    # Not the per-copy phones, the outbox, tombstones, the budget counts or the migrations:
    # only what its queries read (each later table's migration grants that explicitly).
    assert {"card", "card_event", "ingested_file", "rejected_row"} <= api_tables
    assert not api_tables & {
        "event_copy",
        "status_outbox",
        "card_tombstone",
        "lookup_budget",
        "schema_migrations",
    }
    assert not any(line.startswith("default ") and "cardstatus_api" in line for line in expected)
    assert "table card cardstatus_void INSERT" not in expected
    assert "table event_copy cardstatus_void UPDATE" not in expected
    assert "table ingested_file cardstatus_void UPDATE" not in expected
    assert "table ingested_file cardstatus_ingest UPDATE" not in expected
    assert "table status_outbox cardstatus_ingest UPDATE" not in expected
    assert "column ingested_file.voided_at cardstatus_void UPDATE" in expected
    assert "column ingested_file.voided_at cardstatus_ingest UPDATE" not in expected
    # The api role writes nothing but its append-only lookup audit (0019).
    assert {
        line
        for line in expected
        if " cardstatus_api " in line
        and line.split()[-1] in ("INSERT", "UPDATE", "DELETE", "TRUNCATE")
    } <= {"table lookup_audit cardstatus_api INSERT"}
    routines = {line for line in expected if line.startswith("routine ")}
    for budget in ("lookup_budget_spend", "lookup_budget_charge"):
        assert {line.split()[-2] for line in routines if budget in line} == {"cardstatus_api"}
    # ... and (unused since the audit is a log line) the card ids of one audit row (0026)
    assert {line.split()[-2] for line in routines if "lookup_audit_answered" in line} == {
        "cardstatus_api"
    }


def test_the_diff_names_each_line() -> None:
    message = diff_message(["a", "b"], ["b", "c"])
    assert "  + c " in message and "  - a " in message and "b " not in message.split("\n", 1)[1]
