"""Partner feed health in the template (infra/partner_health.py): the sweeper's 5-minute
partner-health schedule, one alarm per monitored partner of cdk.json on the per-partner
metrics, to the alarm topic; the feed configuration reaches the functions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import Synthesised, synthesise
from infra.partner_health import monitored_partners


def _alarms(s: Synthesised) -> dict[str, dict[str, Any]]:
    return {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in s.of_type("AWS::CloudWatch::Alarm").values()
        if "PartnerFeed-" in json.dumps(a["Properties"].get("AlarmName"))
    }


def _metrics(props: dict[str, Any]) -> dict[str, dict[str, str]]:
    """{metric name: dimensions} the alarm reads (a plain metric or a math expression)."""
    if "MetricName" in props:
        stats = [{"MetricStat": {"Metric": props}}]
    else:
        stats = [m for m in props["Metrics"] if "MetricStat" in m]
    return {
        m["MetricStat"]["Metric"]["MetricName"]: {
            d["Name"]: d["Value"] for d in m["MetricStat"]["Metric"]["Dimensions"]
        }
        for m in stats
    }


def _alarm_name(s: Synthesised, partner: str) -> str:
    return f"{s.stack.settings.resource_prefix}-PartnerFeed-{partner}"


def test_one_alarm_per_monitored_partner_on_its_metrics_to_the_alarm_topic(dev: Any) -> None:
    monitored = monitored_partners(dev.stack.settings)
    assert sorted(monitored) == ["acme", "speedy"]  # cdk.json: both have a feed
    alarms = _alarms(dev)
    assert set(alarms) == {_alarm_name(dev, p) for p in monitored}
    topic = dev.stack.monitoring.topic
    topic_ref = dev.stack.resolve(topic.topic_arn)
    for partner, feed in monitored.items():
        props = alarms[_alarm_name(dev, partner)]
        assert props["AlarmActions"] == [topic_ref]
        assert props["Threshold"] == 1
        assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert props["TreatMissingData"] == "notBreaching"
        metrics = _metrics(props)
        assert set(metrics) == {"FeedLate", "RejectRate"}
        for dims in metrics.values():
            assert dims == {"service": "cardstatus-sweeper", "partner": partner}
        expression = next(m["Expression"] for m in props["Metrics"] if "Expression" in m)
        assert f"> {feed.max_reject_rate * 100:g}" in expression  # percent, as emitted
        assert partner in props["AlarmDescription"]


def test_partner_health_schedule_every_5_minutes_to_the_sweeper(dev: Any) -> None:
    rules = [
        r["Properties"]
        for r in dev.of_type("AWS::Events::Rule").values()
        if r["Properties"].get("ScheduleExpression") == "rate(5 minutes)"
    ]
    assert len(rules) == 1
    (target,) = rules[0]["Targets"]
    assert json.loads(target["Input"]) == {"task": "partner_health"}
    sweeper = dev.stack.resolve(dev.stack.functions.sweeper.function_arn)
    assert target["Arn"] == sweeper


def test_the_feed_configuration_reaches_the_functions(dev: Any) -> None:
    lid = dev.stack.get_logical_id(dev.stack.functions.sweeper.node.default_child)
    env = dev.resources[lid]["Properties"]["Environment"]["Variables"]
    config = json.loads(env["PARTNER_CONFIG"])
    assert config["speedy"]["feed"]["quiet_days"] == ["fri"]


def test_a_feed_without_reject_limit_alarms_on_lateness_and_no_feed_no_alarm() -> None:
    s = synthesise(
        "dev",
        {
            "partners": {
                "acme": {"feed": None},
                "speedy": {"feed": {"every_hours": 12, "max_reject_rate": None}},
            }
        },
    )
    alarms = _alarms(s)
    assert set(alarms) == {_alarm_name(s, "speedy")}
    props = alarms[_alarm_name(s, "speedy")]
    assert props["MetricName"] == "FeedLate" and props["Statistic"] == "Maximum"


def test_a_bad_feed_fails_synth() -> None:
    from infra.settings import SettingsError

    with pytest.raises(SettingsError, match=r"partners\.speedy\.feed"):
        synthesise("dev", {"partners": {"speedy": {"feed": {"every_hours": -1}}}})
