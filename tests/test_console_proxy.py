"""`cardstatus console --api-url`: serves the console, forwards API calls signed with SigV4
(checked by a fake upstream), and refuses requests that do not come from its own page."""

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
                status, answer = (
                    (404, {"error": {"code": "not_found", "message": "no"}})
                    if "NOPE" in self.path
                    else (200, {"ok": self.path})
                )
                raw = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
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


@pytest.fixture
def proxy(upstream: Upstream, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, int]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token123")
    server = make_proxy(upstream.url, port=0, region="eu-west-1", api_key="caller-key-1")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "127.0.0.1", int(server.server_address[1])
    server.shutdown()
    server.server_close()


def call(
    proxy: tuple[str, int],
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(*proxy, timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
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
    server = make_proxy("http://127.0.0.1:9/v1", port=0, region="eu-west-1")
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
