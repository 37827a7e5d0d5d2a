"""`cardstatus console --api-url URL`: the ops console for a deployed stack.

A local HTTP server that serves the console's files (console_assets.py) and forwards every
other request (/files, /cards/search, /stuck_cards, ...) to the deployed API, signed with the
user's own AWS credentials (botocore SigV4, service `execute-api`): the API's IAM auth is the
only auth, nothing new. The region comes from the API's host name
(`<id>.execute-api.<region>.amazonaws.com`), else --region, else the profile's.

It signs whatever reaches it, so it only serves its own page, opened by the one person who
started it (README "Ops console for a deployed stack"; issue 18 N4, N11):

* bound to loopback; another address is refused unless `--allow-remote` (a specific
  address, never 0.0.0.0), and then only the token below keeps the network out;
* a per-run random token, in the URL it prints (`/console?token=...`): that first request
  sets it as an HttpOnly, SameSite=Strict cookie (and is redirected to the URL without
  it); every request, the console's files included, needs the cookie;
* Host (with its port), Origin and Sec-Fetch-Site are checked on every method, and a request
  with a body must be JSON (origin_guard.py);
* upstream: https only (http only to a loopback API), redirects are never followed (an
  answer 3xx is a 502: the signature, session token and API key go nowhere else);
* the API key comes from $CARDSTATUS_API_KEY or `--api-key-file`, never from the command
  line (which `ps` shows);
* relayed answers are JSON with `nosniff` and a CSP that runs nothing.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from cardstatus_dev.console_assets import (
    CONSOLE_HEADERS,
    console_asset,
    is_console_path,
    method_not_allowed,
)
from cardstatus_dev.origin_guard import is_loopback, is_unspecified, own_hosts, refusal

SERVICE = "execute-api"
_REGION_IN_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")
# Request headers passed on to the API, and response headers passed back.
# X-Cardstatus-Operator: the operator's name from the console, recorded with a void after the
# IAM identity whose credentials sign the call (functions/void/app.py caller_identity).
FORWARD_REQUEST_HEADERS = ("Content-Type", "Accept", "X-Cardstatus-Operator")
FORWARD_RESPONSE_HEADERS = ("Content-Type", "Retry-After", "Allow", "x-amzn-RequestId")
UPSTREAM_TIMEOUT_S = 30
TOKEN_PARAM = "token"  # noqa: S105 (the query parameter's name, not a secret)
# Relayed API answers: JSON that nothing may run or frame.
RELAY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; sandbox",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}
API_KEY_ENV = "CARDSTATUS_API_KEY"


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: the request carries the signature, the session token and the
    API key, which must not reach another URL. The 3xx comes back as an HTTPError."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


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
    token: str = ""
    allow_remote: bool = False

    def _handle(self) -> None:
        started = time.perf_counter()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else None
        path = urlsplit(self.path).path
        refused = self._refusal()
        if refused:
            status = self._reply(403, "application/json", _error("forbidden", refused), {})
        elif self._token_in_url():
            status = self._accept_token()
        elif not self._has_token():
            message = (
                "open the console with the URL `cardstatus console` printed: it carries this "
                "run's token"
            )
            status = self._reply(403, "application/json", _error("forbidden", message), {})
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

    @property
    def cookie_name(self) -> str:
        # Cookies are not separated by port: one name per proxy port.
        address: Any = self.server.server_address
        return f"cardstatus_console_{int(address[1])}"

    def _refusal(self) -> str | None:
        """Why this request is refused (not from this server's own page), else None."""
        client = str(self.client_address[0])
        if not self.allow_remote and not is_loopback(client):
            return "this proxy only serves its own machine (start it with --allow-remote)"
        address: Any = self.server.server_address
        own = own_hosts(str(address[0]), int(address[1]))
        methods = tuple(m for m in ("POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
        return refusal(self.command, self.headers, own, json_methods=methods)

    def _token_in_url(self) -> bool:
        query = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
        given = query.get(TOKEN_PARAM)
        return given is not None and self.command in ("GET", "HEAD")

    def _accept_token(self) -> int:
        """The printed URL: a right token becomes the cookie, and the browser is sent to the
        same URL without it (so it is not kept in the history or sent onwards)."""
        split = urlsplit(self.path)
        pairs = parse_qsl(split.query, keep_blank_values=True)
        given = dict(pairs).get(TOKEN_PARAM, "")
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return self._reply(
                403, "application/json", _error("forbidden", "this is not this run's token"), {}
            )
        rest = urlencode([(k, v) for k, v in pairs if k != TOKEN_PARAM])
        location = urlunsplit(("", "", split.path or "/console", rest, ""))
        cookie = f"{self.cookie_name}={self.token}; HttpOnly; SameSite=Strict; Path=/"
        return self._reply(
            303,
            "application/json",
            b"{}",
            {"Location": location, "Set-Cookie": cookie, "Cache-Control": "no-store"},
        )

    def _has_token(self) -> bool:
        for part in (self.headers.get("Cookie") or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == self.cookie_name and hmac.compare_digest(
                value.encode(), self.token.encode()
            ):
                return True
        return False

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
        # The scheme was checked in make_proxy (https, or http to a loopback API).
        request = urllib.request.Request(  # noqa: S310
            url, data=body, headers=signed, method=self.command
        )
        try:
            with _OPENER.open(request, timeout=UPSTREAM_TIMEOUT_S) as response:
                return self._relay(response.status, response.headers, response.read())
        except urllib.error.HTTPError as exc:
            if 300 <= exc.code < 400:
                message = f"the API answered with a redirect ({exc.code}), which is not followed"
                return self._reply(502, "application/json", _error("bad_gateway", message), {})
            return self._relay(exc.code, exc.headers, exc.read())
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            message = f"the API at {self.api_url} did not answer: {reason}"
            return self._reply(502, "application/json", _error("bad_gateway", message), {})

    def _relay(self, status: int, headers: Any, raw: bytes) -> int:
        passed = {n: v for n in FORWARD_RESPONSE_HEADERS if (v := headers.get(n)) is not None}
        passed.pop("Content-Type", None)  # always JSON: the API answers nothing else
        return self._reply(status, "application/json", raw, {**passed, **RELAY_HEADERS})

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


def read_api_key(path: str | None) -> str | None:
    """The caller's API key: from --api-key-file, else $CARDSTATUS_API_KEY, else None. Never
    from the command line (process lists show arguments)."""
    import os

    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                key = handle.read().strip()
        except OSError as exc:
            raise ProxyError(f"cannot read the API key file {path}: {exc.strerror}") from None
        if not key:
            raise ProxyError(f"the API key file {path} is empty")
        return key
    return os.environ.get(API_KEY_ENV) or None


def check_api_url(api_url: str) -> None:
    """https://host/<stage> (http only to a loopback API, e.g. `cardstatus serve`)."""
    split = urlsplit(api_url)
    if split.scheme not in ("https", "http") or not split.netloc or split.query:
        raise ProxyError(f"--api-url must be the API's base URL (https://…/<stage>), got {api_url}")
    if split.scheme == "http" and not is_loopback(split.hostname or ""):
        raise ProxyError(
            f"--api-url must use https (got {api_url}): the signature, the session token, the "
            "API key and the answers would cross the network in clear text"
        )


def check_bind(host: str, allow_remote: bool) -> None:
    """Loopback only, unless --allow-remote with one specific address."""
    if is_loopback(host):
        return
    if not allow_remote:
        raise ProxyError(
            f"--host {host} is not a loopback address: anyone who can reach it could sign calls "
            "as you; keep 127.0.0.1, or pass --allow-remote (the per-run token then guards it)"
        )
    if is_unspecified(host):
        raise ProxyError("--allow-remote needs one specific address for --host, not every one")


def make_proxy(
    api_url: str,
    host: str = "127.0.0.1",
    port: int = 8080,
    profile: str | None = None,
    region: str | None = None,
    signer: Signer | None = None,
    api_key: str | None = None,
    *,
    allow_remote: bool = False,
    token: str | None = None,
) -> ThreadingHTTPServer:
    """The console proxy bound to (host, port); call serve_forever(). `server.console_token`
    is this run's token (a new random one unless given)."""
    check_api_url(api_url)
    check_bind(host, allow_remote)
    signer = signer or Signer(profile, _region(api_url, region, profile))
    run_token = token or secrets.token_urlsafe(32)
    handler = type(
        "ProxyHandler",
        (_ProxyHandler,),
        {
            "api_url": api_url.rstrip("/"),
            "sign": staticmethod(signer.headers),
            "api_key": api_key,
            "token": run_token,
            "allow_remote": allow_remote,
        },
    )
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    server.console_token = run_token  # type: ignore[attr-defined]
    return server


def console_url(server: ThreadingHTTPServer) -> str:
    """The URL to open: the console, with this run's token."""
    host, port = str(server.server_address[0]), int(server.server_address[1])
    shown = f"[{host}]" if ":" in host else host
    token = server.console_token  # type: ignore[attr-defined]
    return f"http://{shown}:{port}/console?{TOKEN_PARAM}={token}"


def run_proxy(
    api_url: str,
    host: str,
    port: int,
    profile: str | None,
    region: str | None,
    api_key: str | None = None,
    allow_remote: bool = False,
) -> None:
    """Serve until Ctrl-C."""
    server = make_proxy(
        api_url, host, port, profile, region, api_key=api_key, allow_remote=allow_remote
    )
    who = f"profile {profile}" if profile else "your default AWS credentials"
    sys.stderr.write(
        f"cardstatus console → {api_url} (signed with {who}; Ctrl-C stops)\n"
        f"open {console_url(server)}\n"
        "(the token in this URL is this run's key to the proxy: do not share it)\n"
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.stderr.write("stopping\n")
    finally:
        server.server_close()
