"""Operations commands for people and scripts (README "Operations"): `cardstatus rejects`,
`file-cards`, `void --preview`, and the output formats of `files` / `stuck` / those:
JSON Lines by default (scripts), `--table` (an aligned table for people), `--csv` (a
spreadsheet or the partner). Registered in cli.py; every read goes through cardstatus.ops /
cardstatus.filecards, like the API."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

# Columns of each list in --table and --csv output: (heading, key path).
COLUMNS: dict[str, list[tuple[str, str]]] = {
    "files": [
        ("ID", "file_id"),
        ("OUTCOME", "outcome"),
        ("PARTNER", "partner"),
        ("ROWS", "counts.rows"),
        ("ACCEPTED", "counts.accepted"),
        ("DUPLICATE", "counts.duplicate"),
        ("REJECTED", "counts.rejected"),
        ("WARNINGS", "counts.warnings"),
        ("CHANGED", "cards_changed"),
        ("RECEIVED (UTC)", "received_at"),
        ("VOIDED", "voided"),
        ("KEY", "key"),
    ],
    "cards": [
        ("CARD", "card_id"),
        ("STATUS", "status"),
        ("SINCE (UTC)", "status_at"),
        ("AGE H", "age_hours"),
        ("PARTNER", "partner"),
        ("REASON", "reason"),
        ("EXCEPTIONS", "exception_count"),
        ("FILE", "file_id"),
        ("COMMENT", "comment"),
    ],
    "file_cards": [
        ("ACTION", "action"),
        ("CARD", "card_id"),
        ("BEFORE", "status_before"),
        ("AFTER", "status_after"),
        ("NOW", "status_now"),
        ("CHANGED AT (UTC)", "changed_at"),
    ],
    "rejects": [
        ("LINE", "line"),
        ("CARD", "card_id"),
        ("REASON", "reason"),
        ("RAW ROW", "raw_row"),
    ],
    "preview": [
        ("CARD", "card_id"),
        ("NOW", "status_now"),
        ("AFTER VOID", "status_after_void"),
    ],
}
NUMERIC = {"ID", "ROWS", "ACCEPTED", "DUPLICATE", "REJECTED", "WARNINGS", "CHANGED", "AGE H",
           "EXCEPTIONS", "FILE", "LINE"}  # fmt: skip
CELL_MAX = 60  # a table cell longer than this is cut with "…" (--csv and JSON keep it whole)


def add_format_options(parser: argparse.ArgumentParser, csv_too: bool = False) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--table", action="store_true", help="an aligned table for people (default: JSON Lines)"
    )
    if csv_too:
        group.add_argument("--csv", action="store_true", help="CSV with a header row")


def output_format(args: argparse.Namespace) -> str:
    if getattr(args, "table", False):
        return "table"
    if getattr(args, "csv", False):
        return "csv"
    return "json"


def _value(item: dict[str, Any], path: str) -> Any:
    value: Any = item
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _cell(value: Any, numeric: bool) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else ""
    if numeric and isinstance(value, int):
        return f"{value:,}"
    text = " ".join(str(value).split())
    if isinstance(value, str) and value.endswith("Z") and "T" in value:
        text = value.replace("T", " ").rstrip("Z")[:16]  # 2026-12-06 08:30 (UTC)
    return text if len(text) <= CELL_MAX else text[: CELL_MAX - 1] + "…"


def render_table(items: list[dict[str, Any]], kind: str) -> str:
    """An aligned table: numbers right-aligned with thousands separators, times in UTC."""
    columns = COLUMNS[kind]
    rows = [[_cell(_value(i, path), head in NUMERIC) for head, path in columns] for i in items]
    widths = [max([len(head), *(len(r[n]) for r in rows)]) for n, (head, _) in enumerate(columns)]

    def line(cells: list[str]) -> str:
        out = [
            c.rjust(w) if columns[n][0] in NUMERIC else c.ljust(w)
            for n, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(out).rstrip()

    return "\n".join([line([h for h, _ in columns]), *(line(r) for r in rows)])


def write_csv(items: list[dict[str, Any]], kind: str) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow([path.split(".")[-1] for _, path in COLUMNS[kind]])
    for item in items:
        writer.writerow(["" if (v := _value(item, p)) is None else v for _, p in COLUMNS[kind]])


def print_pages(
    fetch: Callable[..., dict[str, Any]], key: str, limit: int | None, fmt: str, kind: str = ""
) -> int:
    """Every item of a paged list (at most `limit`) as JSON Lines (streamed), a table or CSV;
    1 when there is none. Tables and CSV of stuck cards end with the total."""
    from cardstatus.ops import MAX_LIMIT

    kind = kind or key
    items: list[dict[str, Any]] = []
    cursor, total = None, None
    printed = 0
    while limit is None or printed < limit:
        size = MAX_LIMIT if limit is None else min(MAX_LIMIT, limit - printed)
        page = fetch(cursor=cursor, limit=size)
        if total is None:
            total = page.get("total")
        for item in page[key]:
            if fmt == "json":
                print(json.dumps(item, ensure_ascii=False), flush=True)
            else:
                items.append(item)
        printed += len(page[key])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    if not printed:
        print(f"cardstatus: no {key} match", file=sys.stderr)
        return EXIT_FAILED
    if fmt == "table":
        print(render_table(items, kind))
        if total is not None:
            print(f"{printed:,} shown of {total:,} cards", file=sys.stderr)
    elif fmt == "csv":
        write_csv(items, kind)
    return EXIT_OK


def parse_since_option(raw: str | None) -> datetime | None:
    """--since everywhere: a date (2026-12-06, midnight UTC) or a time (UTC without offset)."""
    if raw is None:
        return None
    value = datetime.fromisoformat(raw.strip().replace("z", "Z"))
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def upper_choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    """An argparse type: a choice in any case (delivery_exception is DELIVERY_EXCEPTION)."""

    def convert(raw: str) -> str:
        value = raw.strip()
        for choice in choices:
            if value.lower() == choice.lower():
                return choice
        raise argparse.ArgumentTypeError(
            f"invalid choice: {raw!r} (choose from {', '.join(choices)}, any case)"
        )

    return convert


def _lookup(args: argparse.Namespace, run: Callable[[Any], int]) -> int:
    from cardstatus.db import connect
    from cardstatus.errors import InvalidParameter, RequestError, error_body
    from cardstatus_dev.database import use_database

    use_database(getattr(args, "database_url", None))
    conn = connect()
    try:
        return int(run(conn))
    except RequestError as exc:
        print(json.dumps(error_body(exc.code, exc.message)))
        return EXIT_USAGE if isinstance(exc, InvalidParameter) else EXIT_FAILED
    finally:
        conn.close()


def cmd_rejects(args: argparse.Namespace) -> int:
    """Every rejected row of a file: JSON Lines, --table, or --csv (the same columns as
    GET /files/{id}/rejects.csv, without its row limit)."""
    from cardstatus import filecards

    def run(conn: Any) -> int:
        if output_format(args) == "csv":
            lines, _ = filecards.rejects_csv_lines(conn, args.file_id, max_rows=None)
            try:
                for text in lines:
                    sys.stdout.write(text.replace("\r\n", "\n"))
                sys.stdout.flush()
            except BrokenPipeError:
                pass
            return EXIT_OK
        from cardstatus import ops

        def fetch(cursor: str | None, limit: int) -> dict[str, Any]:
            return ops.file_rejects(conn, args.file_id, cursor, limit)

        return print_pages(fetch, "rejects", None, output_format(args))

    return _lookup(args, run)


def cmd_file_cards(args: argparse.Namespace) -> int:
    """The cards a file changed (before -> after) and what its void did."""
    from cardstatus import filecards

    def run(conn: Any) -> int:
        def fetch(cursor: str | None, limit: int) -> dict[str, Any]:
            return filecards.file_cards(conn, args.file_id, args.action, cursor, limit)

        return print_pages(fetch, "cards", args.limit, output_format(args), "file_cards")

    return _lookup(args, run)


def cmd_void_preview(args: argparse.Namespace) -> int:
    """`cardstatus void ID --preview`: what the void would do; changes nothing."""
    from cardstatus import filecards

    def run(conn: Any) -> int:
        first = filecards.void_preview(conn, args.file_id)
        cards: list[dict[str, Any]] = list(first["cards"])
        cursor = first["next_cursor"]
        while cursor is not None:
            page = filecards.void_preview(conn, args.file_id, cursor)
            cards.extend(page["cards"])
            cursor = page["next_cursor"]
        summary = {k: v for k, v in first.items() if k not in ("cards", "next_cursor")}
        if output_format(args) == "table":
            print(
                f"file {first['file_id']} ({first['outcome']}): a void changes "
                f"{len(cards):,} card(s) of {first['cards_touched'] or 0:,} it touched"
                + (f", deletes {first['cards_deleted']:,}" if first["cards_deleted"] else "")
            )
            if cards:
                print(render_table(cards, "preview"))
        else:
            print(json.dumps({**summary, "cards": cards}, ensure_ascii=False))
        return EXIT_OK if first["voidable"] else EXIT_FAILED

    return _lookup(args, run)


def add_void_preview_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preview",
        action="store_true",
        help="only show what the void would do (cards whose status changes); changes nothing",
    )
    add_format_options(parser)


def add_files_options(parser: argparse.ArgumentParser) -> None:
    """`cardstatus files`: --outcome (any case), --since, --has-rejects, --limit, formats."""
    parser.add_argument(
        "--outcome",
        type=upper_choice(("applied", "duplicate_file", "rejected_file", "in_progress")),
        help="applied, duplicate_file, rejected_file or in_progress (any case)",
    )
    parser.add_argument(
        "--since", metavar="ISO", help="finished at or after: a date or time (UTC if no offset)"
    )
    parser.add_argument(
        "--has-rejects",
        action="store_const",
        const=True,
        help="only files with rejected rows (any outcome); with --since TODAY: rejected today",
    )
    parser.add_argument("--limit", type=int, default=20, metavar="N", help="at most N files (20)")
    add_format_options(parser, csv_too=True)


def add_stuck_options(parser: argparse.ArgumentParser) -> None:
    """`cardstatus stuck`: --status (any case), --older-than-hours, --partner, --limit, formats."""
    parser.add_argument(
        "--status",
        type=upper_choice(("PICKED_UP", "DELIVERY_EXCEPTION")),
        default="PICKED_UP",
        help="PICKED_UP (default) or DELIVERY_EXCEPTION, any case",
    )
    parser.add_argument("--older-than-hours", type=float, default=72, metavar="H", help="(72)")
    parser.add_argument("--partner", help="only cards whose current event came from this partner")
    parser.add_argument("--limit", type=int, metavar="N", help="at most N cards (all)")
    add_format_options(parser, csv_too=True)


def register(sub: Any, db_help: str) -> None:
    """Add `rejects` and `file-cards` to the CLI's subcommands."""
    p = sub.add_parser("rejects", help="a file's rejected rows (card id, raw row); JSON Lines")
    p.add_argument("file_id", metavar="FILE_ID", help="file id (file_id of `cardstatus files`)")
    add_format_options(p, csv_too=True)
    p.add_argument("--database-url", help=db_help)
    p.set_defaults(func=cmd_rejects)

    p = sub.add_parser(
        "file-cards", help="the cards a file changed (before -> after) and what its void did"
    )
    p.add_argument("file_id", metavar="FILE_ID", help="file id (file_id of `cardstatus files`)")
    p.add_argument("--action", type=upper_choice(("apply", "void")), help="only apply or void")
    p.add_argument("--limit", type=int, metavar="N", help="at most N cards (all)")
    add_format_options(p)
    p.add_argument("--database-url", help=db_help)
    p.set_defaults(func=cmd_file_cards)
