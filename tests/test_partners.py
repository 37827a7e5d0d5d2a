"""Partner feed health (cardstatus.partners) on a real PostgreSQL: states as of a time across
due times, quiet days and grace; missing; not monitored; 7-day numbers; volume warnings;
case-insensitive names; the feed configuration's checks."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from partner_support import add_file, partner_settings, utc

from cardstatus import partners
from cardstatus.config import parse_feed
from cardstatus.errors import InvalidParameter

DUBAI = ZoneInfo("Asia/Dubai")
# speedy: every 24 h, grace 2 h, Fridays quiet. Last file Thursday 2026-12-03 09:00 Dubai.
THURSDAY_FILE = "2026-12-03T09:00:00+04:00"


def health(db: Any, cfg: Any, name: str, at: str) -> partners.PartnerHealth:
    return partners.one_health(db, cfg, name, at)


# --- counted time (pure) ------------------------------------------------------------------


def test_counted_hours_skip_quiet_days_in_the_partners_timezone() -> None:
    start = utc(THURSDAY_FILE)
    # Thursday 09:00 + 24 h: Thursday has 15 h left, Friday is not counted, Saturday 9 h.
    assert partners.add_counted_hours(start, 24, DUBAI, ["fri"]) == utc("2026-12-05T09:00:00+04:00")
    assert partners.add_counted_hours(start, 24, DUBAI, []) == utc("2026-12-04T09:00:00+04:00")
    # A file received on a quiet day starts the count at the next counted midnight.
    friday = utc("2026-12-04T10:00:00+04:00")
    assert partners.add_counted_hours(friday, 24, DUBAI, ["fri"]) == utc(
        "2026-12-06T00:00:00+04:00"
    )
    # Two quiet days in a row (Friday, Saturday).
    assert partners.add_counted_hours(start, 24, DUBAI, ["fri", "sat"]) == utc(
        "2026-12-06T09:00:00+04:00"
    )


# --- states as of a time --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "state"),
    [
        ("2026-12-03T20:00:00+04:00", "on_time"),  # the same day
        ("2026-12-04T10:00:00+04:00", "on_time"),  # past 24 h, but Friday is quiet
        ("2026-12-05T09:30:00+04:00", "on_time"),  # past due_by, within the 2 h grace
        ("2026-12-05T11:00:00+04:00", "on_time"),  # exactly late_after: not yet late
        ("2026-12-05T11:01:00+04:00", "late"),  # after due_by + grace
        ("2026-12-06T09:00:00+04:00", "late"),
    ],
)
def test_state_as_of_a_time_across_due_time_quiet_day_and_grace(
    db: Any, monkeypatch: pytest.MonkeyPatch, at: str, state: str
) -> None:
    cfg = partner_settings(monkeypatch)
    add_file(db, "speedy", "2026-12-02T08:00:00+04:00")
    add_file(db, "speedy", THURSDAY_FILE)
    h = health(db, cfg, "speedy", at)
    assert h.state == state
    assert h.last_file_at == utc(THURSDAY_FILE)
    assert h.due_by == utc("2026-12-05T09:00:00+04:00")
    assert h.late_after == utc("2026-12-05T11:00:00+04:00")
    assert h.alerting is (state == "late")


def test_a_file_after_at_does_not_count_and_a_new_file_makes_it_on_time(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = partner_settings(monkeypatch)
    add_file(db, "speedy", THURSDAY_FILE)
    add_file(db, "speedy", "2026-12-05T12:00:00+04:00")  # an hour after late_after
    before = health(db, cfg, "speedy", "2026-12-05T11:30:00+04:00")
    assert before.state == "late"
    assert before.minutes_late == 30
    after = health(db, cfg, "speedy", "2026-12-05T12:05:00+04:00")
    assert after.state == "on_time"
    assert after.minutes_since_last_file == 5


def test_duplicate_files_are_not_deliveries(db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = partner_settings(monkeypatch)
    add_file(db, "speedy", THURSDAY_FILE)
    add_file(db, "speedy", "2026-12-05T10:00:00+04:00", outcome="duplicate_file")
    assert health(db, cfg, "speedy", "2026-12-05T12:00:00+04:00").state == "late"


def test_missing_when_monitored_and_never_sent(db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = partner_settings(monkeypatch)
    h = health(db, cfg, "newco", "2026-12-05T12:00:00Z")
    assert h.state == "missing"
    assert h.last_file_at is None and h.due_by is None
    assert not h.alerting  # shown, not alerted: a partner that never sent may not be live yet
    body = h.to_json()
    assert body["last_file"] is None and body["monitored"] is True


def test_not_monitored_without_a_feed_still_reports_numbers(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = partner_settings(monkeypatch)
    add_file(db, "acme", "2026-11-01T09:00:00Z", rows=50, rejected=40)  # long ago, mostly rejected
    add_file(db, "acme", "2026-12-05T09:00:00Z", rows=20, rejected=5)
    h = health(db, cfg, "acme", "2026-12-06T09:00:00Z")
    assert h.state == "not_monitored"
    assert h.due_by is None and not h.alerting
    assert h.to_json()["last_7_days"] == {
        "files": 1,
        "rows": 20,
        "accepted": 15,
        "rejected": 5,
        "reject_rate": 0.25,
        "rejected_files": 0,
    }


def test_seven_day_numbers_today_rows_per_day_and_reject_rate_alert(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = partner_settings(monkeypatch)
    at = "2026-12-06T10:00:00+04:00"
    add_file(db, "speedy", "2026-11-20T09:00:00+04:00", rows=1000)  # outside 14 days
    add_file(db, "speedy", "2026-11-28T09:00:00+04:00", rows=100)  # in 14 days, not in 7
    add_file(db, "speedy", "2026-12-05T09:00:00+04:00", rows=100, rejected=30)
    add_file(db, "speedy", "2026-12-05T23:30:00+04:00", rows=7, outcome="rejected_file")
    add_file(db, "speedy", "2026-12-06T00:30:00+04:00", rows=40)  # today (Dubai), 20:30Z before
    add_file(db, "speedy", "2026-12-06T08:00:00+04:00", rows=60, outcome="duplicate_file")
    body = health(db, cfg, "Speedy", at).to_json()
    assert body["state"] == "on_time"
    assert body["last_7_days"] == {
        "files": 3,
        "rows": 147,
        "accepted": 110,
        "rejected": 37,
        "reject_rate": round(37 / 147, 4),
        "rejected_files": 1,
    }
    assert body["reject_rate_exceeded"] is True and body["alerting"] is True
    assert body["today"] == {"files": 1, "rows": 40}
    days = body["rows_per_day"]
    assert len(days) == 14
    assert days[0]["date"] == "2026-11-23" and days[-1]["date"] == "2026-12-06"
    by_day = {d["date"]: (d["rows"], d["files"]) for d in days}
    assert by_day["2026-11-28"] == (100, 1)
    assert by_day["2026-12-05"] == (107, 2)
    assert by_day["2026-12-06"] == (40, 1)
    assert sum(d["rows"] for d in days) == 247


def test_stuck_cards_are_counted_under_the_current_events_partner(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = partner_settings(monkeypatch)
    file_id = add_file(db, "speedy", "2026-11-20T09:00:00Z")
    at = utc("2026-12-06T09:00:00Z")
    with db.cursor() as cur:
        for card, status, when in (
            ("S1", "PICKED_UP", at - timedelta(hours=100)),
            ("S2", "DELIVERY_EXCEPTION", at - timedelta(hours=80)),
            ("S3", "PICKED_UP", at - timedelta(hours=10)),  # not stuck yet
            ("S4", "DELIVERED", at - timedelta(hours=200)),  # done
        ):
            cur.execute(
                "INSERT INTO card_event (card_id, status, occurred_at, partner, source_file_id,"
                " source_line) VALUES (%s, %s, %s, 'Speedy', %s, 2)",
                (card, status, when, file_id),
            )
            cur.execute(
                "INSERT INTO card (card_id, status, status_at) VALUES (%s, %s, %s)",
                (card, status, when),
            )
    db.commit()
    stuck = health(db, cfg, "SPEEDY", "2026-12-06T09:00:00Z").to_json()["stuck_cards"]
    assert stuck == {
        "PICKED_UP": 1,
        "DELIVERY_EXCEPTION": 1,
        "total": 2,
        "older_than_hours": 72,
    }


def test_known_partners_are_configured_and_seen_case_insensitively(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = partner_settings(monkeypatch)
    add_file(db, "Speedy", "2026-12-05T09:00:00Z", rows=5)
    add_file(db, "speedy", "2026-12-05T10:00:00Z", rows=6)
    add_file(db, "walkin", "2026-12-05T10:00:00Z", rows=1)  # seen, not configured
    names = [p.name for p in partners.known_partners(db, cfg)]
    assert names == ["acme", "newco", "speedy", "walkin"]  # `default` is not a partner
    h = health(db, cfg, "SPEEDY", "2026-12-05T11:00:00Z")
    assert h.partner == "speedy"
    assert h.last_7_days.files == 2 and h.last_7_days.rows == 11
    with pytest.raises(partners.PartnerNotFound, match=r"unknown partner 'spedy'.*speedy"):
        partners.one_health(db, cfg, "spedy")
    with pytest.raises(InvalidParameter):
        partners.one_health(db, cfg, "speedy", "yesterday")


# --- volume warning --------------------------------------------------------------------------


def test_volume_warning_rule() -> None:
    assert partners.volume_warning(19, [100, 100, 100]) is not None  # 19 < 20% of 100
    assert partners.volume_warning(20, [100, 100, 100]) is None
    assert partners.volume_warning(1, [100, 100]) is None  # fewer than 3 files to compare
    # The median, of the newest 10 only.
    w = partners.volume_warning(30, [200, 150, 160, 10, 10, 170, 180, 190, 210, 220, 1])
    assert w is not None and w.median_rows == 175 and w.files_compared == 10
    assert "under 20% of the median (175)" in w.message
    below_min = partners.volume_warning(5, [], min_rows=10)
    assert below_min is not None and "min_rows (10)" in below_min.message


def test_volume_warning_in_health_for_the_newest_applied_file(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = partner_settings(monkeypatch)
    for day in range(1, 5):
        add_file(db, "speedy", f"2026-12-0{day}T09:00:00Z", rows=100)
    add_file(db, "speedy", "2026-12-04T12:00:00Z", rows=1, voided=True)  # voided: ignored
    small = add_file(db, "speedy", "2026-12-05T09:00:00Z", rows=12)
    w = health(db, cfg, "speedy", "2026-12-05T10:00:00Z").to_json()["volume_warning"]
    assert w["file_id"] == small and w["rows"] == 12 and w["median_rows"] == 100
    assert w["files_compared"] == 4
    assert health(db, cfg, "speedy", "2026-12-04T10:00:00Z").volume_warning is None


# --- configuration ------------------------------------------------------------------------


def test_feed_configuration_is_checked() -> None:
    feed = parse_feed("speedy", {"every_hours": 24, "quiet_days": ["Friday", "sat"]})
    assert feed is not None and feed.quiet_days == ("fri", "sat") and feed.grace_hours == 0
    assert parse_feed("speedy", None) is None
    for bad in (
        {},
        {"every_hours": 0},
        {"every_hours": 24, "quiet_days": ["funday"]},
        {"every_hours": 24, "max_reject_rate": 5},
        {"every_hours": 24, "min_rows": 0},
        {"every_hours": 24, "cadence": 1},
        {"every_hours": 24, "quiet_days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]},
    ):
        with pytest.raises(ValueError, match=r"feed"):
            parse_feed("speedy", bad)


# --- the warning in the ingest report -----------------------------------------------------


def _csv(rows: int, start: int) -> bytes:
    lines = ["Card ID,Timestamp"] + [
        f"VOL{start + i:05d},2026-12-0{1 + (i % 5)}T10:00:00Z" for i in range(rows)
    ]
    return ("\n".join(lines) + "\n").encode()


def test_ingest_report_warns_of_a_file_under_20_percent_of_the_median(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cardstatus.ingest import SourceInfo, ingest

    cfg = partner_settings(monkeypatch)

    def deliver(rows: int, start: int) -> dict[str, Any]:
        data = _csv(rows, start)
        key = f"incoming/speedy/Delivered {start}.csv"
        return ingest(db, io.BytesIO(data), SourceInfo(key=key, partner="speedy"), cfg)

    def volume_warnings(report: dict[str, Any]) -> list[str]:
        return [w["warning"] for w in report["warnings"] if "low volume" in w["warning"]]

    for n in range(3):
        report = deliver(50, 100 * n)
        assert report["outcome"] == "applied" and volume_warnings(report) == []
    small = deliver(9, 1000)  # 9 < 20% of 50
    assert small["outcome"] == "applied"
    assert volume_warnings(small) == [
        "low volume: 9 rows is under 20% of the median (50) of the partner's previous 3 files"
    ]
    assert small["counts"]["warnings"] == 1
    assert volume_warnings(deliver(10, 2000)) == []  # 10 = 20% of the median 50: no warning
