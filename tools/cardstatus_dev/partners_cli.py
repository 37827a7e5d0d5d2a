"""`cardstatus partners [--at ISO] [--partner P] [--table]`: partner feed health (README
"Partner feed health"). JSON Lines by default (one partner per line, for scripts), an aligned
table with --table (for people). Exit 1 when any monitored partner is late or over its reject
rate (cron and scripts can alert on it), 2 for a bad --at or partner name."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from psycopg2.extensions import connection as Connection

EXIT_OK, EXIT_ALERTING = 0, 1

COLUMNS = (
    ("PARTNER", "partner"),
    ("STATE", "state"),
    ("LAST FILE (UTC)", "last_file_at"),
    ("DUE BY (UTC)", "due_by"),
    ("LATE AFTER (UTC)", "late_after"),
    ("FILES 7D", "files_7d"),
    ("ROWS 7D", "rows_7d"),
    ("REJECT 7D", "reject_7d"),
    ("TODAY", "today"),
    ("STUCK", "stuck"),
    ("ALERT", "alert"),
)


def add_partners_parser(sub: Any, db_help: str, func: Callable[[argparse.Namespace], int]) -> None:
    """The `partners` subcommand's arguments (cli.py registers it)."""
    p = sub.add_parser(
        "partners",
        help="partner feed health (JSON Lines); exit 1 when a monitored partner is late or "
        "over its reject rate",
    )
    p.add_argument("--at", metavar="ISO", help="health as of this time (UTC if no offset; now)")
    p.add_argument("--partner", help="only this partner (any case)")
    p.add_argument("--table", action="store_true", help="an aligned table for people")
    p.add_argument("--database-url", help=db_help)
    p.set_defaults(func=func)


def _time(iso: str | None) -> str:
    return iso.replace("T", " ")[:16] if iso else "-"


def table_row(p: dict[str, Any]) -> dict[str, str]:
    week = p["last_7_days"]
    rate = week["reject_rate"]
    alert = []
    if p["alerting"] and p["state"] == "late":
        alert.append(f"late {p['minutes_late']} min")
    if p["reject_rate_exceeded"]:
        alert.append("reject rate")
    if p["volume_warning"]:
        alert.append("low volume")
    return {
        "partner": p["partner"],
        "state": p["state"],
        "last_file_at": _time(p["last_file_at"]),
        "due_by": _time(p["due_by"]),
        "late_after": _time(p["late_after"]),
        "files_7d": f"{week['files']:,}",
        "rows_7d": f"{week['rows']:,}",
        "reject_7d": "-" if rate is None else f"{rate:.1%}",
        "today": f"{p['today']['files']:,}",
        "stuck": f"{p['stuck_cards']['total']:,}",
        "alert": ", ".join(alert) or "-",
    }


def format_table(partners: Sequence[dict[str, Any]]) -> str:
    rows = [table_row(p) for p in partners]
    widths = {key: len(title) for title, key in COLUMNS}
    for row in rows:
        for _, key in COLUMNS:
            widths[key] = max(widths[key], len(row[key]))
    numeric = {"files_7d", "rows_7d", "reject_7d", "today", "stuck"}

    def line(values: dict[str, str]) -> str:
        cells = [
            values[key].rjust(widths[key]) if key in numeric else values[key].ljust(widths[key])
            for _, key in COLUMNS
        ]
        return "  ".join(cells).rstrip()

    header = line({key: title for title, key in COLUMNS})
    return "\n".join([header, *(line(r) for r in rows)])


def run_partners(
    conn: Connection, at: str | None, partner: str | None, table: bool, out: Any
) -> int:
    """Print the health of every partner (or one) as of `at`; the exit code."""
    from cardstatus import partners
    from cardstatus.config import settings

    if partner:
        healths = [partners.one_health(conn, settings(), partner, at)]
    else:
        healths = partners.all_health(conn, settings(), at)
    bodies = [h.to_json() for h in healths]
    if table:
        as_of = bodies[0]["as_of"] if bodies else "-"
        out.write(f"partner feed health as of {_time(as_of)} UTC\n")
        out.write(format_table(bodies) + "\n")
    else:
        for body in bodies:
            out.write(json.dumps(body, ensure_ascii=False) + "\n")
    out.flush()
    return EXIT_ALERTING if any(h.alerting for h in healths) else EXIT_OK
