"""`cardstatus console --api-url URL`: the ops console for a deployed stack.

A local HTTP server that serves the console's files (console_assets.py) and forwards every
other request (/files, /cards/search, /stuck_cards, ...) to the deployed API, signed with the
user's own AWS credentials (botocore SigV4, service `execute-api`): the API's IAM auth is the
only auth, nothing new. The region comes from the API's host name
(`<id>.execute-api.<region>.amazonaws.com`), else --region, else the profile's.

It signs whatever reaches it, so it only takes requests from its own page: bound to
127.0.0.1 by default, a Host header other than its own address is refused (DNS rebinding),
as is an Origin other than its own, and a request that is not GET/HEAD must be JSON (which a
cross-site page cannot send without a CORS preflight, which this server never grants).
"""

from __future__ import annotations

import json
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from cardstatus_dev.console_assets import (
    CONSOLE_HEADERS,
    console_asset,
    is_console_path,
    method_not_allowed,
)

SERVICE = "execute-api"
_REGION_IN_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")
# Request headers passed on to the API, and response headers passed back.
# X-Cardstatus-Operator: the operator's name from the console, recorded with a void after the
# IAM identity whose credentials sign the call (functions/void/app.py caller_identity).
FORWARD_REQUEST_HEADERS = ("Content-Type", "Accept", "X-Cardstatus-Operator")
FORWARD_RESPONSE_HEADERS = ("Content-Type", "Retry-After", "Allow", "x-amzn-RequestId")
UPSTREAM_TIMEOUT_S = 30


class ProxyError(Exception):
    """The proxy cannot start as asked (no credentials, no region, bad URL)."""


def region_of(api_url: str) -> str | None:
    """The region in an execute-api host name, else None."""
    host = urlsplit(api_url).hostname or ""
    match = _REGION_IN_HOST.search(host)
    return match.group(1) if match else None


class Signer:
    """Signs requests with the credentials of a botocore session (refreshed as they expire)."""

    def __init__(self, profile: str | None, region: str) -> None:
        import botocore.session

        session = botocore.session.Session(profile=profile)
        credentials = session.get_credentials()
        if credentials is None:
            raise ProxyError(
                "no AWS credentials found"
                + (f" for profile {profile}" if profile else "")
                + ": run `aws configure` / `aws sso login`, or pass --profile"
            )
        self.credentials = credentials
        self.region = region

    def headers(
        self, method: str, url: str, body: bytes | None, headers: dict[str, str]
    ) -> dict[str, str]:
        """headers plus the SigV4 ones (Authorization, X-Amz-Date, X-Amz-Security-Token)."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method=method, url=url, data=body or b"", headers=headers)
        SigV4Auth(self.credentials.get_frozen_credentials(), SERVICE, self.region).add_auth(request)
        return dict(request.headers.items())


def _region(api_url: str, region: str | None, profile: str | None) -> str:
    found = region_of(api_url) or region
    if not found:
        import botocore.session

        found = botocore.session.Session(profile=profile).get_config_variable("region")
    if not found:
        raise ProxyError("cannot tell the API's region: pass --region (e.g. eu-west-1)")
    return str(found)


class _ProxyHandler(BaseHTTPRequestHandler):
    server_version = "cardstatus-console"
    protocol_version = "HTTP/1.1"
    api_url: str
    sign: Callable[[str, str, bytes | None, dict[str, str]], dict[str, str]]
    api_key: str | None = None

    def _handle(self) -> None:
        started = time.perf_counter()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else None
        path = urlsplit(self.path).path
        refused = self._refusal()
        if refused:
            status = self._reply(403, "application/json", _error("forbidden", refused), {})
        elif is_console_path(path):
            allowed = self.command in ("GET", "HEAD")
            answer = console_asset(path) if allowed else method_not_allowed()
            assert answer is not None
            status = self._reply(*answer, CONSOLE_HEADERS)
        else:
            status = self._forward(body)
        path_only = urlsplit(self.path).path  # never the query string: phones travel there
        took_ms = (time.perf_counter() - started) * 1000
        sys.stderr.write(f'"{self.command} {path_only}" {status} {took_ms:.0f}ms\n')

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _handle

    def _refusal(self) -> str | None:
        """Why this request is refused (not from this server's own page), else None."""
        address: Any = self.server.server_address
        host, port = str(address[0]), int(address[1])
        own = {f"{h}:{port}" for h in (host, "127.0.0.1", "localhost", "[::1]")}
        if (self.headers.get("Host") or "") not in own:
            return "requests must be addressed to this proxy by its own address"
        origin = self.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc not in own:
            return "cross-origin requests are refused"
        if self.command not in ("GET", "HEAD"):
            content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
            if content_type != "application/json":
                return "only JSON requests are forwarded"
        return None

    def _forward(self, body: bytes | None) -> int:
        url = self.api_url.rstrip("/") + self.path
        headers = {
            name: value
            for name in FORWARD_REQUEST_HEADERS
            if (value := self.headers.get(name)) is not None
        }
        if self.api_key:  # the caller's usage-plan key (docs/DEPLOY.md "Callers")
            headers["x-api-key"] = self.api_key
        signed = self.sign(self.command, url, body, headers)
        # The scheme was checked in make_proxy (http or https only).
        request = urllib.request.Request(  # noqa: S310
            url, data=body, headers=signed, method=self.command
        )
        try:
            with urllib.request.urlopen(  # noqa: S310
                request, timeout=UPSTREAM_TIMEOUT_S
            ) as response:
                return self._relay(response.status, response.headers, response.read())
        except urllib.error.HTTPError as exc:
            return self._relay(exc.code, exc.headers, exc.read())
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            message = f"the API at {self.api_url} did not answer: {reason}"
            return self._reply(502, "application/json", _error("bad_gateway", message), {})

    def _relay(self, status: int, headers: Any, raw: bytes) -> int:
        passed = {n: v for n in FORWARD_RESPONSE_HEADERS if (v := headers.get(n)) is not None}
        content_type = passed.pop("Content-Type", "application/json")
        return self._reply(status, content_type, raw, passed)

    def _reply(self, status: int, content_type: str, raw: bytes, headers: dict[str, str]) -> int:
        self.send_response_only(status)
        self.send_header("Date", self.date_time_string())
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(raw)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(raw)
        return status

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass

    def log_error(self, format: str, *args: Any) -> None:
        sys.stderr.write(f'"-" error {args[0] if args else ""}\n')


def _error(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


def make_proxy(
    api_url: str,
    host: str = "127.0.0.1",
    port: int = 8080,
    profile: str | None = None,
    region: str | None = None,
    signer: Signer | None = None,
    api_key: str | None = None,
) -> ThreadingHTTPServer:
    """The console proxy bound to (host, port); call serve_forever()."""
    split = urlsplit(api_url)
    if split.scheme not in ("https", "http") or not split.netloc or split.query:
        raise ProxyError(f"--api-url must be the API's base URL (https://…/<stage>), got {api_url}")
    signer = signer or Signer(profile, _region(api_url, region, profile))
    handler = type(
        "ProxyHandler",
        (_ProxyHandler,),
        {"api_url": api_url.rstrip("/"), "sign": staticmethod(signer.headers), "api_key": api_key},
    )
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def run_proxy(
    api_url: str,
    host: str,
    port: int,
    profile: str | None,
    region: str | None,
    api_key: str | None = None,
) -> None:
    """Serve until Ctrl-C."""
    server = make_proxy(api_url, host, port, profile, region, api_key=api_key)
    bound = f"http://{server.server_address[0]!s}:{server.server_address[1]}"
    who = f"profile {profile}" if profile else "your default AWS credentials"
    sys.stderr.write(
        f"cardstatus console on {bound}/console → {api_url} (signed with {who}; Ctrl-C stops)\n"
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.stderr.write("stopping\n")
    finally:
        server.server_close()
