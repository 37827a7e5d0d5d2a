"""The lookup audit sink in the template (infra/audit.py): the api's audit lines reach the audit
function through a subscription filter on the api function's own log group; the function
appends them as the api's database user, directly to the writer; failed batches go to an
encrypted DLQ; two alarms. Both engines (the instance, and `-c database=aurora`), dev and prod
(prod: RDS Proxy in front of the api, SnapStart alias)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_infra_aurora import _synth as aurora_synth

from cardstatus import dbroles
from conftest import Synthesised
from infra.audit import AUDIT_FILTER, MAX_EVENT_AGE, RETRY_ATTEMPTS

CASES = ["dev", "prod", "dev-aurora", "prod-aurora"]
FILTER = '{ $.audit.route = "*" }'


@pytest.fixture(params=CASES)
def s(request: pytest.FixtureRequest, synth: Any) -> Synthesised:
    env, _, engine = str(request.param).partition("-")
    return aurora_synth(env) if engine == "aurora" else synth(env)  # type: ignore[no-any-return]


def _blob(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _ref(s: Synthesised, value: str) -> Any:
    return s.stack.resolve(value)


def _lid(s: Synthesised, construct: Any) -> str:
    return s.stack.get_logical_id(construct.node.default_child)


def _audit_function(s: Synthesised) -> tuple[str, dict[str, Any]]:
    (item,) = [
        (lid, res["Properties"])
        for lid, res in s.of_type("AWS::Lambda::Function").items()
        if res["Properties"].get("Handler") == "functions.audit.app.handler"
    ]
    return item


def _audit_statements(s: Synthesised) -> list[dict[str, Any]]:
    _, fn = _audit_function(s)
    role_id = fn["Role"]["Fn::GetAtt"][0]
    return [
        st
        for res in s.of_type("AWS::IAM::Policy").values()
        if {"Ref": role_id} in res["Properties"]["Roles"]
        for st in res["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_the_filter_renders_as_the_audit_lines_pattern() -> None:
    assert AUDIT_FILTER.log_pattern_string == FILTER


def test_audit_function_connects_directly_to_the_writer_as_the_api_user(s: Synthesised) -> None:
    _, fn = _audit_function(s)
    env = fn["Environment"]["Variables"]
    assert env["DB_USER"] == dbroles.API == s.stack.database.api_user
    assert env["DB_IAM_AUTH"] == "true"
    assert env["DB_HOST"] == _ref(s, s.stack.database.writer_endpoint)
    assert "Proxy" not in _blob(env["DB_HOST"])  # never through RDS Proxy, even in prod
    assert "DB_SECRET_ARN" not in env and "DB_READ_HOST" not in env
    assert env["POWERTOOLS_SERVICE_NAME"] == "cardstatus-audit"
    assert fn["Timeout"] == 60 and fn["MemorySize"] == 256
    assert fn["Timeout"] >= dbroles.statement_timeout_s(dbroles.API) + 2
    assert fn["ReservedConcurrentExecutions"] == 2  # bounded database connections
    assert fn["Runtime"] == "python3.12" and fn["Architectures"] == ["arm64"]
    assert fn["VpcConfig"]["SecurityGroupIds"] == [
        _ref(s, s.stack.audit.security_group.security_group_id)
    ]


def test_audit_role_may_connect_as_the_api_user_only_and_send_to_its_dlq(s: Synthesised) -> None:
    statements = _audit_statements(s)
    (connect,) = [st for st in statements if "rds-db:connect" in _as_list(st["Action"])]
    assert connect["Action"] == "rds-db:connect"
    resource = _blob(connect["Resource"])
    assert resource.endswith(f'/{dbroles.API}"]]}}') and resource.count("dbuser") == 1
    assert dbroles.INGEST not in resource and dbroles.VOID not in resource
    assert _lid(s, s.stack.database.cluster or s.stack.database.instance) in resource
    assert "Proxy" not in resource
    (send,) = [st for st in statements if "sqs:SendMessage" in _as_list(st["Action"])]
    assert send["Action"] == "sqs:SendMessage"
    assert send["Resource"] == _ref(s, s.stack.audit.dlq.queue_arn)
    (kms,) = [st for st in statements if any(a.startswith("kms:") for a in _as_list(st["Action"]))]
    assert sorted(kms["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert kms["Resource"] == _ref(s, s.stack.queueing.key.key_arn)
    assert "sqs." in _blob(kms["Condition"]["StringEquals"]["kms:ViaService"])
    actions = {a for st in statements for a in _as_list(st["Action"])}
    assert not any(a.startswith(("s3:", "secretsmanager:", "events:", "lambda:")) for a in actions)


def test_audit_function_reaches_the_database_and_nothing_else(s: Synthesised) -> None:
    sg = _ref(s, s.stack.audit.security_group.security_group_id)
    db_sg = _ref(s, s.stack.database.db_sg.security_group_id)
    egress = [
        r["Properties"]
        for r in s.of_type("AWS::EC2::SecurityGroupEgress").values()
        if r["Properties"]["GroupId"] == sg
    ]
    assert egress == [
        {
            "Description": "PostgreSQL to the instance",
            "DestinationSecurityGroupId": db_sg,
            "FromPort": 5432,
            "GroupId": sg,
            "IpProtocol": "tcp",
            "ToPort": 5432,
        }
    ]
    ingress = [
        r["Properties"]
        for r in s.of_type("AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"].get("SourceSecurityGroupId") == sg
    ]
    assert [(i["GroupId"], i["FromPort"]) for i in ingress] == [(db_sg, 5432)]
    sg_props = s.resources[sg["Fn::GetAtt"][0]]["Properties"]
    assert not any(r.get("CidrIp") == "0.0.0.0/0" for r in sg_props.get("SecurityGroupEgress", []))


def test_subscription_filter_sends_only_audit_lines_of_the_api_log_group(s: Synthesised) -> None:
    audit_id, _ = _audit_function(s)
    api = s.stack.functions.api
    api_log_group = api.log_group
    (sub,) = [r["Properties"] for r in s.of_type("AWS::Logs::SubscriptionFilter").values()]
    assert sub["FilterPattern"] == FILTER
    assert sub["LogGroupName"] == _ref(s, api_log_group.log_group_name)
    assert sub["DestinationArn"] == {"Fn::GetAtt": [audit_id, "Arn"]}
    # The api function's own log group (the one it writes to, alias or not).
    api_props = s.resources[_lid(s, api)]["Properties"]
    assert api_props["LoggingConfig"]["LogGroup"] == sub["LogGroupName"]


def test_only_that_log_group_may_invoke_the_audit_function(s: Synthesised) -> None:
    audit_id, _ = _audit_function(s)
    permissions = [
        r["Properties"]
        for r in s.of_type("AWS::Lambda::Permission").values()
        if audit_id in _blob(r["Properties"]["FunctionName"])
    ]
    assert permissions == [
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": {"Fn::GetAtt": [audit_id, "Arn"]},
            "Principal": "logs.amazonaws.com",
            "SourceArn": _ref(s, s.stack.functions.api.log_group.log_group_arn),
        }
    ]
    # The subscription is created after CloudWatch Logs may invoke the function.
    (sub,) = s.of_type("AWS::Logs::SubscriptionFilter").values()
    (perm_id,) = [
        lid
        for lid, r in s.of_type("AWS::Lambda::Permission").items()
        if audit_id in _blob(r["Properties"]["FunctionName"])
    ]
    assert perm_id in sub["DependsOn"]


def test_failed_batches_retry_twice_then_go_to_an_encrypted_dlq(s: Synthesised) -> None:
    audit_id, fn = _audit_function(s)
    (config,) = s.of_type("AWS::Lambda::EventInvokeConfig").values()  # the audit function's
    props = config["Properties"]
    dlq_arn = _ref(s, s.stack.audit.dlq.queue_arn)
    assert props == {
        "FunctionName": {"Ref": audit_id},
        "Qualifier": "$LATEST",
        "MaximumRetryAttempts": 2,
        "MaximumEventAgeInSeconds": 6 * 3600,  # Lambda's maximum
        "DestinationConfig": {"OnFailure": {"Destination": dlq_arn}},
    }
    assert (RETRY_ATTEMPTS, MAX_EVENT_AGE.to_seconds()) == (2, 6 * 3600)
    # Lambda checks the role may send to the destination when the config is created.
    role = s.stack.audit.function.role
    assert role is not None and fn["Role"] == {"Fn::GetAtt": [role_id := _lid(s, role), "Arn"]}
    policy_id = _lid(s, role.node.find_child("DefaultPolicy"))
    assert {role_id, policy_id} <= set(config["DependsOn"])
    dlq_id = dlq_arn["Fn::GetAtt"][0]
    dlq = s.resources[dlq_id]["Properties"]
    ingest_dlq = s.resources[_ref(s, s.stack.queueing.dlq.queue_arn)["Fn::GetAtt"][0]]
    assert dlq["KmsMasterKeyId"] == ingest_dlq["Properties"]["KmsMasterKeyId"]  # messages key
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600
    (policy,) = [
        r["Properties"]
        for r in s.of_type("AWS::SQS::QueuePolicy").values()
        if r["Properties"]["Queues"] == [{"Ref": dlq_id}]
    ]
    assert any(
        st["Effect"] == "Deny"
        and st["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        and st["Resource"] == dlq_arn
        for st in policy["PolicyDocument"]["Statement"]
    )


def test_alarms_on_the_dlq_and_the_functions_errors_notify_the_topic(s: Synthesised) -> None:
    audit_id, _ = _audit_function(s)
    topic = _ref(s, s.stack.monitoring.topic.topic_arn)
    prefix = s.stack.settings.resource_prefix
    alarms = {
        r["Properties"]["AlarmName"]: r["Properties"]
        for r in s.of_type("AWS::CloudWatch::Alarm").values()
    }
    dlq = alarms[f"{prefix}-AuditDlqNotEmpty"]
    assert (dlq["Namespace"], dlq["MetricName"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
    )
    assert dlq["Dimensions"] == [
        {"Name": "QueueName", "Value": _ref(s, s.stack.audit.dlq.queue_name)}
    ]
    errors = alarms[f"{prefix}-AuditErrors"]
    assert (errors["Namespace"], errors["MetricName"], errors["Statistic"]) == (
        "AWS/Lambda",
        "Errors",
        "Sum",
    )
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": audit_id}}]
    for alarm in (dlq, errors):
        assert alarm["Threshold"] == 0
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["AlarmActions"] == [topic] and alarm["OKActions"] == [topic]
        assert alarm["TreatMissingData"] == "notBreaching"
