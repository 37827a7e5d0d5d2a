"""No 5xx from bad input (issue 18 N6): each malformed input of the review is a 400 with the
error model, in the API and in the void function."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import Api, FakeContext, event_for

from cardstatus import ops, request_guard

EVENTS = Path(__file__).resolve().parents[2] / "events"


def _cursor(*key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def _post(path: str, body: str, content_type: str | None) -> dict[str, Any]:
    event = event_for(path, method="POST")
    headers = {"Content-Type": content_type} if content_type is not None else {}
    event["headers"] = headers or None
    event["multiValueHeaders"] = {k: [v] for k, v in headers.items()} or None
    event["body"] = body
    return event


DEEP = "[" * 100_000 + "]" * 100_000  # the review's case (also over the size limit)
DEEP_40 = "[" * 40 + "]" * 40

# (path, query) of the review's N6 table plus their neighbours.
BAD_QUERIES = [
    ("/files", {"since": "2026-01-01T00:00:00+20:00"}),
    ("/files", {"since": "2026-01-01T00:00:00+23:59:59.999999"}),
    ("/files", {"since": "2026-01-01T00:00:00-16:00"}),
    ("/files", {"since": "2026-01-01T00:00:00+05:30:30"}),  # odd offset (seconds)
    ("/files", {"since": "2026-01-01\x00"}),
    ("/files/12/rejects", {"cursor": _cursor("rejects", 99999999999)}),
    ("/files/12/rejects", {"cursor": _cursor("rejects", -(2**40))}),
    ("/files", {"cursor": _cursor("files", "2026-01-01T00:00:00+00:00", 99999999999999999999)}),
    ("/files", {"cursor": _cursor("files", "2026-01-01T00:00:00+20:00", 1)}),
    ("/files", {"cursor": _cursor("files", "2026-01-01T00:00:00", 1)}),  # naive
    ("/stuck_cards", {"cursor": _cursor("stuck", "2026-01-01T00:00:00+20:00", "A")}),
    ("/stuck_cards", {"cursor": _cursor("stuck", "2026-01-01T00:00:00+00:00", "A\u0000B")}),
    ("/stuck_cards", {"cursor": _cursor("stuck", "2026-01-01T00:00:00+00:00", "")}),
    ("/stuck_cards", {"cursor": "%00"}),
    ("/get_card_status", {"card_id": "A\x00B"}),
    ("/cards", {"user_phone": "0585\x00949014"}),
]


@pytest.mark.parametrize(("path", "query"), BAD_QUERIES)
def test_bad_query_parameters_are_400(
    api: Api, seeded: Any, path: str, query: dict[str, str]
) -> None:
    status, _, body = api.call(event_for(path, query))
    assert status == 400, body
    assert body["error"]["code"] in ("invalid_parameter", "missing_parameter")


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        ('{"card_id": "ZYW8890"}', "text/plain", request_guard.NOT_JSON),
        ('{"card_id": "ZYW8890"}', None, request_guard.NOT_JSON),
        ("card_id=ZYW8890", "application/x-www-form-urlencoded", request_guard.NOT_JSON),
        ("--x\r\n\r\n--x--", "multipart/form-data; boundary=x", request_guard.NOT_JSON),
        (DEEP, "application/json", request_guard.TOO_LARGE),
        (DEEP_40, "application/json", request_guard.TOO_DEEP),
        ('{"card_id": "ZYW\\u00008890"}', "application/json", None),
        ('{"user_phone": "0585\\u0000949014"}', "application/json", None),
        ("not json", "application/json", None),
        ('"just a string"', "application/json; charset=utf-8", None),
    ],
    ids=lambda v: str(v)[:40],
)
def test_bad_search_bodies_are_400(
    api: Api, seeded: Any, body: str, content_type: str | None, message: str | None
) -> None:
    status, _, answer = api.call(_post("/cards/search", body, content_type))
    assert status == 400, answer
    assert answer["error"]["code"] == "invalid_parameter"
    if message:
        assert answer["error"]["message"] == message


def test_a_json_search_with_charset_is_still_answered(api: Api, seeded: Any) -> None:
    event = _post("/cards/search", '{"card_id": "ZYW8890"}', "application/json; charset=utf-8")
    assert api.call(event)[0] == 200


def test_parse_since_and_cursors_refuse_what_postgresql_would_fail_on() -> None:
    from cardstatus.errors import InvalidParameter

    assert ops.parse_since("2026-01-01T00:00:00+15:59") is not None
    assert ops.parse_since("2026-01-01T00:00:00-15:59") is not None
    for bad in ("2026-01-01T00:00:00+16:00", "2026-01-01T00:00:00+00:00:01"):
        with pytest.raises(InvalidParameter):
            ops.parse_since(bad)
    assert ops.decode_cursor(_cursor("rejects", 2**31 - 1), "rejects", (int,)) == [2**31 - 1]
    with pytest.raises(InvalidParameter):
        ops.decode_cursor(_cursor("rejects", 2**31), "rejects", (int,))
    assert ops.decode_cursor(_cursor("x", 2**63 - 1), "x", (int,)) == [2**63 - 1]
    with pytest.raises(InvalidParameter):
        ops.decode_cursor(_cursor("x", 2**63), "x", (int,))


def test_json_depth_ignores_brackets_in_strings() -> None:
    assert request_guard.json_depth('{"a": "[[[[[[", "b": [[1]]}') == 3
    assert request_guard.json_depth('"\\"[[["') == 0
    assert request_guard.json_depth(DEEP) == 100_000


# -- the void function ------------------------------------------------------------------------


@pytest.fixture
def void_app(db_url: str) -> Iterator[Any]:
    from cardstatus_dev.paths import import_function

    app = import_function("void")
    app.DB.reset_settings(None)
    yield app
    app.DB.discard()


def _void_event(body: str, content_type: str | None) -> dict[str, Any]:
    event = json.loads((EVENTS / "void" / "void_file.json").read_text())
    headers = {k: v for k, v in event["headers"].items() if k.lower() != "content-type"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    event["headers"] = headers
    event["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
    event["body"] = body
    return event


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('{"reason": "wrong file"}', "text/plain"),
        ('{"reason": "wrong file"}', None),
        ("reason=wrong+file", "application/x-www-form-urlencoded"),
        (DEEP, "application/json"),
        ('{"reason": "a\\u0000b"}', "application/json"),
        ('{"reason": "a\\u0007b"}', "application/json"),
        ("[1, 2]", "application/json"),
        (DEEP_40, "application/json"),
    ],
    ids=lambda v: str(v)[:40],
)
def test_bad_void_bodies_are_400(
    void_app: Any, db: Any, body: str, content_type: str | None
) -> None:
    response = void_app.handler(_void_event(body, content_type), FakeContext())
    answer = json.loads(response["body"])
    assert response["statusCode"] == 400, answer
    assert set(answer) == {"error"} and set(answer["error"]) == {"code", "message"}
    assert answer["error"]["code"] in ("invalid_parameter", "missing_parameter")
