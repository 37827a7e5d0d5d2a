"""POST /cards/search, truncated phone lookups, HEAD, repeated and unknown parameters,
redacted comments, case-insensitive card ids (README "API")."""

from __future__ import annotations

import json
from typing import Any

import pytest
from api_helpers import Api, event_for, load_event
from api_seed import Ev, seed_cards

from cardstatus import cards


def _post(body: str | None) -> dict[str, Any]:
    event = event_for("/cards/search", method="POST")
    event["body"] = body
    event["headers"] = {"Content-Type": "application/json"}
    event["multiValueHeaders"] = {"Content-Type": ["application/json"]}
    return event


@pytest.mark.parametrize(
    "query",
    [
        {"user_phone": "585949014"},
        {"card_id": "ZYW8890"},
        {"card_id": "ZYW1111", "user_phone": "+971 58 594 9014"},
        {"card_id": "ZYW8890", "user_phone": "585949014"},  # another card's phone: 404
        {"card_id": "NOPE"},
        {"user_phone": "12"},
    ],
)
def test_search_answers_exactly_like_get_card_status(
    api: Api, seeded: Any, query: dict[str, str]
) -> None:
    posted = api.raw(_post(json.dumps(query)))
    got = api.raw(event_for("/get_card_status", query))
    assert (posted["statusCode"], posted["body"]) == (got["statusCode"], got["body"])
    api.check(_post(json.dumps(query)), posted["statusCode"], json.loads(posted["body"]))


def test_search_sample_events(api: Api, seeded: Any) -> None:
    status, _, body = api.call(load_event("search_cards_by_phone"))
    assert (status, body["card_id"], body["truncated"]) == (200, "ZYW8827", False)
    status, _, body = api.call(load_event("search_cards_by_card_id"))  # "zyw8890"
    assert (status, body["card_id"]) == (200, "ZYW8890")


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        ("{}", "missing_parameter", "card_id or user_phone"),
        (None, "missing_parameter", "body"),
        ("", "missing_parameter", "body"),
        ("user_phone=585949014", "invalid_parameter", "JSON object"),
        ("[1, 2]", "invalid_parameter", "JSON object"),
        ('"ZYW8890"', "invalid_parameter", "JSON object"),
        ('{"card_id": "ZYW 8890"}', "invalid_parameter", "card_id"),
        ('{"card_id": 8890}', "invalid_parameter", "card_id"),
        ('{"user_phone": "' + "5" * 41 + '"}', "invalid_parameter", "user_phone"),
        ('{"phone": "585949014"}', "invalid_parameter", "phone is not a known field"),
    ],
)
def test_search_with_a_bad_body_is_400(
    api: Api, seeded: Any, body: str | None, code: str, words: str
) -> None:
    status, _, answer = api.call(_post(body))
    assert (status, answer["error"]["code"]) == (400, code), answer
    assert words in answer["error"]["message"]


def test_search_with_get_is_not_a_route_and_other_methods_are_405(api: Api, seeded: Any) -> None:
    status, headers, _ = api.call(event_for("/cards/search", method="PUT"))
    assert (status, headers["Allow"]) == (405, "POST")


def test_phone_lookups_say_when_they_are_truncated(api: Api, db: Any) -> None:
    many = {
        f"T{i:04d}": [
            Ev("PICKED_UP", f"2024-01-01T00:{i // 60:02d}:{i % 60:02d}Z", "+971501234567")
        ]
        for i in range(cards.MAX_CARDS_PER_PHONE + 1)
    }
    seed_cards(db, many)
    _, _, listed = api.call(event_for("/cards", {"user_phone": "0501234567"}))
    assert len(listed["cards"]) == cards.MAX_CARDS_PER_PHONE and listed["truncated"] is True
    assert listed["cards"][0]["card_id"] == f"T{cards.MAX_CARDS_PER_PHONE:04d}"
    _, _, status = api.call(event_for("/get_card_status", {"user_phone": "0501234567"}))
    assert 1 + len(status["other_cards"]) == cards.MAX_CARDS_PER_PHONE
    assert status["truncated"] is True
    _, _, both = api.call(
        event_for("/get_card_status", {"card_id": "T0000", "user_phone": "0501234567"})
    )
    assert 1 + len(both["other_cards"]) == cards.MAX_CARDS_PER_PHONE and both["truncated"] is True
    _, _, one = api.call(event_for("/get_card_status", {"card_id": "T0000"}))
    assert one["truncated"] is False

    seed_cards(db, {"ONLY1": [Ev("PICKED_UP", "2024-01-01T00:00:00Z", "+971509999999")]})
    _, _, single = api.call(event_for("/cards", {"user_phone": "0509999999"}))
    assert (len(single["cards"]), single["truncated"]) == (1, False)


def test_head_answers_like_get_without_a_body(api: Api, seeded: Any) -> None:
    for path, query in [
        ("/cards/ZYW8890", None),
        ("/cards/NOPE", None),
        ("/get_card_status", {"card_id": "ZYW8890"}),
        ("/health", None),
        ("/files", None),
    ]:
        get = api.raw(event_for(path, query))
        head = api.raw(event_for(path, query, method="HEAD"))
        assert head["statusCode"] == get["statusCode"], path
        assert head["body"] == "", path
        assert head["multiValueHeaders"] == get["multiValueHeaders"], path
    assert api.raw(load_event("head_card_by_id"))["statusCode"] == 200


def test_repeated_query_parameter_says_so(api: Api, seeded: Any) -> None:
    status, _, body = api.call(load_event("get_card_status_repeated_parameter"))
    assert status == 400
    assert body == {
        "error": {"code": "invalid_parameter", "message": "card_id given 2 times; give it once"}
    }
    event = event_for("/files")
    event["multiValueQueryStringParameters"] = {"limit": ["1", "2", "3"]}
    event["queryStringParameters"] = {"limit": "3"}
    status, _, body = api.call(event)
    assert body["error"]["message"] == "limit given 3 times; give it once"


def test_unknown_query_parameter_is_400(api: Api, seeded: Any) -> None:
    status, _, body = api.call(event_for("/get_card_status", {"card_id": "ZYW8890", "phone": "1"}))
    assert status == 400
    assert body["error"]["message"] == (
        "unknown query parameter phone; this route takes: card_id, user_phone"
    )


def test_card_ids_are_looked_up_upper_case(api: Api, seeded: Any) -> None:
    for event in (
        event_for("/cards/zyw8890"),
        event_for("/get_card_status", {"card_id": "Zyw8890"}),
    ):
        status, _, body = api.call(event)
        assert (status, body["card_id"]) == (200, "ZYW8890")


def test_phones_in_partner_comments_are_redacted(api: Api, db: Any) -> None:
    seed_cards(
        db,
        {
            "CMT1": [
                Ev("PICKED_UP", "2024-01-01T08:00:00Z", "+971501112222", "call 050 111 2222 first"),
                Ev(
                    "DELIVERY_EXCEPTION",
                    "2024-01-02T08:00:00Z",
                    "+971501112222",
                    "not home, ring +971501112222 on 02-03-2024",
                    "recipient_unavailable",
                ),
            ]
        },
    )
    _, _, body = api.call(event_for("/cards/CMT1"))
    assert body["comment"] == "not home, ring ********2222 on 02-03-2024"
    assert [h["comment"] for h in body["history"]] == [
        "not home, ring ********2222 on 02-03-2024",
        "call ******2222 first",
    ]


def test_search_sample_events_with_bad_bodies(api: Api, seeded: Any) -> None:
    for name, code in [
        ("search_cards_empty_body", "missing_parameter"),
        ("search_cards_invalid_json", "invalid_parameter"),
    ]:
        status, _, body = api.call(load_event(name))
        assert (status, body["error"]["code"]) == (400, code), name
