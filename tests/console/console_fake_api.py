"""A stand-in for the API the console calls, plus the console's static files, on one origin.

Only for the browser tests until the real routes exist (GET /files, /files/{id},
/files/{id}/rejects, /stuck_cards, POST /files/{id}/void, POST /cards/search): then the
`console_url` fixture starts `cardstatus serve` instead and this module goes away, except
`console_asset`, which is the serving rule `cardstatus serve` adopts for /console.

Answers are canned JSON in the shapes the console is written against, built from the sample
partner files (ZYW8890: picked up, exception, returned). Errors use the API's error model.
"""

from __future__ import annotations

import copy
import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from fixture_paths import ROOT

CONSOLE_DIR = ROOT / "tools" / "cardstatus_dev" / "console"

# --- the /console serving rule (what serve.py needs) ----------------------------------------

CONSOLE_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}

# Sent with every console file: nothing but this origin may run, load or be framed.
CONSOLE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
}


def console_asset(path: str, root: Path = CONSOLE_DIR) -> tuple[int, str, bytes] | None:
    """(status, content type, body) for a /console path (query string already removed), or None
    when the path is not the console's. Files are served from one flat folder: a name with a
    slash, a backslash or a leading dot (so any `..`) is refused, as is an unknown extension."""
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


# --- canned data --------------------------------------------------------------------------


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error(status: int, code: str, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"code": code, "message": message}}


def _card(card_id: str, phone_last4: str, history: list[dict[str, Any]]) -> dict[str, Any]:
    history = sorted(history, key=lambda e: e["at"], reverse=True)
    latest = history[0]

    def first_at(status: str) -> str | None:
        return next((e["at"] for e in reversed(history) if e["status"] == status), None)

    return {
        "card_id": card_id,
        "status": latest["status"],
        "status_at": latest["at"],
        "comment": latest["comment"],
        "reason": latest["reason"],
        "user_phone": "********" + phone_last4,
        "picked_up_at": first_at("PICKED_UP"),
        "delivered_at": first_at("DELIVERED"),
        "returned_at": first_at("RETURNED"),
        "exception_count": sum(1 for e in history if e["status"] == "DELIVERY_EXCEPTION"),
        "history": history,
    }


def _event(status: str, at: str, comment: str | None = None, reason: str | None = None) -> dict:
    return {"status": status, "at": at, "comment": comment, "reason": reason, "partner": "acme"}


SEARCH_PHONE = "534534534"  # the sample files' phone of ZYW8890 (in three spellings there)


def build_data(now: datetime) -> dict[str, Any]:
    """Cards, files, reports and rejects; times of recent things relative to `now`."""
    ago = lambda **kw: _iso(now - timedelta(**kw))  # noqa: E731
    cards = {
        "ZYW8890": _card(
            "ZYW8890",
            "4534",
            [
                _event("PICKED_UP", "2023-11-11T23:45:00Z"),
                _event(
                    "DELIVERY_EXCEPTION",
                    "2023-11-13T10:00:00Z",
                    "User not available",
                    "recipient_unavailable",
                ),
                _event("RETURNED", "2023-11-14T08:00:00Z"),
            ],
        ),
        "QRK1001": _card(
            "QRK1001",
            "4534",
            [
                _event("PICKED_UP", "2023-11-08T06:10:00Z"),
                _event("DELIVERED", "2023-11-09T11:30:00Z"),
            ],
        ),
        "QRK1004": _card(
            "QRK1004",
            "9014",
            [
                _event("PICKED_UP", ago(hours=130)),
                _event(
                    "DELIVERY_EXCEPTION", ago(hours=101), "Address not found", "address_problem"
                ),
            ],
        ),
    }
    stuck = [
        {
            "card_id": "QRK1004",
            "status": "DELIVERY_EXCEPTION",
            "status_at": ago(hours=101),
            "partner": "acme",
            "age_hours": 101.0,
        },
        {
            "card_id": "QRK1005",
            "status": "DELIVERY_EXCEPTION",
            "status_at": ago(hours=80),
            "partner": "acme",
            "age_hours": 80.0,
        },
        {
            "card_id": "QRK1006",
            "status": "DELIVERY_EXCEPTION",
            "status_at": ago(hours=75, minutes=30),
            "partner": "swiftpost",
            "age_hours": 75.5,
        },
        {
            "card_id": "QRK1002",
            "status": "PICKED_UP",
            "status_at": ago(hours=240),
            "partner": "acme",
            "age_hours": 240.0,
        },
        {
            "card_id": "QRK1003",
            "status": "PICKED_UP",
            "status_at": ago(hours=96),
            "partner": "acme",
            "age_hours": 96.0,
        },
    ]
    # The 11 sample files, newest first (ids 32..42).
    specs = [
        ("incoming/acme/Sample Card Status Info - Returned.csv", "applied", None, (1, 1, 0, 0, 0)),
        (
            "incoming/acme/Sample Card Status Info - Delivery exceptions.csv",
            "applied",
            None,
            (1, 1, 0, 0, 0),
        ),
        ("incoming/acme/Sample Card Status Info - Delivered.csv", "applied", None, (2, 2, 0, 0, 0)),
        ("incoming/acme/Sample Card Status Info - Pickup.csv", "applied", None, (3, 3, 0, 0, 0)),
        ("incoming/acme/acme weekly export.csv", "applied", None, (6, 5, 1, 0, 0)),
        (
            "incoming/acme/acme utf8-bom semicolon - Delivered.csv",
            "duplicate_file",
            "the same bytes were already applied",
            (2, 0, 2, 0, 0),
        ),
        ("incoming/acme/acme unicode text - Pickup.csv", "applied", None, (3, 3, 0, 0, 0)),
        (
            "incoming/acme/acme no card column - Delivered.csv",
            "rejected_file",
            "no card id column: expected one of card_id, card id, card number",
            (0, 0, 0, 0, 0),
        ),
        (
            "incoming/acme/acme mixed status column.csv",
            "rejected_file",
            "the status cannot be told: no event type in the file name and no status column",
            (4, 0, 0, 4, 0),
        ),
        ("incoming/acme/acme cp1252 - Delivery exceptions.csv", "applied", None, (4, 4, 0, 0, 2)),
        ("incoming/acme/acme bad rows - Returned.csv", "applied", None, (8, 5, 0, 3, 1)),
    ]
    files: list[dict[str, Any]] = []
    reports: dict[str, dict[str, Any]] = {}
    rejects: dict[str, list[dict[str, Any]]] = {}
    for index, (key, outcome, reason, (rows, accepted, duplicate, rejected, warnings)) in enumerate(
        specs
    ):
        file_id = 42 - index
        received = now - timedelta(minutes=7 + index * 53)
        counts = {
            "rows": rows,
            "accepted": accepted,
            "duplicate": duplicate,
            "rejected": rejected,
            "warnings": warnings,
        }
        files.append(
            {
                "file_id": file_id,
                "key": key,
                "partner": "acme",
                "outcome": outcome,
                "counts": counts,
                "reason": reason,
                "received_at": _iso(received),
                "finished_at": _iso(received + timedelta(seconds=2)),
                "voided": False,
            }
        )
        file_rejects: list[dict[str, Any]] = []
        file_warnings: list[dict[str, Any]] = []
        if key.endswith("bad rows - Returned.csv"):
            file_rejects = [
                {"line": 3, "reason": "invalid card id: 'ZY W88'"},
                {"line": 5, "reason": "invalid date: '31-02-2023 10:00'"},
                {"line": 8, "reason": "missing date"},
            ]
            file_warnings = [
                {"line": 6, "warning": "invalid phone ********1234: kept the event without it"}
            ]
        elif key.endswith("mixed status column.csv"):
            file_rejects = [{"line": n, "reason": "the status cannot be told"} for n in range(2, 6)]
        elif key.endswith("cp1252 - Delivery exceptions.csv"):
            file_warnings = [
                {"line": 0, "warning": "decoded as cp1252 (not valid UTF-8)"},
                {"line": 4, "warning": "unknown exception reason 'Kunde nicht da': reason=other"},
            ]
        rejects[str(file_id)] = file_rejects
        reports[str(file_id)] = {
            "file_id": file_id,
            "outcome": outcome,
            "reason": reason,
            "counts": counts,
            "warnings": file_warnings,
            "rejects": file_rejects,
            "file": {"bucket": "cardstatus-local-partner-files", "key": key, "partner": "acme"},
            "received_at": _iso(received),
            "finished_at": _iso(received + timedelta(seconds=2)),
            "voided_at": None,
            "voided_by": None,
            "void_reason": None,
        }
    return {"cards": cards, "stuck": stuck, "files": files, "reports": reports, "rejects": rejects}


# --- the fake API -------------------------------------------------------------------------

REJECTS_PAGE = 2  # small on purpose: the console's "load more" gets exercised


class FakeApi:
    """Canned answers in the API's shapes; `requests` records (method, target, body)."""

    def __init__(self, now: datetime | None = None) -> None:
        self.data = build_data(now or datetime.now(UTC))
        self.requests: list[tuple[str, str, bytes | None]] = []
        self.lock = threading.Lock()

    def answer(self, method: str, target: str, body: bytes | None) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.requests.append((method, target, body))
            return self._route(method, target, body)

    def _route(self, method: str, target: str, body: bytes | None) -> tuple[int, dict[str, Any]]:
        split = urlsplit(target)
        parts = [unquote(p) for p in split.path.strip("/").split("/")]
        params = {k: v[-1] for k, v in parse_qs(split.query).items()}
        if method == "GET" and len(parts) == 2 and parts[0] == "cards":
            return self._card(parts[1])
        if method == "POST" and parts == ["cards", "search"]:
            return self._search(body)
        if method == "GET" and parts == ["files"]:
            return self._files(params)
        if method == "GET" and len(parts) == 2 and parts[0] == "files":
            report = self.data["reports"].get(parts[1])
            return (
                (200, copy.deepcopy(report))
                if report
                else _error(404, "not_found", "file not found")
            )
        if method == "GET" and len(parts) == 3 and parts[0] == "files" and parts[2] == "rejects":
            return self._rejects(parts[1], params)
        if method == "POST" and len(parts) == 3 and parts[0] == "files" and parts[2] == "void":
            return self._void(parts[1], body)
        if method == "GET" and parts == ["stuck_cards"]:
            return self._stuck(params)
        return _error(404, "not_found", f"no route {method} {split.path}")

    def _card(self, card_id: str) -> tuple[int, dict[str, Any]]:
        card = self.data["cards"].get(card_id)
        return (200, copy.deepcopy(card)) if card else _error(404, "not_found", "card not found")

    def _search(self, body: bytes | None) -> tuple[int, dict[str, Any]]:
        try:
            query = json.loads(body or b"")
        except ValueError:
            return _error(400, "invalid_parameter", "the body must be a JSON object")
        if not isinstance(query, dict) or not (query.get("card_id") or query.get("user_phone")):
            return _error(400, "missing_parameter", "give card_id or user_phone")
        phone = "".join(ch for ch in str(query.get("user_phone") or "") if ch.isdigit())
        if phone and not phone.endswith(SEARCH_PHONE):
            return _error(404, "not_found", "no card found")
        card_id = query.get("card_id") or "ZYW8890"
        status, card = self._card(card_id)
        if status == 200 and phone:
            other = self.data["cards"]["QRK1001"]
            card["other_cards"] = [{k: other[k] for k in ("card_id", "status", "status_at")}]
        return status, card

    def _files(self, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        files = [
            f
            for f in self.data["files"]
            if (not params.get("partner") or f["partner"] == params["partner"])
            and (not params.get("outcome") or f["outcome"] == params["outcome"])
            and (not params.get("since") or f["received_at"] >= params["since"])
        ]
        limit = int(params.get("limit") or 50)
        if not 1 <= limit <= 100:
            return _error(400, "invalid_parameter", "limit must be between 1 and 100")
        start = int(params.get("cursor") or 0)
        page = files[start : start + limit]
        more = start + limit < len(files)
        return 200, {
            "files": copy.deepcopy(page),
            "next_cursor": str(start + limit) if more else None,
        }

    def _rejects(self, file_id: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if file_id not in self.data["rejects"]:
            return _error(404, "not_found", "file not found")
        rows = self.data["rejects"][file_id]
        start = int(params.get("cursor") or 0)
        more = start + REJECTS_PAGE < len(rows)
        return 200, {
            "rejects": rows[start : start + REJECTS_PAGE],
            "next_cursor": str(start + REJECTS_PAGE) if more else None,
        }

    def _void(self, file_id: str, body: bytes | None) -> tuple[int, dict[str, Any]]:
        report = self.data["reports"].get(file_id)
        if report is None:
            return _error(404, "not_found", "file not found")
        reason = (json.loads(body or b"{}") or {}).get("reason", "").strip()
        if not reason:
            return _error(400, "missing_parameter", "reason is required")
        if report["outcome"] != "applied":
            return _error(409, "conflict", "only an applied file can be voided")
        already = report["voided_at"] is not None
        if not already:
            report.update(
                voided_at=_iso(datetime.now(UTC)), voided_by="local-user", void_reason=reason
            )
            for f in self.data["files"]:
                if str(f["file_id"]) == file_id:
                    f["voided"] = True
        return 200, {
            "file_id": int(file_id),
            "voided_at": report["voided_at"],
            "voided_by": report["voided_by"],
            "void_reason": report["void_reason"],
            "already_voided": already,
            "cards_changed": 0 if already else 3,
        }

    def _stuck(self, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        status = params.get("status", "PICKED_UP")
        if status not in ("PICKED_UP", "DELIVERY_EXCEPTION"):
            return _error(
                400, "invalid_parameter", "status must be PICKED_UP or DELIVERY_EXCEPTION"
            )
        hours = float(params.get("older_than_hours") or 72)
        cards = [
            c
            for c in self.data["stuck"]
            if c["status"] == status
            and c["age_hours"] > hours
            and (not params.get("partner") or c["partner"] == params["partner"])
        ]
        cards.sort(key=lambda c: c["status_at"])
        return 200, {"cards": copy.deepcopy(cards), "next_cursor": None}


def make_server(api: FakeApi, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """The console's files and the fake API on one origin; call serve_forever() in a thread."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(
            self, status: int, content_type: str, body: bytes, headers: dict[str, str]
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            asset = console_asset(urlsplit(self.path).path)
            if asset is not None:
                self._reply(*asset, CONSOLE_HEADERS)
                return
            status, payload = api.answer(self.command, self.path, body)
            self._reply(status, "application/json", json.dumps(payload).encode(), {})

        do_GET = do_POST = do_HEAD = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server
