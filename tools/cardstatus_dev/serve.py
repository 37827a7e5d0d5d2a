"""Local HTTP front for the real API handler, shaped like API Gateway (REST, proxy integration).

Each request becomes the event API Gateway would send (path, method, query and header
maps in single- and multi-value form, path parameters of the matching resource, a request
context with a fresh request id), goes through `functions/api/app.py:handler`, and its
response (status, headers, body) is written back. Connections are served concurrently;
invocations are serialised, as in one warm Lambda container (the handler keeps
per-invocation state in module globals).

GET/HEAD /console and /console/<file> serve the ops console's static files
(console_assets.py) on the same origin as the API, so the page calls the API directly.

Only this server's own page is served (origin_guard.py): a Host other than its own address,
a foreign Origin or a cross-site fetch is 403, and a POST must be JSON (else 400). Without a
signature every request is one caller of the lookup budget (cardstatus/lookup_budget.py).

`make_server(host, port)` returns the server for the caller to run (e.g. in a thread);
`run_server(host, port)` blocks until Ctrl-C. Access log lines never include the query
string: phone numbers travel there.
"""

from __future__ import annotations

import base64
import json
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any
from urllib.parse import unquote, urlsplit

from cardstatus_dev import local_audit
from cardstatus_dev.console_assets import (
    CONSOLE_HEADERS,
    console_asset,
    is_console_path,
    method_not_allowed,
)
from cardstatus_dev.lambda_context import LocalContext
from cardstatus_dev.origin_guard import BODY_METHODS, own_hosts, refusal
from cardstatus_dev.paths import import_function

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

STAGE = "local"

# API Gateway resources of the API, most specific first: (resource, regex of the path).
_RESOURCES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("/get_card_status", re.compile(r"^/get_card_status/?$")),
    ("/health", re.compile(r"^/health/?$")),
    ("/cards", re.compile(r"^/cards/?$")),
    ("/cards/search", re.compile(r"^/cards/search/?$")),
    ("/cards/{card_id}", re.compile(r"^/cards/(?P<card_id>[^/]+)/?$")),
    ("/files", re.compile(r"^/files/?$")),
    ("/files/{file_id}", re.compile(r"^/files/(?P<file_id>[^/]+)/?$")),
    ("/files/{file_id}/rejects", re.compile(r"^/files/(?P<file_id>[^/]+)/rejects/?$")),
    ("/files/{file_id}/void", re.compile(r"^/files/(?P<file_id>[^/]+)/void/?$")),
    ("/files/{file_id}/cards", re.compile(r"^/files/(?P<file_id>[^/]+)/cards/?$")),
    ("/files/{file_id}/void_preview", re.compile(r"^/files/(?P<file_id>[^/]+)/void_preview/?$")),
    ("/files/{file_id}/rejects.csv", re.compile(r"^/files/(?P<file_id>[^/]+)/rejects\.csv$")),
    ("/stuck_cards", re.compile(r"^/stuck_cards/?$")),
    ("/partners", re.compile(r"^/partners/?$")),
    ("/partners/{partner}", re.compile(r"^/partners/(?P<partner>[^/]+)/?$")),
    ("/phone_conflicts", re.compile(r"^/phone_conflicts/?$")),
    ("/privacy/erase", re.compile(r"^/privacy/erase/?$")),
)

# Resources served by a function other than the api function (as in the CDK stack).
_OTHER_FUNCTIONS = {"/files/{file_id}/void": "void", "/privacy/erase": "void"}


def load_api_module(*, audit_subscription: bool = True) -> ModuleType:
    """functions/api/app.py from this checkout (the real handler, not a copy). With
    `audit_subscription`, its audit lines go to the audit function as in AWS (local_audit.py);
    without, nowhere but stdout (the benchmarks: the api function alone)."""
    api = import_function("api")
    if audit_subscription:
        local_audit.subscribe(api)
    else:
        api.audit_lines.listeners.clear()
    return api


def _split_query(query: str) -> list[tuple[str, str]]:
    """API Gateway decodes %XX in names and values but keeps '+' as is (no form decoding)."""
    pairs: list[tuple[str, str]] = []
    for part in query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append((unquote(name), unquote(value)))
    return pairs


def build_event(
    method: str,
    raw_target: str,
    headers: list[tuple[str, str]] | None = None,
    body: bytes | None = None,
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """The API Gateway REST proxy event for one request (raw_target = path plus query)."""
    split = urlsplit(raw_target)
    path = split.path or "/"
    pairs = _split_query(split.query)
    multi_query: dict[str, list[str]] = {}
    for name, value in pairs:
        multi_query.setdefault(name, []).append(value)
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers or []:
        multi_headers.setdefault(name, []).append(value)

    resource, path_parameters = "/{proxy+}", {"proxy": path.lstrip("/")}
    for candidate, regex in _RESOURCES:
        match = regex.match(path)  # segments of the raw path; values decoded as API Gateway does
        if match:
            resource = candidate
            path_parameters = {k: unquote(v) for k, v in match.groupdict().items()}
            break

    now = datetime.now(UTC)
    request_id = str(uuid.uuid4())
    is_binary = body is not None and not _is_text(body)
    event_body: str | None = None
    if body:
        event_body = base64.b64encode(body).decode() if is_binary else body.decode("utf-8")
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method.upper(),
        "headers": {k: v[-1] for k, v in multi_headers.items()} or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "local",
            "resourcePath": resource,
            "httpMethod": method.upper(),
            "extendedRequestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "path": f"/{STAGE}{path}",
            "accountId": "000000000000",
            "protocol": "HTTP/1.1",
            "stage": STAGE,
            "domainPrefix": "localhost",
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "requestId": request_id,
            "identity": {"sourceIp": source_ip, "userAgent": dict(headers or []).get("User-Agent")},
            "domainName": "localhost",
            "apiId": "local",
        },
        "body": event_body,
        "isBase64Encoded": is_binary,
    }


def _is_text(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class _ApiRequestHandler(BaseHTTPRequestHandler):
    server_version = "cardstatus-local"
    protocol_version = "HTTP/1.1"
    api_handler: Handler
    invoke_lock: threading.Lock

    def _invoke(self) -> None:
        started = time.perf_counter()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else None
        if self._refused(started):
            return
        if is_console_path(urlsplit(self.path).path):
            self._console(started)
            return
        event = build_event(
            self.command, self.path, list(self.headers.items()), body, self.client_address[0]
        )
        try:
            with self.invoke_lock:
                result = self.api_handler(event, LocalContext())
            status = int(result.get("statusCode", 200))
            payload = result.get("body") or ""
            raw = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
            out_headers: list[tuple[str, str]] = []
            for name, values in (result.get("multiValueHeaders") or {}).items():
                out_headers.extend((name, str(v)) for v in values)
            seen = {name.lower() for name, _ in out_headers}
            for name, value in (result.get("headers") or {}).items():
                if name.lower() not in seen:
                    out_headers.append((name, str(value)))
        except Exception as exc:  # the handler must not crash the local server
            sys.stderr.write(f"handler failed: {type(exc).__name__}\n")
            status, raw = 502, b'{"message": "Internal server error"}'
            out_headers = [("Content-Type", "application/json")]
        self._status_for_log = status
        self.send_response_only(status)
        self.send_header("Date", self.date_time_string())
        for name, value in out_headers:
            if name.lower() not in {"content-length", "connection", "transfer-encoding"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(0 if self.command == "HEAD" else len(raw)))
        self.send_header("x-amzn-RequestId", event["requestContext"]["requestId"])
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(raw)
        self._log_access(status, time.perf_counter() - started)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _invoke

    def _refused(self, started: float) -> bool:
        """Answer a request that is not from this server's own page (origin_guard.py): 403
        for a foreign Host, Origin or site; 400 (the API's error model) for a body that is
        not JSON. True when answered."""
        address: Any = self.server.server_address
        own = own_hosts(str(address[0]), int(address[1]))
        # The console's static files take no body (a POST there is a 405 of their own).
        console = is_console_path(urlsplit(self.path).path)
        reason = refusal(
            self.command, self.headers, own, json_methods=() if console else BODY_METHODS
        )
        if reason is None:
            return False
        json_only = reason.startswith("only JSON")
        status, code = (400, "invalid_parameter") if json_only else (403, "forbidden")
        raw = json.dumps({"error": {"code": code, "message": reason}}).encode()
        self.send_response_only(status)
        self.send_header("Date", self.date_time_string())
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(raw)
        self._log_access(status, time.perf_counter() - started)
        return True

    def _console(self, started: float) -> None:
        """The console's static files, same origin as the API."""
        allowed = self.command in ("GET", "HEAD")
        answer = console_asset(urlsplit(self.path).path) if allowed else method_not_allowed()
        assert answer is not None
        status, content_type, raw = answer
        self.send_response_only(status)
        self.send_header("Date", self.date_time_string())
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(raw)))
        for name, value in CONSOLE_HEADERS.items():
            self.send_header(name, value)
        if not allowed:
            self.send_header("Allow", "GET, HEAD")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(raw)
        self._log_access(status, time.perf_counter() - started)

    def _log_access(self, status: int, seconds: float) -> None:
        path = urlsplit(self.path).path  # never the query string: phones travel there
        sys.stderr.write(
            f'{self.client_address[0]} "{self.command} {path}" {status} {seconds * 1000:.1f}ms\n'
        )

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # access lines come from _log_access (without the query string)

    def log_error(self, format: str, *args: Any) -> None:
        # Malformed requests: the request line may carry a query string, so only the code is shown.
        sys.stderr.write(f'{self.client_address[0]} "-" error {args[0] if args else ""}\n')


def route_to_functions() -> Handler:
    """One handler for the whole REST API: each resource goes to the function that serves it
    in the stack (POST /files/{file_id}/void: functions/void; the rest: functions/api)."""
    api = load_api_module().handler
    others = {res: import_function(name).handler for res, name in _OTHER_FUNCTIONS.items()}

    def dispatch(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return others.get(event.get("resource", ""), api)(event, context)

    return dispatch


def make_server(host: str, port: int, handler: Handler | None = None) -> ThreadingHTTPServer:
    """A server bound to (host, port) that runs the real API handlers; call serve_forever()."""
    api_handler = handler or route_to_functions()
    request_handler = type(
        "ApiRequestHandler",
        (_ApiRequestHandler,),
        {"api_handler": staticmethod(api_handler), "invoke_lock": threading.Lock()},
    )
    server = ThreadingHTTPServer((host, port), request_handler)
    server.daemon_threads = True
    return server


def run_server(host: str = "127.0.0.1", port: int = 3000) -> None:
    """Serve until Ctrl-C."""
    server = make_server(host, port)
    bound_host, bound_port = str(server.server_address[0]), int(server.server_address[1])
    sys.stderr.write(f"cardstatus API on http://{bound_host}:{bound_port} (Ctrl-C stops)\n")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.stderr.write("stopping\n")
    finally:
        server.server_close()
