"""Every route and error class through the real handler, with the events/api samples."""

from __future__ import annotations

import json
from typing import Any

import pytest
from api_helpers import Api, event_for, load_event


def test_by_card_id_returns_current_status_and_history(api: Api, seeded: Any) -> None:
    status, headers, body = api.call(load_event("get_card_status_by_card_id"))
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert body["card_id"] == "ZYW8890"
    assert body["status"] == "RETURNED"
    assert body["status_at"] == "2023-11-14T08:00:00Z"
    assert body["user_phone"] == "********4534"
    assert body["picked_up_at"] == "2023-11-11T23:45:00Z"
    assert body["delivered_at"] is None
    assert body["returned_at"] == "2023-11-14T08:00:00Z"
    assert body["exception_count"] == 1
    assert [h["status"] for h in body["history"]] == ["RETURNED", "DELIVERY_EXCEPTION", "PICKED_UP"]
    exception = body["history"][1]
    file_id, line = exception.pop("file_id"), exception.pop("line")
    assert exception == {
        "status": "DELIVERY_EXCEPTION",
        "at": "2023-11-13T10:00:00Z",
        "comment": "User not available",
        "reason": "recipient_unavailable",
        "partner": "default",
    }
    # Linked to the file and line it came from (SPEC §9b).
    assert isinstance(file_id, int) and isinstance(line, int) and line >= 2
    assert body["other_cards"] == []


def test_by_phone_returns_that_card(api: Api, seeded: Any) -> None:
    status, _, body = api.call(load_event("get_card_status_by_phone"))
    assert status == 200
    assert (body["card_id"], body["status"]) == ("ZYW7631", "DELIVERED")
    assert body["user_phone"] == "********6586"
    assert body["history"][1]["reason"] == "refused"
    assert body["other_cards"] == []


def test_by_phone_with_several_cards_gives_latest_plus_others(api: Api, seeded: Any) -> None:
    status, _, body = api.call(load_event("get_card_status_by_phone_several_cards"))
    assert status == 200
    assert body["card_id"] == "ZYW8827"
    assert body["other_cards"] == [
        {"card_id": "ZYW1111", "status": "DELIVERED", "status_at": "2023-10-02T08:00:00Z"}
    ]


def test_by_card_and_phone_of_the_same_card(api: Api, seeded: Any) -> None:
    status, _, body = api.call(load_event("get_card_status_by_both"))
    assert status == 200
    assert body["card_id"] == "ZYW7631"


def test_both_given_with_other_cards_of_that_phone(api: Api, seeded: Any) -> None:
    event = event_for("/get_card_status", {"card_id": "ZYW1111", "user_phone": "585949014"})
    status, _, body = api.call(event)
    assert status == 200
    assert body["card_id"] == "ZYW1111"
    assert [c["card_id"] for c in body["other_cards"]] == ["ZYW8827"]


def test_card_without_phone(api: Api, seeded: Any) -> None:
    status, _, body = api.call(event_for("/get_card_status", {"card_id": "NOPHONE1"}))
    assert status == 200
    assert body["user_phone"] is None


def test_get_card_by_path(api: Api, seeded: Any) -> None:
    status, _, body = api.call(load_event("get_card_by_id"))
    assert status == 200
    assert body["card_id"] == "ZYW8890"
    assert "other_cards" not in body
    assert len(body["history"]) == 3


def test_list_cards_by_phone_newest_first(api: Api, seeded: Any) -> None:
    status, _, body = api.call(load_event("list_cards_by_phone"))
    assert status == 200
    assert [c["card_id"] for c in body["cards"]] == ["ZYW8827", "ZYW1111"]
    assert all(c["user_phone"] == "********9014" for c in body["cards"])


def test_list_cards_of_a_phone_without_cards_is_an_empty_list(api: Api, seeded: Any) -> None:
    status, _, body = api.call(load_event("list_cards_unknown_phone"))
    assert (status, body) == (200, {"cards": [], "truncated": False})


def test_health(api: Api, db_url: str) -> None:
    status, _, body = api.call(load_event("health"))
    assert (status, body) == (200, {"status": "ok", "database": "ok"})


@pytest.mark.parametrize(
    ("event_name", "status", "code", "parameter"),
    [
        ("get_card_status_missing_parameters", 400, "missing_parameter", "card_id or user_phone"),
        ("get_card_status_invalid_card_id", 400, "invalid_parameter", "card_id"),
        ("get_card_status_invalid_phone", 400, "invalid_parameter", "user_phone"),
        ("get_card_invalid_id", 400, "invalid_parameter", "card_id"),
        ("list_cards_missing_phone", 400, "missing_parameter", "user_phone"),
        ("get_card_status_unknown_card", 404, "not_found", None),
        ("get_card_status_unknown_phone", 404, "not_found", None),
        ("get_card_status_phone_of_other_card", 404, "not_found", None),
        ("get_card_unknown", 404, "not_found", None),
        ("unknown_route", 404, "not_found", None),
        ("wrong_method", 405, "method_not_allowed", None),
    ],
)
def test_error_events(
    api: Api, seeded: Any, event_name: str, status: int, code: str, parameter: str | None
) -> None:
    got_status, headers, body = api.call(load_event(event_name))
    assert got_status == status, body
    assert body["error"]["code"] == code
    if parameter:
        assert parameter in body["error"]["message"]
    if status == 405:
        assert headers["Allow"] == "GET, HEAD"


def test_not_found_gives_no_hint_which_identifier_exists(api: Api, seeded: Any) -> None:
    """Known card + another card's phone answers byte-for-byte like an unknown card."""
    mismatch = api.raw(load_event("get_card_status_phone_of_other_card"))
    unknown_card = api.raw(load_event("get_card_status_unknown_card"))
    unknown_both = api.raw(
        event_for("/get_card_status", {"card_id": "NOPE", "user_phone": "585949014"})
    )
    unknown_phone = api.raw(load_event("get_card_status_unknown_phone"))
    assert mismatch["statusCode"] == 404
    assert mismatch["body"] == unknown_card["body"] == unknown_both["body"] == unknown_phone["body"]
    assert mismatch["multiValueHeaders"] == unknown_card["multiValueHeaders"]


@pytest.mark.parametrize(
    "card_id",
    [
        "A" * 65,
        "ZYW8890\n",
        "ZYW\x008890",
        "ZYW\t8890",
        "ZYW8890'; DROP TABLE card; --",
        "' OR '1'='1",
        "ZYW8890%",
        "_ZYW8890",
        "-1",
        "\uff3a\uff39\uff37\uff18\uff18\uff19\uff10",  # fullwidth lookalikes
        "ZYW889\u041e",  # Cyrillic O
        "ZYW\u20118890",  # non-breaking hyphen
        "ZYW8890\u200b",  # zero-width space
        " ZYW8890",
    ],
)
def test_hostile_card_ids_are_400(api: Api, seeded: Any, card_id: str) -> None:
    status, _, body = api.call(event_for("/get_card_status", {"card_id": card_id}))
    assert status == 400, body
    assert body["error"]["code"] == "invalid_parameter"
    assert "card_id" in body["error"]["message"]


@pytest.mark.parametrize(
    "raw_path",
    [
        "/cards/" + "A" * 65,
        "/cards/ZYW8890%0A",
        "/cards/ZYW%008890",
        "/cards/ZYW8890'%3B%20DROP%20TABLE%20card%3B--",
        "/cards/%EF%BC%BAYW8890",
        "/cards/ZYW%D0%9E890",
        "/cards/%22ZYW8890%22",
    ],
)
def test_hostile_card_ids_in_path_are_400(api: Api, seeded: Any, raw_path: str) -> None:
    from cardstatus_dev.serve import build_event

    status, _, body = api.call(build_event("GET", raw_path))
    assert status == 400, body
    assert body["error"]["code"] == "invalid_parameter"


@pytest.mark.parametrize(
    "phone",
    [
        "12",
        "abc",
        "9.7E+11",
        "5859490141234567890",
        "+1 (555) ",
        "'; DROP TABLE card; --",
        "x" * 41,
    ],
)
def test_invalid_phones_are_400(api: Api, seeded: Any, phone: str) -> None:
    status, _, body = api.call(event_for("/get_card_status", {"user_phone": phone}))
    assert status == 400, body
    assert body["error"]["code"] == "invalid_parameter"
    assert "user_phone" in body["error"]["message"]


def test_empty_parameters_count_as_missing(api: Api, seeded: Any) -> None:
    status, _, body = api.call(event_for("/get_card_status", {"user_phone": ""}))
    assert status == 400
    assert body["error"]["code"] == "missing_parameter"


@pytest.mark.parametrize(
    "phone",
    [
        "585949014",
        "0585949014",
        "+971585949014",
        "971585949014",
        "00971585949014",
        "+971 58 594 9014",
    ],
)
def test_phone_forms_find_the_same_card(api: Api, seeded: Any, phone: str) -> None:
    status, _, body = api.call(event_for("/get_card_status", {"user_phone": phone}))
    assert status == 200, body
    assert body["card_id"] == "ZYW8827"
    status, _, listed = api.call(event_for("/cards", {"user_phone": phone}))
    assert status == 200
    assert [c["card_id"] for c in listed["cards"]] == ["ZYW8827", "ZYW1111"]


def test_other_methods_on_known_paths_are_405(api: Api, seeded: Any) -> None:
    for method, path in [
        ("DELETE", "/cards/ZYW8890"),
        ("PUT", "/cards"),
        ("POST", "/health"),
        ("POST", "/phone_conflicts"),
        ("DELETE", "/files/1/cards"),
        ("PUT", "/files/1/void_preview"),
        ("POST", "/files/1/rejects.csv"),
    ]:
        status, headers, body = api.call(event_for(path, method=method))
        assert status == 405, (method, path, body)
        assert headers["Allow"] == "GET, HEAD"


def test_unexpected_error_is_500_without_details(
    api: Api, seeded: Any, monkeypatch: pytest.MonkeyPatch, captured_logs: Any
) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret detail SELECT * FROM card WHERE phone = '+971585949014'")

    monkeypatch.setattr(api.module.cards, "card_status", boom)
    result = api.raw(load_event("get_card_status_by_card_id"))
    assert result["statusCode"] == 500
    assert result["body"] == '{"error": {"code": "internal_error", "message": "internal error"}}'
    api.check(load_event("get_card_status_by_card_id"), 500, json.loads(result["body"]))
    logged = captured_logs.getvalue()
    assert "RuntimeError" in logged
    assert "585949014" not in logged


def test_database_unavailable_is_503_then_recovers(
    api: Api, seeded: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cardstatus import config

    good_url = config.settings().database_url
    assert good_url
    status, _, _ = api.call(load_event("get_card_status_by_card_id"))
    assert status == 200

    # The server goes away under a warm connection: 503, the connection is dropped.
    conn = api.module.DB.get()
    with seeded.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", (conn.get_backend_pid(),))
    seeded.commit()
    status, headers, body = api.call(load_event("get_card_status_by_card_id"))
    assert status == 503
    assert headers["Retry-After"].isdigit()
    assert body["error"]["code"] == "database_unavailable"

    # Unreachable database: 503 (health too), no connection details in the answer.
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none?connect_timeout=1")
    config.reset_settings_cache()
    api.module.DB.discard()
    for name in ("get_card_status_by_phone", "get_card_by_id", "list_cards_by_phone", "health"):
        result = api.raw(load_event(name))
        assert result["statusCode"] == 503, name
        assert "127.0.0.1" not in result["body"]
        api.check(load_event(name), 503, json.loads(result["body"]))

    # Bad or missing parameters are still 400: validation needs no database.
    for name in (
        "get_card_status_missing_parameters",
        "get_card_status_invalid_phone",
        "get_card_invalid_id",
        "list_cards_missing_phone",
    ):
        result = api.raw(load_event(name))
        assert result["statusCode"] == 400, name

    # The database is back: the next invocation reconnects.
    monkeypatch.setenv("DATABASE_URL", good_url)
    config.reset_settings_cache()
    status, _, body = api.call(load_event("get_card_status_by_card_id"))
    assert status == 200
    assert body["card_id"] == "ZYW8890"


def test_every_sample_event_is_exercised() -> None:
    from api_helpers import API_EVENTS

    names = {p.stem for p in API_EVENTS.glob("*.json")}
    source = ""
    for test_file in ("test_api_routes.py", "test_api_ops.py", "test_api_polish.py"):
        source += (API_EVENTS.parents[1] / "tests" / "api" / test_file).read_text(encoding="utf-8")
    missing = sorted(n for n in names if f'"{n}"' not in source)
    assert not missing, missing
