"""`cardstatus` command line: migrate, ingest, status, files, file, stuck, rejects, file-cards,
partners, events, void, audit, serve, local, console, smoke, openapi, phone-key."""

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

from cardstatus_dev import privacy_cmd
from cardstatus_dev.partners_cli import add_partners_parser
from cardstatus_dev.smoke import add_arguments as add_smoke_arguments

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# The --database-url help of every command that reads the database (build_parser).
db_help = "PostgreSQL URL (default: $DATABASE_URL, else an embedded server in .local/)"


def _use_database(args: argparse.Namespace) -> str:
    """--database-url, else DATABASE_URL, else the embedded PostgreSQL in .local/ (migrated)."""
    from cardstatus_dev.database import use_database

    return use_database(getattr(args, "database_url", None))


def cmd_migrate(args: argparse.Namespace) -> int:
    from cardstatus.db import connect
    from cardstatus.migrate import apply_migrations
    from cardstatus.phonebackfill import backfill_phones
    from cardstatus.statuspartner import backfill_status_partner

    _use_database(args)
    conn = connect()
    try:
        applied = apply_migrations(conn)
        hashed = backfill_phones(conn)  # phones stored in full before 0013 (README "Privacy")
        partners = backfill_status_partner(conn)  # cards that predate 0024
    finally:
        conn.close()
    print(json.dumps({"applied": applied, "phones_hashed": hashed, "status_partner": partners}))
    return EXIT_OK


def cmd_phone_key(args: argparse.Namespace) -> int:
    from cardstatus.db import connect
    from cardstatus.phonehash import PhoneKeyError
    from cardstatus_dev import phonekey

    if args.action == "retire" and args.version is None:
        print(json.dumps({"error": {"code": "missing_parameter", "message": "retire VERSION"}}))
        return EXIT_USAGE
    conn = None
    if args.action in ("status", "retire", "backfill"):  # rotate/promote need no database
        _use_database(args)
        conn = connect()
    else:
        from cardstatus_dev.database import cardstatus_home

        phonekey.use_phone_key(cardstatus_home())
    try:
        result = phonekey.run(args, conn)
    except PhoneKeyError as exc:
        print(json.dumps({"error": {"code": "phone_key", "message": str(exc)}}))
        return EXIT_FAILED
    finally:
        if conn is not None:
            conn.close()
    print(json.dumps(result, indent=2))
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
            report = ingest_path(
                conn,
                path,
                settings(),
                partner=args.partner,
                progress=progress,
                progress_conn=connect,
            )
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
    from cardstatus_dev.ops_cli import parse_since_option

    since: datetime | None = None
    try:  # a date or a time, UTC without an offset: the same rule as `files --since`
        since = parse_since_option(args.since)
    except ValueError:
        message = f"--since must be an ISO 8601 date or time, got {args.since!r}"
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

    if args.preview:  # what the void would do, nothing changed
        from cardstatus_dev.ops_cli import cmd_void_preview

        return cmd_void_preview(args)
    if not args.reason:
        print(json.dumps(error_body("missing_parameter", "--reason is required")))
        return EXIT_USAGE
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


def _lookup(args: argparse.Namespace, run: Any) -> int:
    """Run one read against the database with the status command's exit codes: 0 found,
    1 not found (error JSON on stdout), 2 invalid input (error JSON on stdout)."""
    from cardstatus.db import connect
    from cardstatus.errors import InvalidParameter, RequestError, error_body

    _use_database(args)
    conn = connect()
    try:
        return int(run(conn))
    except RequestError as exc:
        print(json.dumps(error_body(exc.code, exc.message)))
        return EXIT_USAGE if isinstance(exc, InvalidParameter) else EXIT_FAILED
    finally:
        conn.close()


def _limit_error(args: argparse.Namespace) -> int:
    """EXIT_USAGE (with the error JSON) when --limit is below 1, else 0."""
    from cardstatus.errors import error_body

    if args.limit is not None and args.limit < 1:
        print(json.dumps(error_body("invalid_parameter", "--limit must be 1 or more")))
        return EXIT_USAGE
    return EXIT_OK


def cmd_files(args: argparse.Namespace) -> int:
    from cardstatus import ops
    from cardstatus_dev.ops_cli import output_format, print_pages

    def run(conn: Any) -> int:
        def fetch(cursor: str | None, limit: int) -> dict[str, Any]:
            return ops.list_files(
                conn, args.partner, args.outcome, args.since, limit, cursor, args.has_rejects
            )

        return print_pages(fetch, "files", args.limit, output_format(args))

    return _limit_error(args) or _lookup(args, run)


def cmd_file(args: argparse.Namespace) -> int:
    from cardstatus import ops

    def run(conn: Any) -> int:
        print(json.dumps(ops.file_report(conn, args.file_id), indent=2, ensure_ascii=False))
        return EXIT_OK

    return _lookup(args, run)


def cmd_stuck(args: argparse.Namespace) -> int:
    from cardstatus import ops
    from cardstatus_dev.ops_cli import output_format, print_pages

    def run(conn: Any) -> int:
        def fetch(cursor: str | None, limit: int) -> dict[str, Any]:
            return ops.stuck_cards(
                conn, args.status, args.older_than_hours, args.partner, cursor, limit
            )

        return print_pages(fetch, "cards", args.limit, output_format(args))

    return _limit_error(args) or _lookup(args, run)


def cmd_partners(args: argparse.Namespace) -> int:
    from cardstatus_dev.partners_cli import run_partners

    return _lookup(
        args, lambda conn: run_partners(conn, args.at, args.partner, args.table, sys.stdout)
    )


def _stop_on_signals() -> None:
    """Long-running commands stop cleanly (embedded PostgreSQL included) on Ctrl-C, SIGTERM or
    SIGHUP (the terminal closed), also when started in the background, where the shell hands
    them SIGINT ignored."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, interrupt)


def port_taken(host: str, port: int) -> bool:
    """True when something already listens on (host, port)."""
    import socket

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def cmd_serve(args: argparse.Namespace) -> int:
    from cardstatus_dev.serve import run_server

    if args.port and port_taken(args.host, args.port):
        print(
            f"cardstatus serve: port {args.port} is already in use; stop the other program "
            "or pass --port N",
            file=sys.stderr,
        )
        return EXIT_FAILED
    _stop_on_signals()
    _use_database(args)
    run_server(args.host, args.port)
    return EXIT_OK


def cmd_console(args: argparse.Namespace) -> int:
    from cardstatus_dev.proxy import API_KEY_ENV, ProxyError, read_api_key, run_proxy

    if port_taken(args.host, args.port):
        print(
            f"cardstatus console: port {args.port} is already in use; pass --port N",
            file=sys.stderr,
        )
        return EXIT_FAILED
    _stop_on_signals()
    if args.api_key:
        print(
            "cardstatus console: --api-key is not accepted (the command line is visible in "
            f"process lists); put the key in ${API_KEY_ENV} or a file (--api-key-file)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        api_key = read_api_key(args.api_key_file)
        run_proxy(
            args.api_url,
            args.host,
            args.port,
            args.profile,
            args.region,
            api_key,
            allow_remote=args.allow_remote,
        )
    except ProxyError as exc:
        print(f"cardstatus console: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def cmd_local(args: argparse.Namespace) -> int:
    from cardstatus_dev.local import run_local

    for port, what, option in ((args.port, "API", "--port"), (args.s3_port, "S3/SQS", "--s3-port")):
        if port_taken(args.host if what == "API" else "127.0.0.1", port):
            print(
                f"cardstatus local: port {port} ({what}) is already in use; stop the other "
                f"program or pass {option} N",
                file=sys.stderr,
            )
            return EXIT_FAILED
    _stop_on_signals()
    return run_local(args)


def cmd_smoke(args: argparse.Namespace) -> int:
    from cardstatus_dev.smoke import run_smoke

    return run_smoke(args)


def cmd_openapi(args: argparse.Namespace) -> int:
    from cardstatus_dev.openapi import openapi_json

    sys.stdout.write(openapi_json())
    return EXIT_OK


def _add_privacy_parsers(sub: Any, db_help: str) -> None:
    """The privacy commands (README "Privacy"): audit, and phone-key."""
    from cardstatus_dev.phonekey import add_parser

    privacy_cmd.add_parsers(sub, db_help)
    add_parser(sub, db_help).set_defaults(func=cmd_phone_key)


def _add_console_parser(sub: Any) -> None:
    """`cardstatus console` (its refusals: README \"Local servers accept only their own page\")."""
    p = sub.add_parser(
        "console",
        help="the ops console for a deployed stack: a local proxy signing calls with SigV4",
    )
    p.add_argument("--api-url", required=True, help="the API's base URL (https://…/<stage>)")
    p.add_argument("--profile", help="AWS profile whose credentials sign the calls")
    p.add_argument("--region", help="AWS region (default: from the URL, else the profile's)")
    p.add_argument(
        "--api-key-file",
        help="file holding your usage-plan API key, sent as x-api-key (default: "
        "$CARDSTATUS_API_KEY; never on the command line, which `ps` shows)",
    )
    p.add_argument("--api-key", help=argparse.SUPPRESS)  # refused with the reason
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="listen on a non-loopback --host (the per-run token is then the only guard)",
    )
    p.add_argument("--port", type=int, default=8080, help="port to listen on (8080)")
    p.set_defaults(func=cmd_console)


def build_parser() -> argparse.ArgumentParser:
    from cardstatus_dev import ops_cli

    parser = argparse.ArgumentParser(prog="cardstatus", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging on stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    _add_privacy_parsers(sub, db_help)

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
    p.add_argument(
        "--since", metavar="ISO", help="only events emitted at or after: a date or time (UTC)"
    )
    p.add_argument("--pending", action="store_true", help="only events not yet published")
    p.add_argument("--database-url", help=db_help)
    p.set_defaults(func=cmd_events)

    p = sub.add_parser(
        "void",
        help="void an applied file: the state becomes what it would be without it (JSON)",
    )
    p.add_argument("file_id", type=int, metavar="FILE_ID", help="the file's id (its report)")
    p.add_argument("--reason", help="why (kept with the file and in its report); required")
    p.add_argument("--actor", help="who voids it (default: the OS user name)")
    ops_cli.add_void_preview_options(p)
    p.add_argument("--database-url", help=db_help)
    p.set_defaults(func=cmd_void)

    p = sub.add_parser("files", help="recent ingested files, newest first; one JSON per line")
    p.add_argument("--partner", help="only this partner")
    ops_cli.add_files_options(p)  # --outcome, --since, --has-rejects, --limit, formats
    p.add_argument("--database-url", help=db_help)
    p.set_defaults(func=cmd_files)

    p = sub.add_parser("file", help="one file's report as JSON")
    p.add_argument("file_id", metavar="ID", help="file id (file_id of `cardstatus files`)")
    p.add_argument("--database-url", help=db_help)
    p.set_defaults(func=cmd_file)

    p = sub.add_parser("stuck", help="cards stuck in a status, oldest first; one JSON per line")
    ops_cli.add_stuck_options(p)  # --status (any case), --older-than-hours, --partner, ...
    p.add_argument("--database-url", help=db_help)
    p.set_defaults(func=cmd_stuck)

    ops_cli.register(sub, db_help)  # rejects, file-cards
    add_partners_parser(sub, db_help, cmd_partners)

    p = sub.add_parser("serve", help="serve the API handler on a local HTTP port")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3000)
    p.add_argument("--database-url", help=db_help)
    p.set_defaults(func=cmd_serve)

    _add_console_parser(sub)

    p = sub.add_parser("local", help="run the whole service locally (PostgreSQL, moto, API)")
    p.add_argument("--host", default="127.0.0.1", help="address of the API (127.0.0.1)")
    p.add_argument("--port", type=int, default=3000, help="API port (3000)")
    p.add_argument("--s3-port", type=int, default=5000, help="moto S3 + SQS port (5000)")
    p.add_argument("--database-url", help=db_help)
    p.add_argument("--no-samples", action="store_true", help="do not upload the sample files")
    p.set_defaults(func=cmd_local)

    add_smoke_arguments(
        sub.add_parser("smoke", help="end-to-end check of a deployed (or local) stack")
    ).set_defaults(func=cmd_smoke)

    sub.add_parser("openapi", help="print the API's OpenAPI document").set_defaults(
        func=cmd_openapi
    )
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
    except BrokenPipeError:  # `cardstatus … | head -3`: the reader had enough, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
