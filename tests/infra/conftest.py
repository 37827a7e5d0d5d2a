"""Synthesise the CDK app once per test session per environment (synth is the slow part)."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `pytest` (not `python -m pytest`) does not add the cwd
    sys.path.insert(0, str(ROOT))

import aws_cdk as cdk  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402

from infra.app import build_app  # noqa: E402
from infra.settings import cdk_json_context, deep_merge  # noqa: E402
from infra.stack import CardStatusStack  # noqa: E402


@dataclass
class Synthesised:
    app: cdk.App
    stack: CardStatusStack
    template: Template

    @property
    def resources(self) -> dict[str, Any]:
        return dict(self.template.to_json()["Resources"])

    def of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == cfn_type}


def synthesise(env: str, shared_overrides: dict[str, Any] | None = None) -> Synthesised:
    """Build, nag-check (the plugin raises on unacknowledged findings) and synthesise."""
    context: dict[str, Any] = {"env": env, "cardstatus:layerBuild": "cached"}
    if shared_overrides:
        shared = cdk_json_context()["cardstatus:shared"]
        context["cardstatus:shared"] = deep_merge(shared, shared_overrides)
    outdir = tempfile.mkdtemp(prefix=f"cardstatus-cdk-{env}-")
    # The shipped cdk.json, example principals and all (prod synth refuses them otherwise).
    app = build_app(context, outdir=outdir, example_values_ok=True)
    stack = next(c for c in app.node.children if isinstance(c, CardStatusStack))
    app.synth()
    return Synthesised(app=app, stack=stack, template=Template.from_stack(stack))


_cache: dict[str, Synthesised] = {}


@pytest.fixture(scope="session")
def synth() -> Callable[[str], Synthesised]:
    def get(env: str) -> Synthesised:
        if env not in _cache:
            _cache[env] = synthesise(env)
        return _cache[env]

    return get


@pytest.fixture(scope="session")
def dev(synth: Callable[[str], Synthesised]) -> Synthesised:
    return synth("dev")


@pytest.fixture(scope="session")
def prod(synth: Callable[[str], Synthesised]) -> Synthesised:
    return synth("prod")


@pytest.fixture(scope="session")
def private_api() -> Synthesised:
    return synthesise("dev", {"api": {"endpointType": "private"}})


@pytest.fixture(scope="session")
def account_role_api() -> Synthesised:
    """dev with the account-wide API Gateway CloudWatch role switched on (off by default)."""
    return synthesise("dev", {"api": {"createCloudWatchRole": True}})
