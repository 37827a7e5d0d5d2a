"""PostgreSQL connections: built from settings, created lazily, reused, re-established when dropped.

Three ways to reach the database, chosen by which settings are present:
- DATABASE_URL (local runs, tests, CLI);
- DB_SECRET_ARN: Secrets Manager secret with host/port/username/password/dbname (migrate, as
  the schema owner; the master secret is otherwise for rotation and break-glass only);
- DB_IAM_AUTH=true with DB_HOST/DB_USER: a short-lived IAM token (signed locally, no API call)
  for the function's own login role (cardstatus/dbroles.py): ingest directly to the instance,
  api through RDS Proxy. Role-level timeouts apply (no session SET: it would pin the proxy).
The api may also have a reader (DB_READ_HOST, or DATABASE_READ_URL locally): a second
connection, made the same way to that host, for its reads (`ReadWriteConnections`).
Every AWS connection uses sslmode=verify-full with the RDS CA bundle (DB_SSLROOTCERT).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from typing import Any

import psycopg2
import psycopg2.extensions
from psycopg2.extensions import connection as Connection

from cardstatus.config import Settings, settings
from cardstatus.errors import DatabaseUnavailable

logger = logging.getLogger(__name__)

# Errors that mean "the database is not reachable right now": the API answers 503 with
# Retry-After, the ingest handler leaves the message for a retry. Both drop the connection.
TRANSIENT_DB_ERRORS: tuple[type[Exception], ...] = (
    DatabaseUnavailable,
    psycopg2.OperationalError,
    psycopg2.InterfaceError,
)

__all__ = [
    "TRANSIENT_DB_ERRORS",
    "DatabaseUnavailable",
    "LazyConnection",
    "ReadWriteConnections",
    "aws_client",
    "aws_session",
    "connect",
    "roll_back_open_transaction",
]


_secret_cache: dict[str, dict[str, Any]] = {}

# One botocore session per process: a session caches what it loads (service models,
# endpoints, the credential chain), so a new one for every client re-read the RDS model at
# each IAM token (~70 ms). Keyed by the AWS_* environment: when that changes (credentials
# rotated in the environment, a test's monkeypatch, a SnapStart restore with a new container
# credentials token) the next client gets a new session that resolves them afresh.
# Credentials that expire (container, assume-role, instance metadata) are refreshable
# objects that renew themselves in a kept session.
_session_lock = threading.Lock()
_session: Any = None
_session_env: tuple[tuple[str, str], ...] = ()


def _aws_environment() -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_")))


def aws_session() -> Any:
    """The process's botocore session (made on first use, remade when AWS_* changed)."""
    global _session, _session_env
    import botocore.session

    env = _aws_environment()
    with _session_lock:
        if _session is None or env != _session_env:
            _session, _session_env = botocore.session.get_session(), env
        return _session


def aws_client(service: str, region: str | None = None, config: Any = None) -> Any:
    """A botocore client, without boto3: importing boto3 (and s3transfer) costs ~250 ms of cold
    start that nothing here needs. Region and endpoint come from the usual AWS_* variables.
    Made from the process's session (aws_session); botocore does not promise that one session
    creates clients safely from several threads, so creation is serialised (the client, once
    made, is thread-safe)."""
    session = aws_session()
    with _session_lock:
        return session.create_client(service, region_name=region, config=config)


def _read_secret(arn: str, region: str | None, refresh: bool = False) -> dict[str, Any]:
    if refresh or arn not in _secret_cache:
        client = aws_client("secretsmanager", region)
        _secret_cache[arn] = json.loads(client.get_secret_value(SecretId=arn)["SecretString"])
    return _secret_cache[arn]


def _iam_token(cfg: Settings, host: str) -> str:
    """A token for `host`: RDS checks the host it was signed for, so the reader gets its own."""
    client = aws_client("rds", cfg.aws_region)
    return str(
        client.generate_db_auth_token(
            DBHostname=host,
            Port=cfg.db_port,
            DBUsername=cfg.db_user or "",
            Region=cfg.aws_region,
        )
    )


def connection_kwargs(
    cfg: Settings, refresh_secret: bool = False, *, reader: bool = False
) -> dict[str, Any]:
    """psycopg2.connect() keyword arguments for the configured database; reader: for the
    reader (DATABASE_READ_URL, else the writer's settings with DB_READ_HOST as the host)."""
    common: dict[str, Any] = {
        "connect_timeout": cfg.db_connect_timeout_s,
        "application_name": "cardstatus-read" if reader else "cardstatus",
    }
    if reader and cfg.database_read_url:
        return {"dsn": cfg.database_read_url, **common}
    read_host = cfg.db_read_host if reader else None
    if cfg.database_url:
        return {"dsn": cfg.database_url, **common, **({"host": read_host} if read_host else {})}
    tls: dict[str, Any] = {"sslmode": "verify-full"}
    if cfg.db_sslrootcert:
        tls["sslrootcert"] = cfg.db_sslrootcert
    if cfg.db_secret_arn:
        secret = _read_secret(cfg.db_secret_arn, cfg.aws_region, refresh=refresh_secret)
        return {
            "host": read_host or cfg.db_host or secret["host"],
            "port": int(secret.get("port", cfg.db_port)),
            "dbname": secret.get("dbname", cfg.db_name),
            "user": secret["username"],
            "password": secret["password"],
            **tls,
            **common,
        }
    if cfg.db_iam_auth and cfg.db_host and cfg.db_user:
        host = read_host or cfg.db_host
        return {
            "host": host,
            "port": cfg.db_port,
            "dbname": cfg.db_name,
            "user": cfg.db_user,
            "password": _iam_token(cfg, host),
            **tls,
            **common,
        }
    raise DatabaseUnavailable(
        "no database configured: set DATABASE_URL, DB_SECRET_ARN, "
        "or DB_IAM_AUTH with DB_HOST/DB_USER"
    )


def connect(cfg: Settings | None = None, *, reader: bool = False) -> Connection:
    """Open a new connection (to the reader: see connection_kwargs); a password rejected after
    rotation re-reads the secret once."""
    cfg = cfg or settings()
    try:
        try:
            conn = psycopg2.connect(**connection_kwargs(cfg, reader=reader))
        except psycopg2.OperationalError as exc:
            if cfg.db_secret_arn and "password authentication failed" in str(exc):
                logger.warning("database password rejected; re-reading the secret once")
                conn = psycopg2.connect(
                    **connection_kwargs(cfg, refresh_secret=True, reader=reader)
                )
            else:
                raise
    except psycopg2.OperationalError as exc:
        raise DatabaseUnavailable(_describe(exc)) from exc
    if cfg.db_statement_timeout_ms and not cfg.db_iam_auth:
        # Not through RDS Proxy (a session SET would pin the proxied connection).
        with conn.cursor() as cur:
            cur.execute("SET statement_timeout = %s", (cfg.db_statement_timeout_ms,))
        conn.commit()
    return conn


def roll_back_open_transaction(conn: Connection) -> None:
    """End the transaction a failed query left open: a query that began its own (`BEGIN READ
    WRITE; ...` on an autocommit connection, cardstatus.lookup_budget and cardstatus.audit)
    and failed before its COMMIT, so that the connection can serve the next request. Nothing
    to do on an idle or closed connection; a broken one cannot roll back and is left to its
    owner, which raises the error that broke it."""
    if conn.closed or conn.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_IDLE:
        return
    with contextlib.suppress(psycopg2.Error), conn.cursor() as cur:
        cur.execute("ROLLBACK")


def _describe(exc: BaseException) -> str:
    """First line of a driver error, without connection parameters."""
    text = str(exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__


def is_usable(conn: Connection | None) -> bool:
    return conn is not None and conn.closed == 0


class LazyConnection:
    """One connection per process, opened on first use and replaced once it is found broken.

    Lambda reuses the module-level instance across invocations of a warm container.
    """

    def __init__(self, cfg: Settings | None = None, *, reader: bool = False) -> None:
        self._cfg = cfg
        self._reader = reader
        self._conn: Connection | None = None
        self._lock = threading.Lock()

    def get(self) -> Connection:
        with self._lock:
            if not is_usable(self._conn):
                self._conn = connect(self._cfg, reader=self._reader)
            assert self._conn is not None
            return self._conn

    def discard(self) -> None:
        """Close and forget the connection (after an OperationalError); get() reconnects."""
        with self._lock:
            if self._conn is not None:
                with contextlib.suppress(psycopg2.Error):
                    self._conn.close()
            self._conn = None

    def reset_settings(self, cfg: Settings | None) -> None:
        self._cfg = cfg
        self.discard()


class ReadWriteConnections(LazyConnection):
    """The api's connections (README "Database connections"): this one, the writer (`get()`),
    for its writes - the lookup audit rows and the mismatch budget; and, when a reader is
    configured (DB_READ_HOST or DATABASE_READ_URL), a second lazy connection to it (`read()`)
    for every read. Without a reader `read()` is `get()`: one connection, as before.

    `discard()` drops both (an error handler cannot tell which one failed; both reconnect on
    next use), and so do `reset_settings()` and the SnapStart hooks that call `discard()`.
    """

    def __init__(self, cfg: Settings | None = None) -> None:
        super().__init__(cfg)
        self._read = LazyConnection(cfg, reader=True)

    def has_reader(self) -> bool:
        return (self._cfg or settings()).has_reader

    def read(self) -> Connection:
        if self.has_reader():
            return self._read.get()
        return self.get()

    def discard(self) -> None:
        super().discard()
        self._read.discard()

    def reset_settings(self, cfg: Settings | None) -> None:
        self._read.reset_settings(cfg)
        super().reset_settings(cfg)
