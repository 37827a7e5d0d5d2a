"""`cardstatus partners` (README "Partner feed health"): JSON Lines or a table, health as of
--at, exit 1 when a monitored partner is late or over its reject rate."""

from __future__ import annotations

import json
from typing import Any

import pytest
from partner_support import add_file, partner_settings

from cardstatus_dev.cli import main

THURSDAY_FILE = "2026-12-03T09:00:00+04:00"  # speedy: late after Saturday 2026-12-05 07:00Z


@pytest.fixture
def feeds(db: Any, db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    partner_settings(monkeypatch)
    add_file(db, "speedy", THURSDAY_FILE, rows=40)
    add_file(db, "acme", "2026-12-05T06:00:00Z", rows=10, rejected=9)  # not monitored
    return db_url


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_exit_0_while_on_time_and_1_once_late(
    feeds: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["partners", "--at", "2026-12-05T06:59:00Z", "--database-url", feeds]) == 0
    on_time = {p["partner"]: p["state"] for p in lines(capsys)}
    assert on_time == {"acme": "not_monitored", "newco": "missing", "speedy": "on_time"}

    assert main(["partners", "--at", "2026-12-05T07:30:00Z", "--database-url", feeds]) == 1
    late = {p["partner"]: p for p in lines(capsys)}
    assert late["speedy"]["state"] == "late" and late["speedy"]["minutes_late"] == 30


def test_exit_1_when_over_the_reject_rate(
    db: Any, feeds: str, capsys: pytest.CaptureFixture[str]
) -> None:
    add_file(db, "speedy", "2026-12-05T05:00:00Z", rows=100, rejected=20)  # 20/140 > 10%
    assert main(["partners", "--at", "2026-12-05T06:00:00Z", "--partner", "SPEEDY"]) == 1
    (speedy,) = lines(capsys)
    assert speedy["state"] == "on_time" and speedy["reject_rate_exceeded"] is True


def test_table_for_people(feeds: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["partners", "--at", "2026-12-05T08:00:00Z", "--table"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "partner feed health as of 2026-12-05 08:00 UTC"
    assert out[1].split()[:2] == ["PARTNER", "STATE"]
    speedy = next(line for line in out if line.startswith("speedy"))
    assert "late" in speedy and "2026-12-05 07:00" in speedy and "late 60 min" in speedy
    acme = next(line for line in out if line.startswith("acme"))
    assert "not_monitored" in acme and "90.0%" in acme
    assert out[1].index("STATE") == speedy.index("late") == acme.index("not_monitored")  # aligned


def test_bad_at_or_unknown_partner(feeds: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["partners", "--at", "someday"]) == 2
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "invalid_parameter"
    assert main(["partners", "--partner", "spedy"]) == 1
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["code"] == "not_found" and "known: acme, newco, speedy" in error["message"]
