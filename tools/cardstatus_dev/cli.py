"""`cardstatus` command line: migrate, ingest, status, events, void, serve, local, openapi."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import signal
import sys
import time
from types import FrameType
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _use_database(args: argparse.Namespace) -> str:
    """--database-url, else DATABASE_URL, else the embedded PostgreSQL in .local/ (migrated)."""
    from cardstatus_dev.database import use_database

    return use_database(getattr(args, "database_url", None))


def cmd_migrate(args: argparse.Namespace) -> int:
    from cardstatus.db import connect
    from cardstatus.migrate import apply_migrations

    _use_database(args)
    conn = connect()
    try:
        applied = apply_migrations(conn)
    finally:
        conn.close()
    print(json.dumps({"applied": applied}))
    return EXIT_OK


class _Progress:
    """A one-line progress display on stderr when it is a terminal and the file is large."""

    def __init__(self, name: str, size: int) -> None:
        self.name = name
        self.enabled = sys.stderr.isatty() and size > 5 * 1024 * 1024
        self.started = time.monotonic()

    def __call__(self, rows: int) -> None:
        if self.enabled:
            rate = rows / max(time.monotonic() - self.started, 1e-6)
            sys.stderr.write(f"\r{self.name}: {rows:,} rows ({rate:,.0f} rows/s)")
            sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def cmd_ingest(args: argparse.Namespace) -> int:
    from cardstatus.config import settings
    from cardstatus.db import connect
    from cardstatus.ingest import ingest_path
    from cardstatus.migrate import apply_migrations

    missing = [p for p in args.paths if not os.path.isfile(p)]
    if missing:
        print(f"cardstatus ingest: no such file: {', '.join(missing)}", file=sys.stderr)
        return EXIT_USAGE
    _use_database(args)
    conn = connect()
    try:
        apply_migrations(conn)
        worst = EXIT_OK
        for path in args.paths:
            progress = _Progress(os.path.basename(path), os.path.getsize(path))
            report = ingest_path(conn, path, settings(), partner=args.partner, progress=progress)
            progress.done()
            print(json.dumps(report, default=str), flush=True)
            logging.getLogger("cardstatus").info(
                "%s: %s %s", path, report["outcome"], report.get("counts")
            )
            if report["outcome"] == "rejected_file":
                worst = EXIT_FAILED
        return worst
    finally:
        conn.close()


def cmd_status(args: argparse.Namespace) -> int:
    from cardstatus.cards import find_card_status
    from cardstatus.db import connect
    from cardstatus.errors import InvalidParameter, RequestError, error_body

    if not args.card_id and not args.phone:
        print(json.dumps(error_body("missing_parameter", "give --card-id or --phone (or both)")))
        return EXIT_USAGE
    _use_database(args)
    conn = connect()
    try:
        result: Any = find_card_status(conn, args.card_id, args.phone)
    except RequestError as exc:
        print(json.dumps(error_body(exc.code, exc.message)))
        return EXIT_USAGE if isinstance(exc, InvalidParameter) else EXIT_FAILED
    finally:
        conn.close()
    print(json.dumps(result, indent=2, default=str))
    return EXIT_OK


def cmd_events(args: argparse.Namespace) -> int:
    """The status-change outbox as JSON Lines, oldest first (README "Events")."""
    from datetime import datetime

    from cardstatus.db import connect
    from cardstatus.errors import error_body
    from cardstatus.events import list_outbox

    since = None
    if args.since:
        try:
            since = datetime.fromisoformat(args.since)
        except ValueError:
            message = f"--since must be an ISO 8601 time, got {args.since!r}"
            print(json.dumps(error_body("invalid_parameter", message)))
            return EXIT_USAGE
        if since.tzinfo is None:
            message = "--since needs a UTC offset or Z (e.g. 2026-12-01T08:00:00Z)"
            print(json.dumps(error_body("invalid_parameter", message)))
            return EXIT_USAGE
    _use_database(args)
    conn = connect()
    try:
        for line in list_outbox(conn, card_id=args.card_id, since=since, pending=args.pending):
            sys.stdout.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:  # `cardstatus events | head`
        pass
    finally:
        conn.close()
    return EXIT_OK


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (e.g. a container without a passwd entry)
        return "unknown"


def cmd_void(args: argparse.Namespace) -> int:
    """Void one applied file (README "Voiding a file"): one JSON object, exit 0; an unknown id
    or a file that was never applied: a JSON error, exit 1, nothing changes."""
    from cardstatus.db import connect
    from cardstatus.errors import RequestError, error_body
    from cardstatus.migrate import apply_migrations
    from cardstatus.void import void_retrying

    _use_database(args)
    conn = connect()
    try:
        apply_migrations(conn)
        result = void_retrying(conn, args.file_id, args.reason, args.actor or _os_user())
    except RequestError as exc:
        print(json.dumps(error_body(exc.code, exc.message)))
        return EXIT_FAILED
    finally:
        conn.close()
    print(json.dumps(result.to_json()), flush=True)
    return EXIT_OK


def _stop_on_signals() -> None:
    """Long-running commands stop cleanly (embedded PostgreSQL included) on Ctrl-C or SIGTERM,
    also when started in the background, where the shell hands them SIGINT ignored."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def cmd_serve(args: argparse.Namespace) -> int:
    from cardstatus_dev.serve import run_server

    _stop_on_signals()
    _use_database(args)
    run_server(args.host, args.port)
    return EXIT_OK


def cmd_local(args: argparse.Namespace) -> int:
    from cardstatus_dev.local import run_local

    _stop_on_signals()
    return run_local(args)


def cmd_openapi(args: argparse.Namespace) -> int:
    from cardstatus_dev.openapi import openapi_json

    sys.stdout.write(openapi_json())
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cardstatus", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = parser.add_subparsers(dest="command", required=True)
    db_help = "PostgreSQL URL (default: $DATABASE_URL, else an embedded server in .local/)"

    p = sub.add_parser("migrate", help="apply database migrations")
    p.add_argument("--database-url", help=db_help)
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("ingest", help="ingest local partner CSV files; one JSON report per line")
    p.add_argument("--partner", help="partner name for settings (default: 'default')")
    p.add_argument("--database-url", help=db_help)
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("status", help="print a card's status as JSON")
    p.add_argument("--card-id")
    p.add_argument("--phone")
    p.add_argument("--database-url", help=db_help)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser(
        "events", help="print status-change events (the outbox) as JSON Lines, oldest first"
    )
    p.add_argument("--card-id", help="only this card's events")
    p.add_argument("--since", metavar="ISO", help="only events emitted at or after this time")
    p.add_argument("--pending", action="store_true", help="only events not yet published")
    p.add_argument("--database-url", help=db_help)
    p.set_defaults(func=cmd_events)

    p = sub.add_parser(
        "void",
        help="void an applied file: the state becomes what it would be without it (JSON)",
    )
    p.add_argument("file_id", type=int, metavar="FILE_ID", help="the file's id (its report)")
    p.add_argument("--reason", required=True, help="why (kept with the file and in its report)")
    p.add_argument("--actor", help="who voids it (default: the OS user name)")
    p.add_argument("--database-url", help=db_help)
    p.set_defaults(func=cmd_void)

    p = sub.add_parser("serve", help="serve the API handler on a local HTTP port")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3000)
    p.add_argument("--database-url", help=db_help)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("local", help="run the whole service locally (PostgreSQL, moto, API)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3000)
    p.add_argument("--s3-port", type=int, default=5000)
    p.add_argument("--database-url", help=db_help)
    p.add_argument("--no-samples", action="store_true", help="do not upload the sample files")
    p.set_defaults(func=cmd_local)

    p = sub.add_parser("openapi", help="print the API's OpenAPI document")
    p.set_defaults(func=cmd_openapi)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code not in (0, None) else EXIT_OK
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
