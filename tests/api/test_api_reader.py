"""The api's read/write split (README "Database connections"): with a reader configured
(DB_READ_HOST in AWS, DATABASE_READ_URL here), lookups and ops routes read through a second
connection; the mismatch budget stays on the writer, and so do the lookup audit rows, which the
audit function appends from the api's audit lines (here through the local subscription,
connected like the api's writer).

On one real database, the two connections are two roles that can each do only their half:
the reader may SELECT (and is read-only, like a replica) but may not append to the audit
trail or count the budget; the writer may do those and may not read a card.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from api_helpers import Api, load_event
from psycopg2.extensions import make_dsn, parse_dsn

from cardstatus import config, db, dbroles
from cardstatus.config import load_settings

BUDGET_CHARGE = "lookup_budget_charge(text, boolean, integer, integer, timestamptz)"


def _run(conn: Any, *statements: str) -> None:
    with conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)
    conn.commit()


@pytest.fixture
def split_urls(db_url: str, seeded: Any) -> Iterator[tuple[str, str]]:
    """(writer URL, reader URL): the same database as two roles with one half each."""
    suffix = uuid.uuid4().hex[:8]
    reader, writer = f"cs_test_reader_{suffix}", f"cs_test_writer_{suffix}"
    _run(
        seeded,
        f"CREATE ROLE {reader} LOGIN",
        f"ALTER ROLE {reader} SET default_transaction_read_only = on",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {reader}",
        f"CREATE ROLE {writer} LOGIN",
        f"GRANT INSERT ON lookup_audit TO {writer}",
        f"GRANT EXECUTE ON FUNCTION {BUDGET_CHARGE} TO {writer}",
    )
    try:
        yield make_dsn(db_url, user=writer), make_dsn(db_url, user=reader)
    finally:
        _run(seeded, f"DROP OWNED BY {reader}, {writer}", f"DROP ROLE {reader}, {writer}")


@pytest.fixture
def split_api(
    api: Api, api_module: ModuleType, split_urls: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Api]:
    writer_url, reader_url = split_urls
    monkeypatch.setenv("DATABASE_URL", writer_url)
    monkeypatch.setenv("DATABASE_READ_URL", reader_url)
    config.reset_settings_cache()
    api_module.DB.reset_settings(None)
    yield api
    api_module.DB.reset_settings(None)  # before the roles are dropped


def _audit_rows(conn: Any) -> list[tuple[str, str]]:
    with conn.cursor() as cur:
        cur.execute("SELECT route, outcome FROM lookup_audit ORDER BY at")
        found = cur.fetchall()
    conn.commit()
    return found


def test_lookups_read_from_the_reader_and_audit_and_budget_write_on_the_writer(
    split_api: Api, api_module: ModuleType, seeded: Any, split_urls: tuple[str, str]
) -> None:
    # Every lookup is answered although the writer may not read a card ...
    assert split_api.call(load_event("get_card_status_by_card_id"))[0] == 200
    assert split_api.call(load_event("get_card_status_by_phone_several_cards"))[0] == 200
    assert split_api.call(load_event("get_card_status_by_both"))[0] == 200  # counts the budget
    assert split_api.call(load_event("get_card_status_phone_of_other_card"))[0] == 404  # mismatch
    assert split_api.call(load_event("get_card_by_id"))[0] == 200
    assert split_api.call(load_event("list_cards_by_phone"))[0] == 200
    assert split_api.call(load_event("get_card_unknown"))[0] == 404
    for ops_route in ("list_files", "list_stuck_cards", "health"):  # reads only
        assert split_api.call(load_event(ops_route))[0] == 200, ops_route
    # ... and every audit row and budget count is written although the reader may not write.
    assert _audit_rows(seeded) == [
        ("GET /get_card_status", "found"),
        ("GET /get_card_status", "found"),
        ("GET /get_card_status", "found"),
        ("GET /get_card_status", "not_found"),
        ("GET /cards/{card_id}", "found"),
        ("GET /cards", "found"),
        ("GET /cards/{card_id}", "not_found"),
    ]
    with seeded.cursor() as cur:
        cur.execute("SELECT mismatches FROM lookup_budget")
        assert cur.fetchall() == [(1,)]
    # Two connections, told apart by role and application name.
    writer = api_module.DB.get()
    reader = api_module.DB.read()
    assert writer is not reader
    with seeded.cursor() as cur:
        cur.execute(
            "SELECT pid, usename, application_name FROM pg_stat_activity WHERE pid IN (%s, %s)",
            (writer.get_backend_pid(), reader.get_backend_pid()),
        )
        sessions = {pid: (user, app) for pid, user, app in cur.fetchall()}
    writer_role, reader_role = (parse_dsn(url)["user"] for url in split_urls)
    assert sessions == {
        writer.get_backend_pid(): (writer_role, "cardstatus"),
        reader.get_backend_pid(): (reader_role, "cardstatus-read"),
    }


def test_the_roles_split_the_work_so_one_connection_cannot_answer(
    split_api: Api, api_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check above proves something: with the reader unset, the writer alone answers
    nothing (it may not read a card), and the reader alone could not write an audit row."""
    monkeypatch.delenv("DATABASE_READ_URL")
    config.reset_settings_cache()
    api_module.DB.reset_settings(None)
    assert split_api.call(load_event("get_card_by_id"))[0] == 500
    assert api_module.DB.read() is api_module.DB.get()  # one connection without a reader


def test_a_failure_drops_both_connections(
    split_api: Api, api_module: ModuleType, seeded: Any
) -> None:
    assert split_api.call(load_event("get_card_by_id"))[0] == 200
    writer, reader = api_module.DB.get(), api_module.DB.read()
    with seeded.cursor() as cur:  # the reader's backend goes away between two lookups
        # (with a timeout: returns once the backend is gone, not merely signalled)
        cur.execute("SELECT pg_terminate_backend(%s, 10000)", (reader.get_backend_pid(),))
    seeded.commit()
    assert split_api.call(load_event("get_card_by_id"))[0] == 503
    assert writer.closed and reader.closed
    assert split_api.call(load_event("get_card_by_id"))[0] == 200  # both reconnect


def test_without_a_reader_everything_uses_one_connection(api: Api, api_module: ModuleType) -> None:
    assert not load_settings().has_reader
    assert api_module.DB.read() is api_module.DB.get()


def test_the_reader_gets_its_own_iam_token_for_its_host(monkeypatch: pytest.MonkeyPatch) -> None:
    writer_host = "cardstatus-prod-proxy.proxy-abc123.me-central-1.rds.amazonaws.com"
    read_host = "cardstatus-prod-api-read-only.endpoint.proxy-abc123.me-central-1.rds.amazonaws.com"
    for key in ("DATABASE_URL", "DATABASE_READ_URL", "DB_SECRET_ARN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("DB_HOST", writer_host)
    monkeypatch.setenv("DB_READ_HOST", read_host)
    monkeypatch.setenv("DB_USER", dbroles.API)
    monkeypatch.setenv("DB_IAM_AUTH", "true")
    monkeypatch.setenv("AWS_REGION", "me-central-1")
    cfg = load_settings()
    writer = db.connection_kwargs(cfg)
    reader = db.connection_kwargs(cfg, reader=True)
    for kwargs, host in ((writer, writer_host), (reader, read_host)):
        assert kwargs["host"] == host and kwargs["user"] == dbroles.API
        assert kwargs["sslmode"] == "verify-full"
        token = urlsplit("https://" + kwargs["password"])
        assert token.hostname == host  # RDS checks the host the token was signed for
        assert parse_qs(token.query)["DBUser"] == [dbroles.API]
    assert reader["application_name"] == "cardstatus-read"
