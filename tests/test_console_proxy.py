"""`cardstatus console --api-url`: serves the console, forwards API calls signed with SigV4
(checked by a fake upstream), and refuses requests that do not come from its own page (issue
18 N4, N11: loopback only, a per-run token, Host/Origin on every method, no redirects, https
upstream, the API key never on the command line, CSP + nosniff on relayed answers)."""

from __future__ import annotations

import http.client
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from cardstatus_dev.cli import main
from cardstatus_dev.proxy import ProxyError, Signer, make_proxy, region_of

AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=AKIDTEST/\d{8}/eu-west-1/execute-api/aws4_request, "
    r"SignedHeaders=([a-z0-9;-]+), Signature=[0-9a-f]{64}$"
)


class Upstream:
    """A stand-in for API Gateway: records what arrives, answers canned JSON."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                upstream.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": body,
                    }
                )
                if "REDIRECT" in self.path:
                    self.send_response(302)
                    self.send_header("Location", upstream.url + "/stolen")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status, answer = (
                    (404, {"error": {"code": "not_found", "message": "no"}})
                    if "NOPE" in self.path
                    else (200, {"ok": self.path})
                )
                raw = json.dumps(answer).encode()
                self.send_response(status)
                ctype = "text/html" if "HTML" in self.path else "application/json"
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(raw)))
                self.send_header("Retry-After", "5")
                self.send_header("Set-Cookie", "never=forwarded")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(raw)

            do_GET = do_POST = do_HEAD = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    up = Upstream()
    thread = threading.Thread(target=up.server.serve_forever, daemon=True)
    thread.start()
    yield up
    up.server.shutdown()
    up.server.server_close()


TOKEN = "per-run-token-for-tests"


@pytest.fixture
def proxy(upstream: Upstream, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, int]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token123")
    server = make_proxy(
        upstream.url, port=0, region="eu-west-1", api_key="caller-key-1", token=TOKEN
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "127.0.0.1", int(server.server_address[1])
    server.shutdown()
    server.server_close()


def cookie(proxy: tuple[str, int], token: str = TOKEN) -> str:
    return f"cardstatus_console_{proxy[1]}={token}"


def call(
    proxy: tuple[str, int],
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    *,
    with_token: bool = True,
) -> tuple[int, dict[str, str], bytes]:
    """A request as the console page sends it: with this run's cookie (unless told not to)."""
    conn = http.client.HTTPConnection(*proxy, timeout=10)
    sent = dict(headers or {})
    if with_token:
        sent.setdefault("Cookie", cookie(proxy))
    conn.request(method, path, body=body, headers=sent)
    response = conn.getresponse()
    raw = response.read()
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, raw


def test_api_calls_are_forwarded_signed(proxy: tuple[str, int], upstream: Upstream) -> None:
    status, headers, raw = call(proxy, "GET", "/files?outcome=rejected_file&limit=5")
    assert status == 200 and json.loads(raw) == {"ok": "/v1/files?outcome=rejected_file&limit=5"}
    assert headers["retry-after"] == "5" and "set-cookie" not in headers
    sent = upstream.requests[-1]["headers"]
    match = AUTHORIZATION.match(sent["Authorization"])
    assert match, sent["Authorization"]
    assert "host" in match.group(1).split(";") and "x-amz-date" in match.group(1).split(";")
    assert re.fullmatch(r"\d{8}T\d{6}Z", sent["X-Amz-Date"])
    assert sent["X-Amz-Security-Token"] == "token123"
    assert {k.lower(): v for k, v in sent.items()}["x-api-key"] == "caller-key-1"  # usage plan

    body = json.dumps({"user_phone": "585949014"}).encode()
    status, _, raw = call(
        proxy, "POST", "/cards/search", body, {"Content-Type": "application/json"}
    )
    assert status == 200
    posted = upstream.requests[-1]
    assert posted["method"] == "POST" and posted["body"] == body
    assert AUTHORIZATION.match(posted["headers"]["Authorization"])
    assert (
        "x-amz-content-sha256" not in posted["headers"] or posted["headers"]["x-amz-content-sha256"]
    )

    status, _, raw = call(proxy, "GET", "/cards/NOPE")
    assert status == 404 and json.loads(raw)["error"]["code"] == "not_found"
    status, _, raw = call(proxy, "HEAD", "/health")
    assert (status, raw) == (200, b"")


def test_console_files_are_served_locally(proxy: tuple[str, int], upstream: Upstream) -> None:
    status, headers, raw = call(proxy, "GET", "/console?file=42")
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert headers["cache-control"] == "no-store" and b"<main" in raw
    assert call(proxy, "GET", "/console/console.js")[0] == 200
    assert call(proxy, "GET", "/console/..%2fcli.py")[0] == 404
    assert upstream.requests == []


def test_requests_from_elsewhere_are_refused(proxy: tuple[str, int], upstream: Upstream) -> None:
    host, port = proxy
    body = json.dumps({"reason": "x"}).encode()
    for method, headers in [
        ("POST", {"Content-Type": "text/plain"}),  # a cross-site "simple" request
        ("POST", {"Content-Type": "application/json", "Origin": "https://evil.example"}),
        ("GET", {"Host": f"evil.example:{port}"}),  # DNS rebinding
    ]:
        status, _, raw = call(proxy, method, "/files/1/void", body, headers)
        assert status == 403, (method, headers)
        assert json.loads(raw)["error"]["code"] == "forbidden"
    assert upstream.requests == []
    same_origin = {"Content-Type": "application/json", "Origin": f"http://{host}:{port}"}
    assert call(proxy, "POST", "/files/1/void", body, same_origin)[0] == 200


def test_unreachable_api_is_a_502(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    server = make_proxy("http://127.0.0.1:9/v1", port=0, region="eu-west-1", token=TOKEN)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        status, _, raw = call(("127.0.0.1", int(server.server_address[1])), "GET", "/files")
        assert status == 502 and json.loads(raw)["error"]["code"] == "bad_gateway"
    finally:
        server.shutdown()
        server.server_close()


def test_region_from_the_url_else_required(monkeypatch: pytest.MonkeyPatch) -> None:
    assert region_of("https://abc123.execute-api.eu-west-1.amazonaws.com/v1") == "eu-west-1"
    assert region_of("http://127.0.0.1:3000") is None
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(ProxyError, match="region"):
        make_proxy("http://127.0.0.1:1/v1", port=0)
    with pytest.raises(ProxyError, match="base URL"):
        make_proxy("ftp://example.com/v1", port=0, region="eu-west-1")


def test_no_credentials_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(ProxyError, match="no AWS credentials"):
        Signer(None, "eu-west-1")
    code = main(["console", "--api-url", "https://a.execute-api.eu-west-1.amazonaws.com/v1"])
    assert code == 2
    assert "no AWS credentials" in capsys.readouterr().err


# -- N4 / N11: the refusals ----------------------------------------------------------------------


def test_a_request_without_this_runs_token_is_refused(
    proxy: tuple[str, int], upstream: Upstream
) -> None:
    for path in ("/files", "/console", "/console/console.js", "/cards/ZYW8890"):
        status, _, raw = call(proxy, "GET", path, with_token=False)
        assert status == 403 and b"token" in raw, path
    status, _, _ = call(proxy, "GET", "/files", headers={"Cookie": cookie(proxy, "guess")})
    assert status == 403
    status, _, _ = call(proxy, "GET", "/files", headers={"Cookie": f"cardstatus_console_1={TOKEN}"})
    assert status == 403  # another port's cookie
    assert upstream.requests == []


def test_the_printed_url_sets_an_httponly_strict_cookie_and_drops_the_token(
    proxy: tuple[str, int], upstream: Upstream
) -> None:
    status, headers, _ = call(proxy, "GET", f"/console?file=42&token={TOKEN}", with_token=False)
    assert status == 303
    assert headers["location"] == "/console?file=42"
    assert headers["set-cookie"] == (f"{cookie(proxy)}; HttpOnly; SameSite=Strict; Path=/")
    status, headers, _ = call(proxy, "GET", "/console?token=wrong", with_token=False)
    assert status == 403 and "set-cookie" not in headers
    # With the cookie, the page and its calls work.
    assert call(proxy, "GET", "/console?file=42")[0] == 200
    assert call(proxy, "GET", "/files")[0] == 200


def test_the_console_url_carries_a_random_token(
    upstream: Upstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cardstatus_dev.proxy import console_url

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    servers = [make_proxy(upstream.url, port=0, region="eu-west-1") for _ in range(2)]
    try:
        urls = [console_url(server) for server in servers]
        tokens = [url.split("token=", 1)[1] for url in urls]
        assert tokens[0] != tokens[1] and all(len(t) >= 40 for t in tokens)
        assert urls[0].startswith("http://127.0.0.1:")
    finally:
        for server in servers:
            server.server_close()


@pytest.mark.parametrize(
    ("method", "headers"),
    [
        ("GET", {"Host": "evil.example:{port}"}),  # DNS rebinding, any method
        ("POST", {"Host": "evil.example:{port}", "Content-Type": "application/json"}),
        ("GET", {"Host": "127.0.0.1:1"}),  # right name, wrong port
        ("GET", {"Host": "127.0.0.1"}),  # no port
        ("GET", {"Origin": "https://evil.example"}),  # cross-site Origin on a GET too
        ("GET", {"Origin": "null"}),
        ("GET", {"Origin": "http://localhost:1"}),
        ("GET", {"Sec-Fetch-Site": "cross-site"}),  # <img src> from another site: no Origin
        ("GET", {"Sec-Fetch-Site": "same-site"}),  # another port of localhost
        ("POST", {"Content-Type": "text/plain"}),
        ("DELETE", {}),
    ],
)
def test_foreign_host_origin_and_sites_are_refused_with_a_valid_token(
    proxy: tuple[str, int], upstream: Upstream, method: str, headers: dict[str, str]
) -> None:
    sent = {k: v.format(port=proxy[1]) for k, v in headers.items()}
    status, _, raw = call(proxy, method, "/files/1/void", b"{}", sent)
    assert status == 403, (method, sent)
    assert json.loads(raw)["error"]["code"] == "forbidden"
    assert upstream.requests == []


def test_same_origin_fetches_pass(proxy: tuple[str, int], upstream: Upstream) -> None:
    host, port = proxy
    headers = {"Origin": f"http://{host}:{port}", "Sec-Fetch-Site": "same-origin"}
    assert call(proxy, "GET", "/files", headers=headers)[0] == 200
    assert call(proxy, "GET", "/files", headers={"Host": f"localhost:{port}"})[0] == 200


def test_upstream_redirects_are_not_followed(proxy: tuple[str, int], upstream: Upstream) -> None:
    status, _, raw = call(proxy, "GET", "/cards/REDIRECT")
    assert status == 502 and b"redirect" in raw
    assert [r["path"] for r in upstream.requests] == ["/v1/cards/REDIRECT"]  # not /stolen


def test_relayed_answers_are_json_that_runs_nothing(
    proxy: tuple[str, int], upstream: Upstream
) -> None:
    status, headers, _ = call(proxy, "GET", "/files/HTML")
    assert status == 200
    assert headers["content-type"] == "application/json"  # not the upstream's text/html
    assert headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in headers["content-security-policy"]
    assert "sandbox" in headers["content-security-policy"]


def test_plain_http_apis_and_non_loopback_binds_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    with pytest.raises(ProxyError, match="https"):
        make_proxy("http://abc.execute-api.eu-west-1.amazonaws.com/v1", port=0)
    with pytest.raises(ProxyError, match="not a loopback address"):
        make_proxy("https://abc.execute-api.eu-west-1.amazonaws.com/v1", host="0.0.0.0", port=0)
    with pytest.raises(ProxyError, match="one specific address"):
        make_proxy(
            "https://abc.execute-api.eu-west-1.amazonaws.com/v1",
            host="0.0.0.0",
            port=0,
            allow_remote=True,
        )


def test_a_remote_client_is_refused_without_allow_remote(
    proxy: tuple[str, int], upstream: Upstream
) -> None:
    """The handler also checks the client's address (a loopback bind cannot be reached from
    elsewhere; this proves the second check on its own)."""
    from cardstatus_dev import proxy as proxy_module

    handler = proxy_module._ProxyHandler.__new__(proxy_module._ProxyHandler)
    handler.client_address = ("192.0.2.7", 5555)
    handler.allow_remote = False
    assert handler._refusal() is not None and "--allow-remote" in str(handler._refusal())


def test_the_api_key_never_comes_from_the_command_line(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from cardstatus_dev.proxy import read_api_key

    code = main(
        [
            "console",
            "--api-url",
            "https://a.execute-api.eu-west-1.amazonaws.com/v1",
            "--api-key",
            "SECRET-42",
        ]
    )
    assert code == 2 and "not accepted" in capsys.readouterr().err
    key_file = tmp_path / "key"
    key_file.write_text("from-a-file\n")
    monkeypatch.setenv("CARDSTATUS_API_KEY", "from-env")
    assert read_api_key(str(key_file)) == "from-a-file"
    assert read_api_key(None) == "from-env"
    with pytest.raises(ProxyError, match="cannot read"):
        read_api_key(str(tmp_path / "missing"))
