"""Caller roles in the stack (issue 18: N2, N8, N9, N13, N14, H2 alarm).

Three explicit allow-lists (cdk.json api.callers, api.opsCallers, api.voidCallers), each
admitted to its own methods only, with an explicit Deny for every principal outside each list;
prod refuses whole-account patterns in every list; the event bus admits PutEvents from the
publishers' roles only; the void function and the lookup budget have alarms.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.api import ROLE_RESOURCES, caller_statements, route_role
from infra.settings import Caller, SettingsError, cdk_json_context, deep_merge, load_settings

ENVS = ("dev", "prod")


def _blob(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _policy(s: Any) -> dict[str, dict[str, Any]]:
    api = next(iter(s.of_type("AWS::ApiGateway::RestApi").values()))["Properties"]
    return {st["Sid"]: st for st in api["Policy"]["Statement"]}


def _arns(statement: dict[str, Any], op: str) -> list[str]:
    value = statement["Condition"][op]["aws:PrincipalArn"]
    return [_blob(v) for v in (value if isinstance(value, list) else [value])]


def _resources(statement: dict[str, Any]) -> list[str]:
    value = statement["Resource"]
    return value if isinstance(value, list) else [value]


# -- every method has exactly one role --------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_every_method_of_the_api_belongs_to_one_caller_role(synth: Any, env: str) -> None:
    s = synth(env)
    methods = [(m.http_method, m.resource.path) for m in s.stack.api.rest_api.methods]
    assert len(methods) > 10
    unclassified = [(m, p) for m, p in methods if route_role(m, p) is None]
    assert not unclassified, (
        f"methods without a caller role (add their paths to infra/api.py ROLE_RESOURCES): "
        f"{unclassified}"
    )
    roles = {(m, p): route_role(m, p) for m, p in methods}
    assert roles[("GET", "/stuck_cards")] == "ops"
    assert roles[("GET", "/files/{file_id}/rejects")] == "ops"
    assert roles[("HEAD", "/files")] == "ops"
    assert roles[("GET", "/cards/{card_id}")] == "lookup"
    assert roles[("POST", "/cards/search")] == "lookup"
    assert roles[("POST", "/files/{file_id}/void")] == "void"
    assert roles[("GET", "/health")] == "health"


def test_route_roles_cover_the_partner_routes_and_nothing_twice() -> None:
    assert route_role("GET", "/partners") == "ops"
    assert route_role("HEAD", "/partners/{partner}") == "ops"
    assert route_role("GET", "/files/{file_id}/cards") == "ops"
    assert route_role("POST", "/files/{file_id}/rejects") is None  # nobody: no such method
    assert route_role("DELETE", "/cards/{card_id}") is None


# -- the resource policy ----------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_each_role_is_allowed_its_methods_and_everyone_else_is_denied_them(
    synth: Any, env: str
) -> None:
    statements = _policy(synth(env))
    pairs = {
        "lookup": ("ListedCallers", "OnlyCallersLookUpCards"),
        "ops": ("OpsCallers", "OnlyOpsCallersReadOps"),
        "void": ("VoidCallers", "OnlyVoidCallersVoid"),
        "health": ("HealthCallers", "OnlyReadersCheckHealth"),
    }
    for role, (allow_sid, deny_sid) in pairs.items():
        allow, deny = statements[allow_sid], statements[deny_sid]
        assert allow["Effect"] == "Allow" and deny["Effect"] == "Deny"
        assert deny["Principal"] == {"AWS": "*"}
        assert sorted(_resources(allow)) == sorted(_resources(deny)) == sorted(ROLE_RESOURCES[role])
        # The Deny names exactly the principals the Allow admits: nobody else gets in.
        assert sorted(_arns(allow, "ArnLike")) == sorted(_arns(deny, "ArnNotLike"))
    everyone = statements["DenyEveryoneElse"]
    assert _resources(everyone) == ["execute-api:/*"]
    listed = set(_arns(everyone, "ArnNotLike"))
    for sid in ("ListedCallers", "OpsCallers", "VoidCallers"):
        assert set(_arns(statements[sid], "ArnLike")) <= listed


def test_prod_lists_are_separate_the_void_callers_are_not_exempt(prod: Any) -> None:
    """N8: a void caller (ops role) is not on api.callers, so the explicit Deny of the lookup
    routes binds it whatever its identity policy allows; N9: API callers are denied the ops
    routes."""
    statements = _policy(prod)
    callers = set(_arns(statements["ListedCallers"], "ArnLike"))
    voiders = set(_arns(statements["VoidCallers"], "ArnLike"))
    ops = set(_arns(statements["OpsCallers"], "ArnLike"))
    assert voiders and ops and callers
    assert not voiders & callers
    assert not ops & callers
    deny_lookup = set(_arns(statements["OnlyCallersLookUpCards"], "ArnNotLike"))
    assert not voiders & deny_lookup  # so the Deny applies to every void caller
    deny_ops = set(_arns(statements["OnlyOpsCallersReadOps"], "ArnNotLike"))
    assert not callers & deny_ops  # and to every API caller on the ops routes
    assert "execute-api:/*/GET/stuck_cards" in _resources(statements["OnlyOpsCallersReadOps"])
    for arn in callers | voiders | ops:
        assert ':*"' not in arn and "role/*" not in arn


def test_an_empty_list_admits_nobody_to_its_methods() -> None:
    reader = Caller("reader", ("arn:{partition}:iam::{account}:role/reader",), 1, 1, 1)
    statements = {st.sid: st.to_statement_json() for st in caller_statements([reader], (), ())}
    assert "VoidCallers" not in statements and "OpsCallers" not in statements
    for sid in ("OnlyVoidCallersVoid", "OnlyOpsCallersReadOps"):
        assert statements[sid]["Effect"] == "Deny" and "Condition" not in statements[sid]


@pytest.mark.parametrize("env", ENVS)
def test_identity_policies_split_by_role(synth: Any, env: str) -> None:
    s = synth(env)
    policies = s.of_type("AWS::IAM::ManagedPolicy")
    (invoke,) = [p for k, p in policies.items() if k.startswith("ApiInvokePolicy")]
    (ops,) = [p for k, p in policies.items() if k.startswith("ApiOpsReadPolicy")]
    invoke_doc, ops_doc = _blob(invoke["Properties"]), _blob(ops["Properties"])
    assert "/GET/cards" in invoke_doc and "files" not in invoke_doc and "stuck" not in invoke_doc
    assert "/GET/stuck_cards" in ops_doc and "/GET/cards" not in ops_doc
    assert "/GET/*" not in invoke_doc and "/GET/*" not in ops_doc
    outputs = s.template.to_json()["Outputs"]
    assert {"InvokePolicyArn", "OpsReadPolicyArn", "ApiKeyIdOps"} <= set(outputs)


# -- N13: prod refuses whole-account patterns in every list, naming the cdk.json key -----------


class _FakeNode:
    def __init__(self, context: dict[str, Any]) -> None:
        self._context = context

    def try_get_context(self, key: str) -> Any:
        return self._context.get(key)


def _prod_with(**api: Any) -> Any:
    ctx = cdk_json_context()
    ctx["env"] = "prod"
    envs = ctx["cardstatus:environments"]
    envs["prod"] = deep_merge(envs["prod"], {"api": api})
    return load_settings(_FakeNode(ctx))  # type: ignore[arg-type]


WHOLE_ACCOUNT = [
    "arn:{partition}:iam::{account}:role/*",
    "arn:{partition}:iam::{account}:user/*",
    "arn:{partition}:iam::{account}:role/?*",
    "arn:{partition}:iam::{account}:role/a*",
    "arn:{partition}:iam::{account}:root",
    "arn:aws:iam::123456789012:*",
]


@pytest.mark.parametrize("pattern", WHOLE_ACCOUNT)
@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("api.callers.svc.principals", lambda p: {"callers": {"svc": {"principals": [p]}}}),
        ("api.opsCallers", lambda p: {"opsCallers": [p]}),
        ("api.voidCallers", lambda p: {"voidCallers": [p]}),
    ],
)
def test_prod_synth_refuses_whole_account_patterns_naming_the_key(
    pattern: str, key: str, value: Any
) -> None:
    with pytest.raises(SettingsError, match=rf"cdk\.json {key}: .*trusts a whole account"):
        _prod_with(**value(pattern))


@pytest.mark.parametrize("pattern", WHOLE_ACCOUNT[:4])
def test_partner_trust_refuses_role_star_everywhere(pattern: str) -> None:
    ctx = cdk_json_context()
    ctx["env"] = "dev"
    ctx["cardstatus:environments"]["dev"]["partnerPrincipals"]["acme"] = {"principals": [pattern]}
    with pytest.raises(SettingsError, match=r"partnerPrincipals\.acme\.principals"):
        load_settings(_FakeNode(ctx))  # type: ignore[arg-type]


def test_named_prefixes_are_accepted_in_prod() -> None:
    settings = _prod_with(opsCallers=["arn:{partition}:iam::{account}:role/ops-team-*"])
    assert settings.ops_callers == ("arn:{partition}:iam::{account}:role/ops-team-*",)


# -- N2: the event bus admits PutEvents from the publishers only ------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_event_bus_policy_denies_put_events_to_everyone_but_the_publishers(
    synth: Any, env: str
) -> None:
    s = synth(env)
    by_sid = {
        p["Properties"]["Statement"]["Sid"].removeprefix("cdk-"): p["Properties"]["Statement"]
        for p in s.of_type("AWS::Events::EventBusPolicy").values()
    }
    assert set(by_sid) == {"OnlyPublishersPutEvents", "PublishersPutEvents"}
    deny = by_sid["OnlyPublishersPutEvents"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == {"AWS": "*"}
    assert deny["Action"] == "events:PutEvents"
    roles = deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    stack = s.stack
    publishers = [stack.functions.ingest, stack.functions.sweeper, stack.void.function]
    expected = sorted(_blob(stack.resolve(fn.role.role_arn)) for fn in publishers)
    assert sorted(map(_blob, roles)) == expected
    assert _blob(stack.resolve(stack.functions.api.role.role_arn)) not in expected
    allow = by_sid["PublishersPutEvents"]
    assert sorted(map(_blob, allow["Condition"]["ArnEquals"]["aws:PrincipalArn"])) == sorted(
        map(_blob, roles)
    )


# -- N14 and the lookup budget: alarms --------------------------------------------------------


@pytest.mark.parametrize("env", ENVS)
def test_void_and_lookup_budget_alarms_notify_the_topic(synth: Any, env: str) -> None:
    s = synth(env)
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in s.of_type("AWS::CloudWatch::Alarm").values()
    }
    for name in ("VoidErrors", "VoidThrottles", "FilesVoided", "LookupBudgetExceeded"):
        alarm = alarms[f"cardstatus-{env}-{name}"]
        assert "MonitoringAlarmTopic" in _blob(alarm["AlarmActions"])
        assert alarm["Threshold"] == 0
    assert alarms[f"cardstatus-{env}-FilesVoided"]["MetricName"] == "FilesVoided"
    budget = alarms[f"cardstatus-{env}-LookupBudgetExceeded"]
    assert budget["MetricName"] == "LookupBudgetExceeded"
    assert budget["Dimensions"] == [{"Name": "service", "Value": "cardstatus-api"}]
    api = next(
        fn
        for name, fn in s.of_type("AWS::Lambda::Function").items()
        if name.startswith("FunctionsApi")
    )
    variables = api["Properties"]["Environment"]["Variables"]
    shared = cdk_json_context()["cardstatus:shared"]["api"]
    assert variables["LOOKUP_MISMATCH_BUDGET"] == str(shared["lookupMismatchBudget"])
    assert variables["LOOKUP_BUDGET_WINDOW_S"] == str(shared["lookupBudgetWindowSeconds"])


def _expanded(value: Any) -> Any:
    """The policy as API Gateway stores it: tokens replaced by values of realistic length, and
    `execute-api:/` by the full ARN prefix API Gateway expands it to."""
    if isinstance(value, dict):
        if "Fn::Join" in value:
            sep, parts = value["Fn::Join"]
            return sep.join(_expanded(p) for p in parts)
        if "Ref" in value:
            return {"AWS::AccountId": "123456789012", "AWS::Partition": "aws-us-gov"}.get(
                value["Ref"], "x" * 20
            )
        return {k: _expanded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expanded(v) for v in value]
    if isinstance(value, str):
        return value.replace(
            "execute-api:/", "arn:aws:execute-api:ap-southeast-2:123456789012:a1b2c3d4e5/"
        )
    return value


@pytest.mark.parametrize("env", ENVS)
def test_resource_policy_fits_api_gateways_limit_with_room(synth: Any, env: str) -> None:
    """API Gateway refuses a resource policy over 8192 characters (a quota): the role lists
    leave room for a few more callers."""
    api = next(iter(synth(env).of_type("AWS::ApiGateway::RestApi").values()))["Properties"]
    size = len(json.dumps(_expanded(api["Policy"]), separators=(",", ":")))
    assert size < 8192 * 0.8, size
