"""Who may talk to the local servers (`cardstatus serve` / `local`, and the `cardstatus
console` signing proxy): only their own page (issue 18 N4, N10, N11; README "Local servers
accept only their own page").

* **Host** (with its port) must name the server itself: a loopback name, or the address it
  is bound to. Any other Host is DNS rebinding: a page on another name reaching this port.
* **Origin**, on every method, must be the server's own origin when present.
* **Sec-Fetch-Site** (sent by browsers) must be `same-origin` or `none` (typed in the address
  bar): an `<img>` or a form of another site (`cross-site`, or another port of localhost,
  `same-site`) carries no Origin on a GET, but does carry this.
* A request with a body (POST/PUT/PATCH) must say `Content-Type: application/json`, which a
  page of another origin cannot send without a CORS preflight that these servers never grant.

`refusal(...)` answers with the reason, or None when the request may go on.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
ALLOWED_FETCH_SITES = ("same-origin", "none")
BODY_METHODS = ("POST", "PUT", "PATCH")


def is_loopback(address: str) -> bool:
    """127.0.0.0/8, ::1 or `localhost`."""
    host = address.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_unspecified(address: str) -> bool:
    """0.0.0.0 or :: (every interface)."""
    try:
        return ipaddress.ip_address(address.strip("[]")).is_unspecified
    except ValueError:
        return False


def own_hosts(bound_host: str, port: int) -> frozenset[str]:
    """The Host values (with the port) that name this server."""
    names = set(LOOPBACK_NAMES)
    if bound_host and not is_unspecified(bound_host):
        names.add(f"[{bound_host}]" if ":" in bound_host else bound_host)
    return frozenset(f"{name}:{port}" for name in names)


def _header(headers: Any, name: str) -> str | None:
    value = headers.get(name)
    return None if value is None else str(value)


def refusal(
    method: str,
    headers: Any,
    own: frozenset[str],
    *,
    json_methods: tuple[str, ...] = BODY_METHODS,
) -> str | None:
    """Why a request is not from this server's own page, else None. `headers`: a mapping or
    the `email.message.Message` of http.server (case-insensitive `get`)."""
    if (_header(headers, "Host") or "").lower() not in own:
        return "requests must be addressed to this server by its own address (Host)"
    origin = _header(headers, "Origin")
    if origin is not None and urlsplit(origin).netloc.lower() not in own:
        return "cross-origin requests are refused (Origin)"
    if origin is not None and urlsplit(origin).scheme != "http":
        return "cross-origin requests are refused (Origin)"
    site = _header(headers, "Sec-Fetch-Site")
    if site is not None and site.lower() not in ALLOWED_FETCH_SITES:
        return "requests from other sites are refused (Sec-Fetch-Site)"
    if method.upper() in json_methods:
        content_type = (_header(headers, "Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            return "only JSON requests are accepted (Content-Type: application/json)"
    return None
