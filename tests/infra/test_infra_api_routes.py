"""The API's methods in the synthesised template: every route of the api function (GET and its
HEAD twin, POST /cards/search) with IAM auth and validated parameters, plus the void function's
POST /files/{file_id}/void (infra/void.py)."""

from __future__ import annotations

from typing import Any

import pytest

from infra.api import OPS_ROUTES, ROUTES


def _paths(dev: Any) -> dict[str, str]:
    """Logical id of each AWS::ApiGateway::Resource -> its full path."""
    resources = dev.of_type("AWS::ApiGateway::Resource")

    def path(lid: str) -> str:
        props = resources[lid]["Properties"]
        parent = props["ParentId"]
        prefix = path(parent["Ref"]) if "Ref" in parent else ""
        return f"{prefix}/{props['PathPart']}"

    return {lid: path(lid) for lid in resources}


def _methods(dev: Any) -> dict[tuple[str, str], dict[str, Any]]:
    paths = _paths(dev)
    out = {}
    for method in dev.of_type("AWS::ApiGateway::Method").values():
        props = method["Properties"]
        ref = props["ResourceId"].get("Ref")
        out[(props["HttpMethod"], paths.get(ref, "/"))] = props
    return out


def test_every_route_has_get_and_head_and_search_is_post(dev: Any) -> None:
    methods = _methods(dev)
    expected = {(m, p) for p in {**ROUTES, **OPS_ROUTES} for m in ("GET", "HEAD")}
    own = {("POST", "/files/{file_id}/void"), ("POST", "/privacy/erase")}  # infra/void.py
    expected |= {("POST", "/cards/search")} | own
    assert set(methods) == expected
    for key, props in methods.items():
        assert props["AuthorizationType"] == "AWS_IAM", key
        assert props["Integration"]["Type"] == "AWS_PROXY", key
        if key not in own:  # the void function's methods have their own permissions
            assert props["ApiKeyRequired"] is True, key  # per-caller usage plans


@pytest.mark.parametrize("path", sorted(OPS_ROUTES))
def test_ops_parameters_are_declared_and_validated(dev: Any, path: str) -> None:
    methods = _methods(dev)
    for verb in ("GET", "HEAD"):
        props = methods[(verb, path)]
        params = props["RequestParameters"]
        for name in OPS_ROUTES[path]:
            assert params[f"method.request.querystring.{name}"] is False, (verb, path, name)
        if "{file_id}" in path:
            assert params["method.request.path.file_id"] is True
        assert "RequestValidatorId" in props


def test_invoke_policy_allows_lookups_but_not_void(dev: Any) -> None:
    policies = [
        p
        for k, p in dev.of_type("AWS::IAM::ManagedPolicy").items()
        if k.startswith("ApiInvokePolicy")
    ]
    assert len(policies) == 1
    text = str(policies[0]["Properties"]["PolicyDocument"])
    # Card lookups only (api.callers); the ops routes have their own OpsReadPolicy
    # (tests/infra/test_infra_caller_roles.py).
    for fragment in ("/GET/cards", "/HEAD/cards", "/GET/get_card_status", "/POST/cards/search"):
        assert fragment in text, fragment
    assert "void" not in text and "/POST/*" not in text and "files" not in text
    assert "/GET/*" not in text and "/HEAD/*" not in text
