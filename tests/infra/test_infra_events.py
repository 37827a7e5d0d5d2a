"""CDK assertions for status-change events (issue 15, README "Events"): bus, archive, VPC
endpoint, least-privilege PutEvents, sweeper + schedule, alarms, example consumer."""

from __future__ import annotations

import json
import tempfile
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from infra.app import build_app
from infra.events import EXAMPLE_CONSUMER_CONTEXT
from infra.stack import CardStatusStack


def _blob(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _one(s: Any, cfn_type: str) -> tuple[str, dict[str, Any]]:
    found = s.of_type(cfn_type)
    assert len(found) == 1, (cfn_type, list(found))
    return next(iter(found.items()))


def _bus_id(s: Any) -> str:
    return _one(s, "AWS::Events::EventBus")[0]


def _function(s: Any, name: str) -> dict[str, Any]:
    fns = {
        k: v
        for k, v in s.of_type("AWS::Lambda::Function").items()
        if k.startswith(f"Functions{name}") and not k.startswith(f"Functions{name}Role")
    }
    assert len(fns) == 1, list(fns)
    return next(iter(fns.values()))


def _statements(s: Any) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for lid, res in s.resources.items():
        if res["Type"] == "AWS::IAM::Policy":
            out += [(lid, st) for st in res["Properties"]["PolicyDocument"]["Statement"]]
        elif res["Type"] == "AWS::IAM::Role":
            for p in res["Properties"].get("Policies", []):
                out += [(lid, st) for st in p["PolicyDocument"]["Statement"]]
    return out


def _actions(statement: dict[str, Any]) -> list[str]:
    a = statement["Action"]
    return a if isinstance(a, list) else [a]


@pytest.mark.parametrize("env,retention", [("dev", 30), ("prod", 365)])
def test_bus_and_archive_with_retention_from_cdk_json(synth: Any, env: str, retention: int) -> None:
    s = synth(env)
    bus_id, bus = _one(s, "AWS::Events::EventBus")
    assert bus["Properties"]["Name"] == f"cardstatus-{env}"
    _, archive = _one(s, "AWS::Events::Archive")
    props = archive["Properties"]
    assert props["RetentionDays"] == retention
    assert props["EventPattern"] == {"source": ["cardstatus"]}
    assert bus_id in _blob(props["SourceArn"])
    if env == "prod":
        assert archive.get("DeletionPolicy") == "Retain"


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_put_events_only_on_the_bus_and_only_for_publishers(synth: Any, env: str) -> None:
    s = synth(env)
    bus_id = _bus_id(s)
    holders = set()
    for lid, st in _statements(s):
        actions = _actions(st)
        assert not any(a in ("events:*", "*") for a in actions), (lid, st)
        if "events:PutEvents" in actions:
            assert st["Effect"] == "Allow"
            assert _blob(st["Resource"]) == _blob({"Fn::GetAtt": [bus_id, "Arn"]}), st
            assert actions == ["events:PutEvents"], st
            holders.add(lid)
    # The void function publishes its void's events after commit, like ingest.
    assert sorted(h.removeprefix("Functions")[:6] for h in holders) == [
        "Ingest",
        "Sweepe",
        "VoidRo",
    ]


def test_eventbridge_endpoint_in_isolated_subnets_limited_to_the_bus(dev: Any) -> None:
    bus_id = _bus_id(dev)
    endpoints = [
        e
        for e in dev.of_type("AWS::EC2::VPCEndpoint").values()
        if ".events" in _blob(e["Properties"]["ServiceName"])
    ]
    assert len(endpoints) == 1
    props = endpoints[0]["Properties"]
    assert props["VpcEndpointType"] == "Interface"
    assert props["PrivateDnsEnabled"] is True
    subnets = _blob(props["SubnetIds"])
    assert "appSubnet" in subnets and "dataSubnet" not in subnets
    statements = props["PolicyDocument"]["Statement"]
    assert len(statements) == 1
    st = statements[0]
    assert st["Effect"] == "Allow" and st["Action"] == "events:PutEvents"
    assert st["Resource"] == {"Fn::GetAtt": [bus_id, "Arn"]}
    assert "aws:PrincipalAccount" in st["Condition"]["StringEquals"]
    # Its own security group, reachable on 443 from the publishers' security groups only.
    (sg_ref,) = props["SecurityGroupIds"]
    sg_id = sg_ref["Fn::GetAtt"][0]
    assert sg_id.startswith("EventsEndpointSg")
    ingress = [
        r["Properties"]
        for r in dev.of_type("AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [sg_id, "GroupId"]}
    ]
    sources = sorted(i["SourceSecurityGroupId"]["Fn::GetAtt"][0] for i in ingress)
    assert [src.removeprefix("Network")[:6] for src in sources] == ["Ingest", "Sweepe", "VoidSg"]
    assert all(i["FromPort"] == 443 and i["ToPort"] == 443 for i in ingress)


def test_sweeper_function_and_its_schedule(dev: Any) -> None:
    bus_id = _bus_id(dev)
    sweeper = _function(dev, "Sweeper")["Properties"]
    ingest = _function(dev, "Ingest")["Properties"]
    assert sweeper["Handler"] == ingest["Handler"].replace("ingest", "sweeper")
    assert sweeper["Runtime"] == "python3.12" and sweeper["Architectures"] == ["arm64"]
    assert sweeper["Timeout"] == 300  # >= the ingest role's statement_timeout + margin
    assert sweeper["VpcConfig"]["SubnetIds"]
    env = sweeper["Environment"]["Variables"]
    assert env["EVENT_BUS_NAME"] == {"Ref": bus_id}
    assert env["EVENTS_MAX_AGE_S"] == "600"
    assert env["EVENTS_SWEEP_BUDGET_S"] == "50"  # < the 1-minute schedule: no overlap
    assert env["POWERTOOLS_SERVICE_NAME"] == "cardstatus-sweeper"
    # Connects like ingest: as cardstatus_ingest with an IAM token, no secret.
    assert env["DB_USER"] == "cardstatus_ingest" and env["DB_IAM_AUTH"] == "true"
    assert "DB_SECRET_ARN" not in env
    sweeper_role = [st for lid, st in _statements(dev) if lid.startswith("FunctionsSweeperRole")]
    connect = [st for st in sweeper_role if "rds-db:connect" in _actions(st)]
    assert len(connect) == 1 and "dbuser" in _blob(connect[0]["Resource"])
    assert "cardstatus_ingest" in _blob(connect[0]["Resource"])
    assert not any(a.startswith("secretsmanager:") for st in sweeper_role for a in _actions(st))
    ienv = ingest["Environment"]["Variables"]
    assert ienv["EVENT_BUS_NAME"] == {"Ref": bus_id}
    assert ienv["EVENTS_PUBLISH_BUDGET_S"] == "60"

    schedules = [
        r
        for r in dev.of_type("AWS::Events::Rule").values()
        if r["Properties"].get("ScheduleExpression")
        and "Input" not in r["Properties"]["Targets"][0]  # partner health: infra/partner_health.py
    ]
    assert len(schedules) == 1
    rule = schedules[0]["Properties"]
    assert rule["ScheduleExpression"] == "rate(1 minute)"
    assert rule["State"] == "ENABLED"
    (target,) = rule["Targets"]
    assert "FunctionsSweeper" in _blob(target["Arn"])
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 0
    dev.template.has_resource_properties(
        "AWS::Lambda::Permission",
        {
            "Principal": "events.amazonaws.com",
            "FunctionName": {"Fn::GetAtt": [Match.string_like_regexp("FunctionsSweeper"), "Arn"]},
        },
    )


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_alarms_on_publish_failures_outbox_age_and_sweeper_errors(synth: Any, env: str) -> None:
    s = synth(env)
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in s.of_type("AWS::CloudWatch::Alarm").values()
    }
    prefix = f"cardstatus-{env}"
    failed = alarms[f"{prefix}-EventsPublishFailed"]
    assert "EventsPublishFailed" in _blob(failed["Metrics"])
    assert "cardstatus-ingest" in _blob(failed["Metrics"])
    assert "cardstatus-sweeper" in _blob(failed["Metrics"])
    age = alarms[f"{prefix}-OutboxOldestAge"]
    assert age["MetricName"] == "OutboxOldestAgeSeconds"
    assert age["Namespace"] == "CardStatus"
    assert age["Threshold"] == 600
    assert age["TreatMissingData"] == "breaching"  # a silent sweeper is a stuck outbox
    assert alarms[f"{prefix}-SweeperErrors"]["MetricName"] == "Errors"
    for name in ("EventsPublishFailed", "OutboxOldestAge", "SweeperErrors"):
        actions = _blob(alarms[f"{prefix}-{name}"]["AlarmActions"])
        assert "MonitoringAlarmTopic" in actions, name


def test_example_consumer_rule_sqs_target_with_dlq(dev: Any) -> None:
    bus_id = _bus_id(dev)
    rules = [
        r["Properties"]
        for r in dev.of_type("AWS::Events::Rule").values()
        if r["Properties"].get("EventBusName") == {"Ref": bus_id}
    ]
    assert len(rules) == 1
    rule = rules[0]
    assert rule["EventPattern"] == {"source": ["cardstatus"], "detail-type": ["CardStatusChanged"]}
    (target,) = rule["Targets"]
    assert "ExampleConsumerQueue" in _blob(target["Arn"])
    assert "ExampleConsumerDlq" in _blob(target["DeadLetterConfig"])
    queues = {k: v for k, v in dev.of_type("AWS::SQS::Queue").items() if "ExampleConsumer" in k}
    assert len(queues) == 2
    for q in queues.values():
        assert q["Properties"]["SqsManagedSseEnabled"] is True
    main = next(v for k, v in queues.items() if "Queue" in k.removeprefix("EventsExample"))
    assert "ExampleConsumerDlq" in _blob(main["Properties"]["RedrivePolicy"])
    # EventBridge may send to both, only from this rule.
    policies = [
        p
        for p in dev.of_type("AWS::SQS::QueuePolicy").values()
        if "ExampleConsumer" in _blob(p["Properties"]["Queues"])
    ]
    sends = [
        st
        for p in policies
        for st in p["Properties"]["PolicyDocument"]["Statement"]
        if st.get("Principal") == {"Service": "events.amazonaws.com"}
    ]
    assert len(sends) == 2
    for st in sends:
        assert "ExampleConsumerRule" in _blob(st["Condition"])


def test_example_consumer_can_be_disabled_by_context() -> None:
    app = build_app(
        {"env": "dev", "cardstatus:layerBuild": "cached", EXAMPLE_CONSUMER_CONTEXT: "false"},
        outdir=tempfile.mkdtemp(prefix="cardstatus-cdk-noconsumer-"),
    )
    stack = next(c for c in app.node.children if isinstance(c, CardStatusStack))
    app.synth()
    resources = Template.from_stack(stack).to_json()["Resources"]
    assert not [k for k in resources if "ExampleConsumer" in k]
    assert [k for k in resources if resources[k]["Type"] == "AWS::Events::Archive"]


def test_sweep_budget_must_fit_the_schedule() -> None:
    from infra.settings import SettingsError, cdk_json_context, deep_merge

    shared = deep_merge(
        cdk_json_context()["cardstatus:shared"], {"events": {"sweepBudgetSeconds": 60}}
    )
    with pytest.raises(SettingsError, match="sweepBudgetSeconds"):
        build_app(
            {"env": "dev", "cardstatus:layerBuild": "cached", "cardstatus:shared": shared},
            outdir=tempfile.mkdtemp(prefix="cardstatus-cdk-budget-"),
        )
