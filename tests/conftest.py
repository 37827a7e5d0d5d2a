"""Shared fixtures: a real PostgreSQL (embedded unless DATABASE_URL is set) and moto AWS."""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from cardstatus import config
from cardstatus.migrate import apply_migrations
from cardstatus_dev.database import (
    drop_database,
    ensure_database,
    start_embedded_server,
    with_database,
)
from fixture_paths import EVENTS, ROOT, SHARED_SAMPLES  # noqa: F401  (re-exported)

# Tests must never pick up a developer's AWS credentials or region.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
os.environ.pop("AWS_PROFILE", None)
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "cardstatus-test")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "cardstatus")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
# A fixed phone hash key for every test (README "Privacy"); tests of rotation set their own.
TEST_PHONE_KEY = '{"current": {"version": 1, "key": "test-phone-key-0123456789abcdefghijklmnop"}}'
os.environ["PHONE_KEY"] = TEST_PHONE_KEY
os.environ.pop("PHONE_KEY_SECRET_ARN", None)
os.environ.pop("PHONE_KEY_FILE", None)
# The partners the tests ingest for are configured (with the defaults), so that their reports
# do not carry the "partner is not configured" warning (README "Partner files and reports");
# tests of that warning use another partner or set PARTNER_CONFIG themselves.
os.environ.setdefault(
    "PARTNER_CONFIG",
    json.dumps(
        {
            key: {}
            for key in (
                "acme",
                "speedy",
                "default",
                "a",
                "other",
                "p",
                "quark",
                "zeta",
                "delivered",
            )
        }
    ),
)


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """URL of a PostgreSQL server we may create databases on."""
    external = os.environ.get("DATABASE_URL")
    if external:
        yield external
        return
    tmp = Path(tempfile.mkdtemp(prefix="cardstatus-pg-"))
    server = start_embedded_server(tmp / "pgdata", cleanup_mode="delete")
    yield server.get_uri()
    server.cleanup()


@pytest.fixture(scope="session")
def pg_template(pg_admin_url: str) -> Iterator[str]:
    """A migrated template database; each test gets a fresh copy of it."""
    name = f"cardstatus_tmpl_{os.getpid()}"
    drop_database(pg_admin_url, name)
    url = ensure_database(pg_admin_url, name)
    conn = psycopg2.connect(url)
    try:
        apply_migrations(conn)
    finally:
        conn.close()
    yield name
    drop_database(pg_admin_url, name)


@pytest.fixture
def db_url(pg_admin_url: str, pg_template: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh, migrated database for one test; DATABASE_URL points at it."""
    name = f"cs_test_{uuid.uuid4().hex[:12]}"
    url = ensure_database(pg_admin_url, name, template=pg_template)
    monkeypatch.setenv("DATABASE_URL", url)
    config.reset_settings_cache()
    yield url
    config.reset_settings_cache()
    drop_database(pg_admin_url, name)


@pytest.fixture
def db(db_url: str) -> Iterator[psycopg2.extensions.connection]:
    """A connection to the test's database."""
    conn = psycopg2.connect(db_url)
    yield conn
    conn.close()


@pytest.fixture
def admin_url_for(pg_admin_url: str):  # type: ignore[no-untyped-def]
    return lambda dbname: with_database(pg_admin_url, dbname)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-reliability",
        action="store_true",
        help="also run the long reliability runs (marked `reliability`; `make reliability`)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        # Every test that reaches PostgreSQL does so through pg_admin_url (directly or via
        # db_url, db, api, ...): mark it, so `make unit` (-m "not db") needs no database.
        if "pg_admin_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)
    if config.getoption("--run-reliability"):
        return
    skip = pytest.mark.skip(reason="long reliability run: use `make reliability`")
    for item in items:
        # The marker, not item.keywords: those also hold folder names (tests/reliability/).
        if item.get_closest_marker("reliability"):
            item.add_marker(skip)


@pytest.fixture
def ingest_app(s3: Any) -> Iterator[Any]:
    """functions/ingest/app.py with its connection and S3 client pointed at the test's.

    `s3` is each suite's own moto client fixture (its bucket differs per suite)."""
    from functions.ingest import app

    app.DB.reset_settings(None)
    app._s3 = s3
    yield app
    app.DB.discard()
    app._s3 = None
