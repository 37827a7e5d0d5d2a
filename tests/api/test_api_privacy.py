"""No full phone number in any response body or log line."""

from __future__ import annotations

import json
import re
from typing import Any

from api_helpers import API_EVENTS, Api, event_for, load_event

# National significant numbers of the seeded phones (a full phone contains one of these).
SEEDED_NATIONAL = ["585949014", "534534534", "545576586"]
QUERIED_NATIONAL = ["501234567"]


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _assert_no_full_phone(text: str) -> None:
    for national in SEEDED_NATIONAL + QUERIED_NATIONAL:
        assert national not in text, text
        # also when digits are separated (e.g. "58 594 9014") within one JSON string value
    for value in re.findall(r'"((?:[^"\\]|\\.)*)"', text):
        digits = _digits(value)
        for national in SEEDED_NATIONAL + QUERIED_NATIONAL:
            assert national not in digits, value


def test_no_full_phone_in_bodies_or_logs(api: Api, seeded: Any, captured_logs: Any) -> None:
    events = [json.loads(p.read_text()) for p in sorted(API_EVENTS.glob("*.json"))]
    for phone in [
        "585949014",
        "0585949014",
        "+971585949014",
        "971585949014",
        "00971585949014",
        "+971 58 594 9014",
        "+971-58-594-9014",
        "(058) 594 9014",
    ]:
        events.append(event_for("/get_card_status", {"user_phone": phone}))
        events.append(event_for("/cards", {"user_phone": phone}))
        events.append(event_for("/get_card_status", {"user_phone": phone, "card_id": "ZYW8890"}))
        events.append(event_for("/get_card_status", {"user_phone": phone + "9"}))  # invalid
    for event in events:
        result = api.raw(event)
        _assert_no_full_phone(result["body"])
    logged = captured_logs.getvalue()
    assert logged.count("\n") >= len(events)  # one line per request at least
    for line in logged.splitlines():
        _assert_no_full_phone(line)
    # the masked form is what gets logged
    assert "********9014" in logged


def test_masked_phone_in_card(api: Api, seeded: Any) -> None:
    _, _, body = api.call(load_event("get_card_status_by_phone_several_cards"))
    assert body["user_phone"] == "********9014"
