"""Prod synth refuses the example values cdk.json ships (documentation accounts, the example
principals and external id, an alarm address at example.com), naming each cdk.json key;
docs/DEPLOY.md "Values to replace" lists them. Dev keeps working with its own defaults."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tempfile
from typing import Any

import pytest

from infra.app import build_app
from infra.settings import (
    Settings,
    SettingsError,
    cdk_json_context,
    deep_merge,
    example_values,
    refuse_example_values,
)

ROOT_KEY = "cardstatus:environments.prod"
SHIPPED = {
    "alarms.email",
    "api.callers.notifications.principals",
    "api.callers.support-console.principals",
    "api.opsCallers",
    "api.voidCallers",
    "partnerPrincipals.acme.externalId",
    "partnerPrincipals.acme.principals",
    "partnerPrincipals.speedy.principals",
}

REAL = {
    "api": {
        "callers": {
            "support-console": {"principals": ["arn:aws:iam::{account}:role/support-desk-*"]},
            "notifications": {"principals": ["arn:aws:iam::{account}:role/notify-svc"]},
        },
        "opsCallers": ["arn:aws:iam::{account}:role/ops-readers-*"],
        "voidCallers": ["arn:aws:iam::{account}:role/ops-oncall"],
    },
    "alarms": {"email": "cards-oncall@issuer.ae"},
    "partnerPrincipals": {
        "acme": {
            "principals": ["arn:aws:iam::246813579024:role/acme-upload"],
            "externalId": "x9-q",
        },
        "speedy": {"principals": ["arn:aws:iam::{account}:role/speedy-sftp"]},
    },
}


def _prod(replace: dict[str, Any] | None = None) -> dict[str, Any]:
    """The effective prod settings, with whole blocks replaced as an operator would."""
    ctx = cdk_json_context()
    raw = deep_merge(ctx["cardstatus:shared"], ctx["cardstatus:environments"]["prod"])
    for key, value in (replace or {}).items():
        raw[key] = deep_merge(raw[key], value) if key in ("api", "alarms") else copy.deepcopy(value)
        if key == "api":
            raw["api"]["callers"] = copy.deepcopy(value["callers"])
    return raw


def test_the_shipped_prod_examples_are_all_found() -> None:
    assert {key for key, _ in example_values(_prod())} == SHIPPED


def test_prod_synth_refuses_them_naming_each_cdk_json_key() -> None:
    with pytest.raises(SettingsError) as err:
        build_app({"env": "prod", "cardstatus:layerBuild": "cached"}, outdir=tempfile.mkdtemp())
    message = str(err.value)
    for key in SHIPPED:
        assert f"{ROOT_KEY}.{key}:" in message, message
    assert "cardstatus-oncall@example.com" in message and "111122223333" in message
    assert "Values to replace" in message


def test_real_values_pass() -> None:
    assert example_values(_prod(REAL)) == []
    refuse_example_values(Settings(env_name="prod", raw=_prod(REAL)))


@pytest.mark.parametrize(
    "principal",
    [
        "arn:aws:iam::123456789012:role/anything",  # documentation accounts, any name
        "arn:aws:iam::444455556666:user/someone",
    ],
)
def test_documentation_accounts_are_refused_anywhere(principal: str) -> None:
    raw = _prod(REAL)
    raw["api"]["callers"]["notifications"]["principals"] = [principal]
    assert example_values(raw) == [("api.callers.notifications.principals", principal)]


@pytest.mark.parametrize("email", ["ops@example.com", "x@mail.example.org", "a@corp.example"])
def test_documentation_domains_are_refused_for_the_alarm_address(email: str) -> None:
    raw = _prod(REAL)
    raw["alarms"]["email"] = email
    assert example_values(raw) == [("alarms.email", email)]


def test_dev_is_never_refused() -> None:
    ctx = cdk_json_context()
    raw = deep_merge(ctx["cardstatus:shared"], ctx["cardstatus:environments"]["dev"])
    refuse_example_values(
        Settings(env_name="dev", raw={**raw, "alarms": {"email": "a@example.com"}})
    )


def test_cdk_synth_entry_point_exits_with_the_message() -> None:
    """`npx cdk synth -c env=prod` runs `python -m infra.app` with the context in
    CDK_CONTEXT_JSON: it stops before building anything, with the keys and no traceback."""
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps({"env": "prod"})}
    run = subprocess.run(
        [sys.executable, "-m", "infra.app"], env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 1, run.stderr
    assert f"{ROOT_KEY}.alarms.email" in run.stderr and "Traceback" not in run.stderr
