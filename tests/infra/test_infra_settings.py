"""cdk.json context rules that would otherwise only fail at deploy time (or never)."""

from __future__ import annotations

from typing import Any

import pytest
from constructs import Node

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
    node: Node = _FakeNode(ctx)  # type: ignore[assignment]
    return load_settings(node)


def test_both_environments_load() -> None:
    dev, prod = _settings("dev"), _settings("prod")
    assert not dev.get_bool("database", "deletionProtection")
    assert prod.get_bool("database", "deletionProtection")
    assert prod.get_str("removalPolicy") == "retain"


def test_unknown_environment_rejected() -> None:
    with pytest.raises(SettingsError, match="unknown environment"):
        _settings("staging")


def test_visibility_must_cover_six_function_timeouts() -> None:
    with pytest.raises(SettingsError, match="6 x"):
        _settings(queue={"visibilityTimeoutSeconds": 299})


def test_max_receive_count_at_least_five() -> None:
    with pytest.raises(SettingsError, match="maxReceiveCount"):
        _settings(queue={"maxReceiveCount": 3})


def test_prefixes_must_not_overlap() -> None:
    with pytest.raises(SettingsError, match="overlap"):
        _settings(bucket={"reportsPrefix": "incoming/reports/"})


def test_shared_queue_keys_documented_for_local_runner() -> None:
    shared = cdk_json_context()["cardstatus:shared"]
    assert shared["bucket"]["incomingPrefix"] == "incoming/"
    assert shared["bucket"]["reportsPrefix"] == "reports/"
    for key in ("maxReceiveCount", "visibilityTimeoutSeconds", "batchSize"):
        assert key in shared["queue"]
