"""The privacy commands (README "Privacy"), against the database as the schema owner
(`--database-url`, else DATABASE_URL, else the embedded server in .local/):

- `cardstatus audit`: who looked at a card (or what a caller looked at), from the lookup
  audit trail; one JSON object per line, newest first.
- `cardstatus erase`: erase a phone number (any written form) or a whole card on request,
  with who asked and why; one JSON object (the request's id and counts), never the number."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def parse_since(text: str) -> datetime:
    """ISO 8601 date or time; UTC when it has no offset."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def cmd_audit(args: argparse.Namespace) -> int:
    from cardstatus import audit
    from cardstatus.cards import validate_card_id
    from cardstatus.db import connect
    from cardstatus.errors import RequestError, error_body
    from cardstatus_dev.database import use_database

    try:
        since = parse_since(args.since) if args.since else None
    except ValueError:
        print(json.dumps({"error": {"code": "invalid_parameter", "message": "--since: ISO 8601"}}))
        return EXIT_USAGE
    try:
        card_id = validate_card_id(args.card_id) if args.card_id else None
    except RequestError as exc:
        print(json.dumps(error_body(exc.code, exc.message)))
        return EXIT_USAGE
    use_database(args.database_url)
    conn = connect()
    try:
        rows: list[dict[str, Any]] = audit.trail(
            conn, card_id=card_id, caller=args.caller, since=since, limit=args.limit
        )
    finally:
        conn.close()
    for row in rows:
        print(json.dumps(row, ensure_ascii=False))
    return EXIT_OK if rows else EXIT_FAILED


def cmd_erase(args: argparse.Namespace) -> int:
    import getpass

    from cardstatus import erasure
    from cardstatus.db import connect
    from cardstatus.errors import RequestError, error_body
    from cardstatus_dev.database import use_database

    use_database(args.database_url)
    conn = connect()
    actor = args.actor or getpass.getuser()
    try:
        if args.phone is not None:
            result = erasure.erase_phone(conn, args.phone, args.reason, actor)
        else:
            result = erasure.erase_card(conn, args.card_id, args.reason, actor)
    except RequestError as exc:
        print(json.dumps(error_body(exc.code, exc.message)))
        return EXIT_USAGE
    finally:
        conn.close()
    print(json.dumps(result.to_json()))
    return EXIT_OK


def add_parsers(sub: Any, db_help: str) -> None:
    p = sub.add_parser(
        "audit", help="who looked at a card (or what a caller looked at); one JSON per line"
    )
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--card-id", help="lookups that answered (or asked for) this card")
    who.add_argument("--caller", metavar="ARN", help="lookups made by this caller")
    p.add_argument("--since", metavar="ISO", help="at or after (ISO 8601; UTC if no offset)")
    p.add_argument("--limit", type=int, default=100, metavar="N", help="at most N lookups (100)")
    p.add_argument("--database-url", help=db_help)
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser(
        "erase", help="erase a phone number or a card on request (recorded with who and why)"
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--phone", help="the number, in any form (never printed or logged)")
    what.add_argument("--card-id", help="delete this card with its events and their copies")
    p.add_argument("--reason", required=True, help="why (the request's reference), kept")
    p.add_argument("--actor", help="who asks (default: the OS user name)")
    p.add_argument("--database-url", help=db_help)
    p.set_defaults(func=cmd_erase)
