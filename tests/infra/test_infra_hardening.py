"""Security hardening (issue 10, README "Domain rules", ../shared/reviews/security.md),
asserted on the synthesised dev AND prod templates."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cardstatus import dbroles
from infra.nag import logical_id
from infra.settings import cdk_json_context

ENVS = ["dev", "prod"]


def _blob(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _function(s: Any, prefix: str) -> dict[str, Any]:
    fns = {
        k: v
        for k, v in s.of_type("AWS::Lambda::Function").items()
        if k.startswith(f"Functions{prefix}") and "Environment" in v["Properties"]
    }
    assert len(fns) == 1, sorted(fns)
    return next(iter(fns.values()))


def _role_statements(s: Any, prefix: str) -> list[dict[str, Any]]:
    out = []
    for lid, res in s.resources.items():
        if res["Type"] == "AWS::IAM::Policy" and lid.startswith(f"Functions{prefix}Role"):
            out += res["Properties"]["PolicyDocument"]["Statement"]
    return out


def _env_context(env: str) -> dict[str, Any]:
    return cdk_json_context()["cardstatus:environments"][env]


# -- alarms reach someone (H4) -----------------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_cloudwatch_may_publish_to_the_alarm_topic(synth: Any, env: str) -> None:
    s = synth(env)
    policy = next(iter(s.of_type("AWS::SNS::TopicPolicy").values()))["Properties"]
    allows = [
        st
        for st in policy["PolicyDocument"]["Statement"]
        if st["Effect"] == "Allow"
        and st.get("Principal", {}).get("Service") == "cloudwatch.amazonaws.com"
        and "sns:Publish" in _as_list(st["Action"])
    ]
    assert len(allows) == 1, "no statement lets CloudWatch alarms publish: every alarm is silent"
    cond = allows[0]["Condition"]
    assert cond["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert f":alarm:cardstatus-{env}-*" in _blob(cond["ArnLike"]["aws:SourceArn"])
    # ...and may use the topic's KMS key, under the same conditions.
    key_statements = [
        st
        for k in s.of_type("AWS::KMS::Key").values()
        for st in k["Properties"]["KeyPolicy"]["Statement"]
        if st.get("Principal", {}).get("Service") == "cloudwatch.amazonaws.com"
    ]
    assert key_statements and all(
        "aws:SourceArn" in _blob(st["Condition"]) for st in key_statements
    )


@pytest.mark.parametrize("env", ENVS)
def test_every_alarm_notifies_the_topic_including_enumeration(synth: Any, env: str) -> None:
    s = synth(env)
    alarms = s.of_type("AWS::CloudWatch::Alarm")
    for lid, alarm in alarms.items():
        actions = _blob(alarm["Properties"]["AlarmActions"])
        assert "MonitoringAlarmTopic" in actions, lid
    names = {a["Properties"]["AlarmName"] for a in alarms.values()}
    assert {f"cardstatus-{env}-ApiNotFoundShare", f"cardstatus-{env}-ApiNotFoundPerCaller"} <= names
    rule = next(iter(s.of_type("AWS::CloudWatch::InsightRule").values()))["Properties"]
    body = _blob(rule["RuleBody"])
    assert "$.userArn" in body and "404" in body


# -- no phone in traces (H1) and no side doors into the function (M9) ---------------------


@pytest.mark.parametrize("env", ENVS)
def test_stage_not_traced_functions_traced(synth: Any, env: str) -> None:
    s = synth(env)
    stage = next(iter(s.of_type("AWS::ApiGateway::Stage").values()))["Properties"]
    assert not stage.get("TracingEnabled", False)
    assert _function(s, "Api")["Properties"]["TracingConfig"] == {"Mode": "Active"}


@pytest.mark.parametrize("env", ENVS)
def test_no_test_invoke_permission(synth: Any, env: str) -> None:
    s = synth(env)
    permissions = s.of_type("AWS::Lambda::Permission").values()
    api_permissions = [p for p in permissions if "execute-api" in _blob(p["Properties"])]
    assert api_permissions
    for p in api_permissions:
        assert "test-invoke-stage" not in _blob(p["Properties"].get("SourceArn"))


@pytest.mark.parametrize("env", ENVS)
def test_no_account_wide_api_gateway_setting_by_default(synth: Any, env: str) -> None:
    assert not synth(env).of_type("AWS::ApiGateway::Account")


def test_account_wide_cloudwatch_role_only_when_asked(account_role_api: Any) -> None:
    assert len(account_role_api.of_type("AWS::ApiGateway::Account")) == 1


# -- callers: allow-list, per-caller throttling (H2) ---------------------------------------------


def _resource_policy(s: Any) -> list[dict[str, Any]]:
    api = next(iter(s.of_type("AWS::ApiGateway::RestApi").values()))["Properties"]
    return list(api["Policy"]["Statement"])


@pytest.mark.parametrize("env", ENVS)
def test_resource_policy_allows_listed_callers_and_denies_everyone_else(
    synth: Any, env: str
) -> None:
    statements = {st["Sid"]: st for st in _resource_policy(synth(env))}
    allow, deny = statements["ListedCallers"], statements["DenyEveryoneElse"]
    assert allow["Effect"] == "Allow" and deny["Effect"] == "Deny"
    assert deny["Principal"] == {"AWS": "*"}
    listed = allow["Condition"]["ArnLike"]["aws:PrincipalArn"]
    # Everyone but the listed callers and the void callers (tests/infra/test_infra_void.py).
    assert set(map(_blob, listed)) <= set(
        map(_blob, deny["Condition"]["ArnNotLike"]["aws:PrincipalArn"])
    )
    callers = _env_context(env).get("api", {}).get("callers") or {}
    if env == "prod":
        expected = sorted(
            p.split("{account}:", 1)[1] for c in callers.values() for p in c["principals"]
        )
        assert sorted(_blob(a).split('":', 1)[0] for a in listed)  # tokens rendered
        for tail in expected:
            assert tail in _blob(listed)
        assert ':*"' not in _blob(listed)  # no account-wide pattern in prod
    else:
        assert not callers and ':*"' in _blob(listed)  # dev: the account's principals


@pytest.mark.parametrize("env", ENVS)
def test_every_method_needs_iam_and_an_api_key_with_a_usage_plan_per_caller(
    synth: Any, env: str
) -> None:
    s = synth(env)
    for method in s.of_type("AWS::ApiGateway::Method").values():
        assert method["Properties"]["AuthorizationType"] == "AWS_IAM"
        # The void method is for ops roles (api.voidCallers), not API callers: no key, its own
        # permission, bounded by the void function's reserved concurrency (test_infra_void.py).
        if method["Properties"]["HttpMethod"] == "POST":
            continue
        assert method["Properties"]["ApiKeyRequired"] is True
    callers = dict(_env_context(env).get("api", {}).get("callers") or {"account": {}})
    callers["ops"] = {}  # the ops readers' key (api.opsCallers, test_infra_caller_roles.py)
    plans = s.of_type("AWS::ApiGateway::UsagePlan")
    assert len(plans) == len(callers) == len(s.of_type("AWS::ApiGateway::ApiKey"))
    assert len(s.of_type("AWS::ApiGateway::UsagePlanKey")) == len(callers)
    defaults = cdk_json_context()["cardstatus:shared"]["api"]["callerDefaults"]
    for plan in plans.values():
        props = plan["Properties"]
        name = props["UsagePlanName"].removeprefix(f"cardstatus-{env}-")
        spec = {**defaults, **callers[name]}
        assert props["Throttle"] == {
            "RateLimit": spec["rateLimit"],
            "BurstLimit": spec["burstLimit"],
        }
        assert props["Quota"] == {"Limit": spec["quotaPerDay"], "Period": "DAY"}
        assert "ApiRestApiDeploymentStage" in _blob(props["ApiStages"])


def test_private_api_keeps_the_allow_list(private_api: Any) -> None:
    sids = {st["Sid"] for st in _resource_policy(private_api)}
    assert {"ListedCallers", "DenyEveryoneElse", "OnlyThroughVpcEndpoint"} <= sids


# -- database roles and timeouts (H3, M10) -------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_ingest_logs_in_as_its_own_role_with_iam_directly_to_the_instance(
    synth: Any, env: str
) -> None:
    s = synth(env)
    env_vars = _function(s, "Ingest")["Properties"]["Environment"]["Variables"]
    assert env_vars["DB_USER"] == dbroles.INGEST
    assert env_vars["DB_IAM_AUTH"] == "true"
    assert "DatabaseInstance" in _blob(env_vars["DB_HOST"])
    assert "DB_SECRET_ARN" not in env_vars and "DB_STATEMENT_TIMEOUT_MS" not in env_vars
    statements = _role_statements(s, "Ingest")
    # Secrets Manager: the phone hash key only (README "Privacy"), never the master secret.
    phone_key = {"Ref": logical_id(s.stack.phone_key.secret)}
    for st in statements:
        if any(a.startswith("secretsmanager:") for a in _as_list(st["Action"])):
            assert _as_list(st["Resource"]) == [phone_key], st
    connect = [st for st in statements if "rds-db:connect" in _as_list(st["Action"])]
    assert len(connect) == 1
    resource = _blob(connect[0]["Resource"])
    assert f"/{dbroles.INGEST}" in resource and "DbiResourceId" in resource


def test_api_role_name_and_proxy_grant_come_from_dbroles(synth: Any) -> None:
    s = synth("prod")  # dev has no proxy (tests/infra/test_infra_cost.py)
    env_vars = _function(s, "Api")["Properties"]["Environment"]["Variables"]
    assert env_vars["DB_USER"] == dbroles.API
    proxy_policy = next(
        v for k, v in s.of_type("AWS::IAM::Policy").items() if k.startswith("DatabaseProxyRole")
    )
    assert f"/{dbroles.API}" in _blob(proxy_policy["Properties"]["PolicyDocument"])


@pytest.mark.parametrize("env", ENVS)
def test_master_secret_only_for_migrate_encrypted_with_the_stack_key(synth: Any, env: str) -> None:
    s = synth(env)
    phone_key = logical_id(s.stack.phone_key.secret)  # the phone hash key: test_infra_phone_key
    secrets = {k: v for k, v in s.of_type("AWS::SecretsManager::Secret").items() if k != phone_key}
    assert len(secrets) == 1
    secret = next(iter(secrets.values()))
    assert "DatabaseDbKey" in _blob(secret["Properties"]["KmsKeyId"])
    if env == "prod":
        assert secret["DeletionPolicy"] == "Retain"  # the retained database keeps its master
    readers = set()
    for lid, res in s.of_type("AWS::IAM::Policy").items():
        for st in res["Properties"]["PolicyDocument"]["Statement"]:
            resources = [r for r in _as_list(st["Resource"]) if r != {"Ref": phone_key}]
            if "secretsmanager:GetSecretValue" in _as_list(st["Action"]) and resources:
                readers.add(lid)  # a secret other than the phone hash key: the master secret
    assert {r[: len("FunctionsMigrateRole")] for r in readers} == {"FunctionsMigrateRole"}


@pytest.mark.parametrize("env", ENVS)
def test_statement_timeouts_below_function_timeouts(synth: Any, env: str) -> None:
    s = synth(env)
    for role, (function, margin) in dbroles.FUNCTION_OF_ROLE.items():
        prefix = function.title()
        if not any(k.startswith(f"Functions{prefix}") for k in s.resources):
            continue
        timeout = _function(s, prefix)["Properties"]["Timeout"]
        assert dbroles.statement_timeout_s(role) + margin <= timeout, (role, timeout)
    function, margin = dbroles.MIGRATE_FUNCTION
    timeout = _function(s, "Migrate")["Properties"]["Timeout"]
    assert dbroles.MIGRATE_STATEMENT_TIMEOUT_MS / 1000 + margin <= timeout


@pytest.mark.parametrize("env", ENVS)
def test_function_code_cannot_manage_network_interfaces(synth: Any, env: str) -> None:
    s = synth(env)
    for prefix in ("Ingest", "Api", "Migrate"):
        denies = [
            st
            for st in _role_statements(s, prefix)
            if st["Effect"] == "Deny" and "ec2:CreateNetworkInterface" in _as_list(st["Action"])
        ]
        assert len(denies) == 1, prefix
        assert "lambda:SourceFunctionArn" in denies[0]["Condition"]["ArnLike"]


# -- partners, bucket, endpoint (M6, M7, M8) ---------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_partner_roles_trust_only_named_principals(synth: Any, env: str) -> None:
    s = synth(env)
    trust = _env_context(env)["partnerPrincipals"]
    roles = {k: v for k, v in s.of_type("AWS::IAM::Role").items() if k.startswith("StorageUpload")}
    assert len(roles) == len(trust)
    for partner, spec in trust.items():
        role = next(v for k, v in roles.items() if k.startswith(f"StorageUpload{partner}"))
        statements = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert len(statements) == 1
        condition = statements[0]["Condition"]
        names = condition["ArnLike"]["aws:PrincipalArn"]
        for principal in spec["principals"]:
            assert principal.rsplit(":", 1)[1] in _blob(names)
        cross_account = any("{account}" not in p for p in spec["principals"])
        if cross_account:
            assert condition["StringEquals"]["sts:ExternalId"] == spec["externalId"]


@pytest.mark.parametrize("env", ENVS)
def test_bucket_denies_sse_c_and_kms_without_our_key(synth: Any, env: str) -> None:
    s = synth(env)
    policy = next(
        v
        for v in s.of_type("AWS::S3::BucketPolicy").values()
        if "StoragePartnerBucket" in _blob(v["Properties"]["Bucket"])
    )
    by_sid = {st.get("Sid"): st for st in policy["Properties"]["PolicyDocument"]["Statement"]}
    sse_c = by_sid["DenyCustomerProvidedKeys"]
    assert sse_c["Effect"] == "Deny"
    assert sse_c["Condition"] == {
        "Null": {"s3:x-amz-server-side-encryption-customer-algorithm": "false"}
    }
    no_key = by_sid["DenyKmsUploadsWithoutOurKeyId"]
    assert no_key["Effect"] == "Deny"
    assert no_key["Condition"]["StringLike"] == {"s3:x-amz-server-side-encryption": "aws:kms*"}
    assert no_key["Condition"]["Null"] == {"s3:x-amz-server-side-encryption-aws-kms-key-id": "true"}
    assert by_sid["DenyUploadsWithForeignKmsKey"]["Effect"] == "Deny"


@pytest.mark.parametrize("env", ENVS)
def test_s3_gateway_endpoint_only_reaches_this_stacks_bucket(synth: Any, env: str) -> None:
    s = synth(env)
    endpoint = next(
        v
        for v in s.of_type("AWS::EC2::VPCEndpoint").values()
        if v["Properties"].get("VpcEndpointType", "Gateway") == "Gateway"
    )
    statements = endpoint["Properties"]["PolicyDocument"]["Statement"]
    assert len(statements) == 1
    st = statements[0]
    assert st["Effect"] == "Allow"
    for resource in _as_list(st["Resource"]):
        assert "StoragePartnerBucket" in _blob(resource), resource
    assert all(a.startswith("s3:") and "*" not in a for a in _as_list(st["Action"]))
    assert st["Condition"]["StringEquals"]["aws:PrincipalAccount"] == {"Ref": "AWS::AccountId"}
