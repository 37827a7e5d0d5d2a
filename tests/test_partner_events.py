"""Partner feed transitions (README "Partner feed health"): the sweeper's partner-health task
on a real PostgreSQL and a moto EventBridge bus writes PartnerFeedLate / PartnerFeedRecovered
through the outbox once per transition, never again while the state holds, and emits the
per-partner metrics. The clock is injected (`now`): no sleeps."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import jsonschema
import pytest
from lambda_context import FakeLambdaContext
from moto import mock_aws
from outbox_support import BUS, Recorder, outbox
from partner_support import PARTNER_CONFIG, add_file, partner_settings, utc

from cardstatus import config, partners
from fixture_paths import ROOT

THURSDAY_FILE = "2026-12-03T09:00:00+04:00"  # speedy: late after Saturday 11:00 Dubai


Context = partial(FakeLambdaContext, function_name="cardstatus-sweeper")


@pytest.fixture
def recorder(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    monkeypatch.setenv("EVENT_BUS_NAME", BUS)
    partner_settings(monkeypatch, PARTNER_CONFIG)
    with mock_aws():
        yield Recorder(boto3.Session(region_name="us-east-1"))
    config.reset_settings_cache()


@pytest.fixture
def sweeper(recorder: Recorder) -> Iterator[Any]:
    from functions.sweeper import app

    app.DB.reset_settings(None)
    app._events = recorder.events
    yield app
    app.DB.discard()
    app._events = None


def run(sweeper: Any, at: str) -> dict[str, Any]:
    when: datetime = utc(at)
    return dict(sweeper.partner_health({"task": "partner_health"}, Context(), now=when))


def schema_validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads(Path(ROOT / "docs" / "events" / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def test_one_event_per_transition_each_way_never_repeated(
    sweeper: Any, db: Any, recorder: Recorder
) -> None:
    add_file(db, "speedy", THURSDAY_FILE)
    add_file(db, "newco", "2026-12-05T06:00:00+04:00")

    assert run(sweeper, "2026-12-05T10:00:00+04:00")["transitions"] == []  # on time
    late = run(sweeper, "2026-12-05T11:05:00+04:00")
    assert [(t["partner"], t["event"]) for t in late["transitions"]] == [
        ("speedy", "PartnerFeedLate")
    ]
    assert late["alerting"] == ["speedy"]
    # Still late on the next sweeps: nothing more.
    assert run(sweeper, "2026-12-05T11:10:00+04:00")["transitions"] == []
    assert run(sweeper, "2026-12-05T13:00:00+04:00")["transitions"] == []

    add_file(db, "speedy", "2026-12-05T13:30:00+04:00")
    recovered = run(sweeper, "2026-12-05T13:35:00+04:00")
    assert [(t["partner"], t["event"]) for t in recovered["transitions"]] == [
        ("speedy", "PartnerFeedRecovered")
    ]
    assert run(sweeper, "2026-12-05T13:40:00+04:00")["transitions"] == []

    got = recorder.received()
    assert [e["detail-type"] for e in got] == ["PartnerFeedLate", "PartnerFeedRecovered"]
    assert all(e["source"] == "cardstatus" for e in got)
    late_detail, recovered_detail = got[0]["detail"], got[1]["detail"]
    assert late_detail["partner"] == "speedy"
    assert (late_detail["previous_state"], late_detail["state"]) == ("on_time", "late")
    assert late_detail["late_after"] == "2026-12-05T07:00:00Z"
    assert late_detail["due_by"] == "2026-12-05T05:00:00Z"
    assert late_detail["minutes_since_last_file"] == (2 * 24 + 2) * 60 + 5
    assert (recovered_detail["previous_state"], recovered_detail["state"]) == ("late", "on_time")
    assert recovered_detail["late_since"] == "2026-12-05T07:00:00Z"
    schema_validator("PartnerFeedLate").validate(late_detail)
    schema_validator("PartnerFeedRecovered").validate(recovered_detail)

    rows = outbox(db)  # through the outbox, published, ids as in the events
    assert [r["detail"]["event_id"] for r in rows] == [e["detail"]["event_id"] for e in got]
    assert all(r["published_at"] is not None and r["card_id"] is None for r in rows)
    with db.cursor() as cur:
        cur.execute("SELECT partner, state FROM partner_feed_state ORDER BY partner")
        assert cur.fetchall() == [("newco", "on_time"), ("speedy", "on_time")]
    db.commit()


def test_on_time_then_late_without_a_bus_the_event_waits_in_the_outbox(
    sweeper: Any, db: Any, recorder: Recorder
) -> None:
    add_file(db, "speedy", THURSDAY_FILE)
    run(sweeper, "2026-12-04T10:00:00+04:00")
    recorder.delete_bus()
    assert len(run(sweeper, "2026-12-06T10:00:00+04:00")["transitions"]) == 1
    pending = [r for r in outbox(db) if r["published_at"] is None]
    assert len(pending) == 1 and pending[0]["detail"]["state"] == "late"
    # The next sweep does not write it again; the regular outbox sweep publishes it later.
    assert run(sweeper, "2026-12-06T10:05:00+04:00")["transitions"] == []
    assert len(outbox(db)) == 1


def test_concurrent_evaluations_record_one_transition(
    db: Any, db_url: str, monkeypatch: Any
) -> None:
    """Two sweeps evaluating the same late state: the second sees the first's record."""
    import psycopg2

    cfg = partner_settings(monkeypatch)
    add_file(db, "speedy", THURSDAY_FILE)
    at = utc("2026-12-06T10:00:00+04:00")
    healths = [h for h in partners.all_health(db, cfg, at) if h.monitored]
    other = psycopg2.connect(db_url)
    try:
        first = partners.record_transitions(db, healths)
        second = partners.record_transitions(other, healths)
    finally:
        other.close()
    assert [t.detail_type for t in first] == ["PartnerFeedLate"]
    assert second == []


def test_per_partner_metrics_with_a_partner_dimension(
    sweeper: Any, db: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    add_file(db, "speedy", THURSDAY_FILE, rows=100, rejected=25)
    capsys.readouterr()
    run(sweeper, "2026-12-05T11:30:00+04:00")
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    by_partner = {b["partner"]: b for b in blobs if "partner" in b}
    assert set(by_partner) == {"speedy", "newco"}  # monitored partners only (not acme)
    speedy = by_partner["speedy"]
    assert speedy["FeedLate"] == [1.0]
    assert speedy["MinutesSinceLastFile"] == [(2 * 24 + 2) * 60 + 30]
    assert speedy["RejectRate"] == [25.0]
    directive = speedy["_aws"]["CloudWatchMetrics"][0]
    assert ["partner", "service"] in [sorted(d) for d in directive["Dimensions"]]
    newco = by_partner["newco"]  # never sent: not late, no minutes, no rate
    assert newco["FeedLate"] == [0.0]
    assert "MinutesSinceLastFile" not in newco and "RejectRate" not in newco


def test_the_scheduled_input_runs_the_partner_health_task(sweeper: Any, db: Any) -> None:
    """What the 5-minute rule sends ({"task": "partner_health"}) reaches the task, not the
    outbox sweep; a feed that never sent is `missing` whatever the clock says."""
    summary = sweeper.handler({"task": "partner_health"}, Context())
    assert summary["task"] == "partner_health"
    assert summary["partners"] == {"newco": "missing", "speedy": "missing"}
    assert summary["transitions"] == [] and summary["alerting"] == []
