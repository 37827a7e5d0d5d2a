"""The ops console's static files (tools/cardstatus_dev/console/) as HTTP answers.

One serving rule for `cardstatus serve`, `cardstatus local` and `cardstatus console`:
GET/HEAD /console is index.html, /console/<name> a file of that one flat folder. A name with a
slash, a backslash or a leading dot (so any `..`, encoded or not) is refused, as is an unknown
extension; every answer carries CONSOLE_HEADERS (no caching, a strict Content-Security-Policy:
nothing but this origin may run, load or frame the page).
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote

CONSOLE_DIR = Path(__file__).resolve().parent / "console"

CONSOLE_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}

CONSOLE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
}


def is_console_path(path: str) -> bool:
    return path == "/console" or path.startswith("/console/")


def console_asset(path: str, root: Path = CONSOLE_DIR) -> tuple[int, str, bytes] | None:
    """(status, content type, body) for a /console path (query string already removed), or None
    when the path is not the console's."""
    if path in ("/console", "/console/"):
        name = "index.html"
    elif path.startswith("/console/"):
        name = unquote(path[len("/console/") :])
    else:
        return None
    suffix = Path(name).suffix
    if (
        not name
        or "/" in name
        or "\\" in name
        or name.startswith(".")
        or suffix not in CONSOLE_TYPES
        or not (root / name).is_file()
    ):
        body = json.dumps({"error": {"code": "not_found", "message": "no such console file"}})
        return 404, "application/json", body.encode()
    return 200, CONSOLE_TYPES[suffix], (root / name).read_bytes()


def method_not_allowed() -> tuple[int, str, bytes]:
    body = {"error": {"code": "method_not_allowed", "message": "the console is read with GET"}}
    return 405, "application/json", json.dumps(body).encode()
