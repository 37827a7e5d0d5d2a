"""GET /partners and GET /partners/{partner} through the real handler on a real PostgreSQL,
every answer checked against the committed OpenAPI document (README "Partner feed health")."""

from __future__ import annotations

from typing import Any

import pytest
from api_helpers import Api, event_for
from partner_support import add_file, partner_settings

THURSDAY_FILE = "2026-12-03T09:00:00+04:00"  # speedy: due Saturday 09:00, late after 11:00 Dubai


@pytest.fixture
def feeds(db: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    partner_settings(monkeypatch)
    add_file(db, "speedy", THURSDAY_FILE, rows=40, rejected=2)
    add_file(db, "Acme", "2026-12-05T08:00:00Z", rows=10)
    return db


def test_list_partners_as_of_a_time_shows_the_late_one(api: Api, feeds: Any) -> None:
    status, _, body = api.call(event_for("/partners", {"at": "2026-12-05T12:00:00+04:00"}))
    assert status == 200
    states = {p["partner"]: p["state"] for p in body["partners"]}
    assert states == {
        "acme": "not_monitored",
        "newco": "missing",
        "speedy": "late",
    }
    assert body["alerting"] == ["speedy"]
    assert body["as_of"] == "2026-12-05T08:00:00Z"
    speedy = next(p for p in body["partners"] if p["partner"] == "speedy")
    assert speedy["due_by"] == "2026-12-05T05:00:00Z"
    assert speedy["late_after"] == "2026-12-05T07:00:00Z"
    assert speedy["minutes_late"] == 60
    assert speedy["feed"]["quiet_days"] == ["fri"]
    assert len(speedy["rows_per_day"]) == 14


def test_one_partner_any_case_and_unknown_partner(api: Api, feeds: Any) -> None:
    status, _, body = api.call(event_for("/partners/SPEEDY", {"at": "2026-12-05T10:00:00+04:00"}))
    assert status == 200
    assert body["partner"] == "speedy" and body["state"] == "on_time"
    assert body["last_7_days"]["rows"] == 40 and body["last_7_days"]["reject_rate"] == 0.05
    status, _, body = api.call(event_for("/partners/acme"))
    assert status == 200 and body["configured"] is True and body["state"] == "not_monitored"
    status, _, body = api.call(event_for("/partners/spedy"))
    assert status == 404
    assert body["error"]["code"] == "not_found"
    assert "known: acme, newco, speedy" in body["error"]["message"]


def test_a_bad_at_is_400_naming_it(api: Api, feeds: Any) -> None:
    status, _, body = api.call(event_for("/partners", {"at": "last tuesday"}))
    assert status == 400
    assert body["error"]["code"] == "invalid_parameter"
    assert body["error"]["message"].startswith("at must be an ISO 8601")
    status, _, body = api.call(event_for("/partners", {"partner": "speedy"}))
    assert status == 400 and "unknown query parameter partner" in body["error"]["message"]
