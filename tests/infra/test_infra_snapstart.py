"""Lambda SnapStart for the api function (docs/DEPLOY.md "SnapStart"): on in prod behind the
alias `live`, off in dev; never on ingest or migrate."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Annotations, Match

from infra.settings import SettingsError, cdk_json_context, deep_merge, load_settings


class _FakeNode:
    def __init__(self, context: dict[str, Any]) -> None:
        self._context = context

    def try_get_context(self, key: str) -> Any:
        return self._context.get(key)


def _settings(env: str = "dev", **shared_overrides: Any) -> Any:
    ctx = cdk_json_context()
    ctx["env"] = env
    ctx["cardstatus:shared"] = deep_merge(ctx["cardstatus:shared"], shared_overrides)
    return load_settings(_FakeNode(ctx))  # type: ignore[arg-type]


def _functions(s: Any) -> dict[str, dict[str, Any]]:
    """Our three functions by name (ingest, api, migrate), not the CDK-provided ones."""
    out = {}
    for lid, res in s.of_type("AWS::Lambda::Function").items():
        for name in ("Ingest", "Api", "Migrate"):
            if lid.startswith(f"Functions{name}") and "Environment" in res["Properties"]:
                out[name.lower()] = {"id": lid, **res}
    assert sorted(out) == ["api", "ingest", "migrate"], sorted(out)
    return out


def _api_integration_targets(s: Any) -> list[str]:
    """What each API Gateway method integration and invoke permission points at."""
    targets = []
    for res in s.of_type("AWS::ApiGateway::Method").values():
        targets.append(json.dumps(res["Properties"]["Integration"]["Uri"], sort_keys=True))
    for res in s.of_type("AWS::Lambda::Permission").values():
        if res["Properties"].get("Principal") == "apigateway.amazonaws.com":
            targets.append(json.dumps(res["Properties"]["FunctionName"], sort_keys=True))
    assert targets
    return targets


def test_prod_api_uses_snapstart_through_the_live_alias(prod: Any) -> None:
    fns = _functions(prod)
    api = fns["api"]
    assert api["Properties"]["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    versions = prod.of_type("AWS::Lambda::Version")
    assert len(versions) == 1
    ((version_id, version),) = versions.items()
    assert version["Properties"]["FunctionName"] == {"Ref": api["id"]}
    # A superseded version is deleted: Python snapshots are billed while their version exists.
    assert version["DeletionPolicy"] == "Delete"
    aliases = prod.of_type("AWS::Lambda::Alias")
    assert len(aliases) == 1
    ((alias_id, alias),) = aliases.items()
    assert alias["Properties"]["Name"] == "live"
    assert alias["Properties"]["FunctionVersion"] == {"Fn::GetAtt": [version_id, "Version"]}
    # (other functions behind the same REST API, e.g. void, have integrations of their own)
    targets = _api_integration_targets(prod)
    assert [t for t in targets if alias_id in t]
    assert not [t for t in targets if api["id"] in t and alias_id not in t]


def test_dev_api_has_no_snapstart_and_is_invoked_directly(dev: Any) -> None:
    api = _functions(dev)["api"]
    assert "SnapStart" not in api["Properties"]
    assert not dev.of_type("AWS::Lambda::Version")
    assert not dev.of_type("AWS::Lambda::Alias")
    assert [t for t in _api_integration_targets(dev) if api["id"] in t]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_ingest_and_migrate_never_use_snapstart(synth: Any, env: str) -> None:
    fns = _functions(synth(env))
    assert "SnapStart" not in fns["ingest"]["Properties"]
    assert "SnapStart" not in fns["migrate"]["Properties"]


def test_prod_synth_leaves_no_snapstart_warning(prod: Any) -> None:
    warnings = Annotations.from_stack(prod.stack).find_warning(
        "*", Match.string_like_regexp("SnapStart")
    )
    assert warnings == []


def test_snapstart_flag_must_be_boolean() -> None:
    with pytest.raises(SettingsError, match="snapStart must be true or false"):
        _settings(functions={"api": {"snapStart": "yes"}})


def test_snapstart_only_where_it_is_wired() -> None:
    with pytest.raises(SettingsError, match="SnapStart is wired for"):
        _settings(functions={"ingest": {"snapStart": True}})


def test_snapstart_on_in_prod_off_in_dev() -> None:
    assert _settings("prod").function("api").snap_start
    assert not _settings("dev").function("api").snap_start
    assert not _settings("prod").function("ingest").snap_start
