"""What every JSON request body must be before a handler parses it (issue 18 N6/N10; README
"Caller roles" and "No 5xx from bad input").

A POST must say `Content-Type: application/json` (what a cross-site page cannot send without
a CORS preflight, which nothing here grants; and what keeps a text/plain or form body from
being guessed at), and its JSON must not nest deeper than `MAX_JSON_DEPTH` (a 100 000-deep
array would exhaust the parser's recursion: a 500). `json_body_problem` answers with the
reason (for a 400 with the error model) or None; the API and the void function call it before
Powertools parses the body.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

JSON_CONTENT_TYPE = "application/json"
MAX_JSON_DEPTH = 32
MAX_BODY_BYTES = 64 * 1024
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

NOT_JSON = "the body must be JSON, sent with Content-Type: application/json"
TOO_DEEP = f"the JSON body is nested more than {MAX_JSON_DEPTH} levels deep"
TOO_LARGE = f"the body is larger than {MAX_BODY_BYTES} bytes"


def header(event: dict[str, Any], name: str) -> str | None:
    """A request header of a proxy event, case-insensitively (last value wins)."""
    wanted = name.lower()
    for key, values in (event.get("multiValueHeaders") or {}).items():
        if key.lower() == wanted and values:
            return str(values[-1])
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == wanted and value is not None:
            return str(value)
    return None


def is_json_content_type(value: str | None) -> bool:
    """`application/json`, optionally with parameters (`; charset=utf-8`)."""
    return (value or "").split(";", 1)[0].strip().lower() == JSON_CONTENT_TYPE


def json_depth(text: str) -> int:
    """The deepest nesting of arrays/objects in a JSON text (brackets inside strings do not
    count); a linear scan that never recurses."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def body_text(event: dict[str, Any]) -> str | None:
    """The body as text (base64 decoded), None when it is not UTF-8."""
    body = event.get("body")
    if body is None:
        return ""
    if not event.get("isBase64Encoded"):
        return str(body)
    try:
        return base64.b64decode(str(body), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None


def json_body_problem(event: dict[str, Any]) -> str | None:
    """Why the body of this request cannot be parsed as the JSON it must be, else None.
    Requests without a body method (GET, HEAD, ...) have no problem here."""
    if str(event.get("httpMethod") or "").upper() not in BODY_METHODS:
        return None
    if not is_json_content_type(header(event, "Content-Type")):
        return NOT_JSON
    text = body_text(event)
    if text is None:
        return NOT_JSON
    if len(text) > MAX_BODY_BYTES:
        return TOO_LARGE
    if json_depth(text) > MAX_JSON_DEPTH:
        return TOO_DEEP
    return None
