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


def test_csv_suffixes_is_no_longer_a_setting() -> None:
    """Every object under incoming/ is queued now; a leftover suffix list is an error that
    says so rather than a setting silently ignored."""
    assert "csvSuffixes" not in cdk_json_context()["cardstatus:shared"]["bucket"]
    with pytest.raises(SettingsError, match=r"csvSuffixes is no longer a setting.*incoming"):
        _settings(bucket={"csvSuffixes": [".csv"]})


def test_shared_queue_keys_documented_for_local_runner() -> None:
    shared = cdk_json_context()["cardstatus:shared"]
    assert shared["bucket"]["incomingPrefix"] == "incoming/"
    assert shared["bucket"]["reportsPrefix"] == "reports/"
    for key in ("maxReceiveCount", "visibilityTimeoutSeconds", "batchSize"):
        assert key in shared["queue"]


# -- security settings (issue 10) ----------------------------------------------------------


def _ctx(env: str, **env_overrides: Any) -> Any:
    ctx = cdk_json_context()
    ctx["env"] = env
    envs = ctx["cardstatus:environments"]
    envs[env] = deep_merge(envs[env] or {}, env_overrides)
    return ctx


def _load(ctx: dict[str, Any]) -> Any:
    node: Node = _FakeNode(ctx)  # type: ignore[assignment]
    return load_settings(node)


def test_prod_without_callers_fails_with_a_clear_message() -> None:
    ctx = _ctx("prod")
    ctx["cardstatus:environments"]["prod"]["api"]["callers"] = {}
    with pytest.raises(SettingsError, match=r"api.callers is empty for 'prod'.*DEPLOY.md"):
        _load(ctx)


def test_prod_callers_must_name_roles_not_accounts() -> None:
    ctx = _ctx("prod", api={"callers": {"x": {"principals": ["arn:aws:iam::{account}:*"]}}})
    with pytest.raises(SettingsError, match="trusts a whole account"):
        _load(ctx)
    ctx = _ctx("prod", api={"callers": {"x": {"principals": ["arn:aws:iam::{account}:root"]}}})
    with pytest.raises(SettingsError, match="trusts a whole account"):
        _load(ctx)


def test_dev_without_callers_means_the_account() -> None:
    callers = _settings("dev").api_callers
    assert [c.principals for c in callers] == [("arn:{partition}:iam::{account}:*",)]


def test_every_partner_needs_named_principals() -> None:
    ctx = _ctx("dev")
    del ctx["cardstatus:environments"]["dev"]["partnerPrincipals"]["speedy"]
    with pytest.raises(SettingsError, match=r"no principal for partner\(s\) \['speedy'\]"):
        _load(ctx)
    ctx = _ctx("prod")
    ctx["cardstatus:environments"]["prod"]["partnerPrincipals"] = {}
    with pytest.raises(SettingsError, match="partnerPrincipals has no principal"):
        _load(ctx)


def test_cross_account_partner_needs_an_external_id() -> None:
    ctx = _ctx("prod")
    del ctx["cardstatus:environments"]["prod"]["partnerPrincipals"]["acme"]["externalId"]
    with pytest.raises(SettingsError, match="needs an externalId"):
        _load(ctx)


def test_partner_principal_cannot_be_an_account_root() -> None:
    ctx = _ctx("dev", partnerPrincipals={"acme": {"principals": ["arn:aws:iam::{account}:root"]}})
    with pytest.raises(SettingsError, match="trusts a whole account"):
        _load(ctx)


def test_function_timeout_must_exceed_its_roles_statement_timeout() -> None:
    with pytest.raises(SettingsError, match="statement_timeout of role cardstatus_ingest"):
        _settings(
            functions={"ingest": {"timeoutSeconds": 240}}, queue={"visibilityTimeoutSeconds": 1800}
        )
    with pytest.raises(SettingsError, match="statement_timeout of role cardstatus_api"):
        _settings(functions={"api": {"timeoutSeconds": 6}})
    # The audit sink logs in as the api role too (infra/audit.py, SHARED_ROLE_FUNCTIONS).
    with pytest.raises(
        SettingsError, match=r"functions\.audit\.timeoutSeconds \(6\).*cardstatus_api"
    ):
        _settings(functions={"audit": {"timeoutSeconds": 6}})
    with pytest.raises(SettingsError, match=r"functions\.audit\.timeoutSeconds must be <= 900"):
        _settings(functions={"audit": {"timeoutSeconds": 901}})


def test_command_line_flags_override_cdk_json() -> None:
    ctx = _ctx("prod")
    ctx["apiEndpointType"] = "private"
    ctx["createApiCloudWatchRole"] = "true"
    s = _load(ctx)
    assert s.get_str("api", "endpointType") == "private"
    assert s.get_bool("api", "createCloudWatchRole") is True
    plain = _settings("prod")
    assert plain.get_str("api", "endpointType") == "regional"
    assert plain.get_bool("api", "createCloudWatchRole") is False
