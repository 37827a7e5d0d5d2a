"""The void endpoint in the stack (infra/void.py): its own function, database role, API method
and IAM permission, which the API callers' InvokePolicy does not grant."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cardstatus import dbroles

ENVS = ["dev", "prod"]


def _blob(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _void_function(s: Any) -> tuple[str, dict[str, Any]]:
    (item,) = [
        (lid, res)
        for lid, res in s.of_type("AWS::Lambda::Function").items()
        if res["Properties"].get("Handler") == "functions.void.app.handler"
    ]
    return item


def _statements_of_role(s: Any, role_ref: Any) -> list[dict[str, Any]]:
    role_id = role_ref["Fn::GetAtt"][0]
    out: list[dict[str, Any]] = []
    for res in s.of_type("AWS::IAM::Policy").values():
        if {"Ref": role_id} in res["Properties"]["Roles"]:
            out += res["Properties"]["PolicyDocument"]["Statement"]
    return out


def _void_method(s: Any) -> dict[str, Any]:
    lid, _ = _void_function(s)
    (method,) = [
        m["Properties"]
        for m in s.of_type("AWS::ApiGateway::Method").values()
        if m["Properties"]["HttpMethod"] == "POST"
        and lid in _blob(m["Properties"]["Integration"]["Uri"])
        and "privacy" not in _blob(m["Properties"]["ResourceId"]).lower()  # POST /privacy/erase
    ]
    return method


@pytest.mark.parametrize("env", ENVS)
def test_void_function_connects_as_the_void_role_and_writes_only_reports(
    synth: Any, env: str
) -> None:
    s = synth(env)
    _, fn = _void_function(s)
    props = fn["Properties"]
    env_vars = props["Environment"]["Variables"]
    assert env_vars["DB_USER"] == dbroles.VOID and env_vars["DB_IAM_AUTH"] == "true"
    assert "DatabaseInstance" in _blob(env_vars["DB_HOST"])  # directly, not the proxy
    assert "DB_SECRET_ARN" not in env_vars
    assert props["Timeout"] >= dbroles.statement_timeout_s(dbroles.VOID) + 30
    assert props["ReservedConcurrentExecutions"] == 2
    statements = _statements_of_role(s, props["Role"])
    actions = {a for st in statements for a in _as_list(st["Action"])}
    assert "rds-db:connect" in actions and "s3:PutObject" in actions
    assert not any(a.startswith(("s3:Get", "s3:Delete")) for a in actions)
    # Secrets: only the phone hash key (POST /privacy/erase hashes the number), never the
    # database master secret.
    (phone_key_id,) = [k for k in s.of_type("AWS::SecretsManager::Secret") if "PhoneKey" in k]
    for st in statements:
        if any(a.startswith("secretsmanager:") for a in _as_list(st["Action"])):
            assert st["Resource"] == {"Ref": phone_key_id}, st
    (connect,) = [st for st in statements if st["Action"] == "rds-db:connect"]
    assert f"/{dbroles.VOID}" in _blob(connect["Resource"])
    (put,) = [st for st in statements if st["Action"] == "s3:PutObject"]
    assert "/reports/*" in _blob(put["Resource"])
    # It publishes its void's events after commit: PutEvents on the status bus, nothing more.
    (bus_id,) = s.of_type("AWS::Events::EventBus")
    (put_events,) = [st for st in statements if "events:PutEvents" in _as_list(st["Action"])]
    assert _as_list(put_events["Action"]) == ["events:PutEvents"]
    assert put_events["Resource"] == {"Fn::GetAtt": [bus_id, "Arn"]}
    assert env_vars["EVENT_BUS_NAME"] == {"Ref": bus_id}
    assert not any(a.startswith("events:") and a != "events:PutEvents" for a in actions)


@pytest.mark.parametrize("env", ENVS)
def test_void_method_is_iam_authorised_and_has_its_own_policy(synth: Any, env: str) -> None:
    s = synth(env)
    method = _void_method(s)
    assert method["AuthorizationType"] == "AWS_IAM"
    assert method["ApiKeyRequired"] is False
    lid, _ = _void_function(s)
    assert lid in _blob(method["Integration"]["Uri"])
    policies = {k: v["Properties"] for k, v in s.of_type("AWS::IAM::ManagedPolicy").items()}
    (void_policy,) = [p for k, p in policies.items() if k.startswith("VoidVoidPolicy")]
    (statement,) = void_policy["PolicyDocument"]["Statement"]
    assert statement["Action"] == "execute-api:Invoke"
    assert "/POST/files/*/void" in _blob(statement["Resource"])
    # The API callers' policy: lookups only (GET, HEAD, POST /cards/search), never the void.
    (invoke,) = [p for k, p in policies.items() if k.startswith("ApiInvokePolicy")]
    assert "/GET/" in _blob(invoke["PolicyDocument"]) and "void" not in _blob(invoke)
    assert "/POST/*" not in _blob(invoke)
    outputs = s.template.to_json()["Outputs"]
    assert {"VoidInvokeArn", "VoidPolicyArn"} <= set(outputs)


@pytest.mark.parametrize("env", ENVS)
def test_resource_policy_admits_only_void_callers_to_the_void(synth: Any, env: str) -> None:
    s = synth(env)
    api = next(iter(s.of_type("AWS::ApiGateway::RestApi").values()))["Properties"]
    statements = {st["Sid"]: st for st in api["Policy"]["Statement"]}
    only = statements["OnlyVoidCallersVoid"]
    assert only["Effect"] == "Deny" and only["Principal"] == {"AWS": "*"}
    assert only["Resource"] == "execute-api:/*/POST/files/*/void"
    allow = statements["VoidCallers"]
    assert allow["Resource"] == only["Resource"]
    voiders = allow["Condition"]["ArnLike"]["aws:PrincipalArn"]
    assert only["Condition"]["ArnNotLike"]["aws:PrincipalArn"] == voiders
    everyone_else = statements["DenyEveryoneElse"]["Condition"]["ArnNotLike"]["aws:PrincipalArn"]
    assert all(v in everyone_else for v in voiders)
    if env == "prod":  # named ops roles, not the API callers
        assert "cardstatus-prod-ops-" in _blob(voiders) and ':*"' not in _blob(voiders)
        listed = statements["ListedCallers"]["Condition"]["ArnLike"]["aws:PrincipalArn"]
        assert not set(map(_blob, voiders)) & set(map(_blob, listed))


def test_no_void_callers_in_prod_means_nobody_voids_through_the_api() -> None:
    from infra.api import caller_statements
    from infra.settings import Caller

    reader = Caller("reader", ("arn:{partition}:iam::{account}:role/reader",), 1, 1, 1)
    statements = {st.sid: st.to_statement_json() for st in caller_statements([reader], ())}
    assert "VoidCallers" not in statements
    only = statements["OnlyVoidCallersVoid"]
    assert only["Effect"] == "Deny" and "Condition" not in only
