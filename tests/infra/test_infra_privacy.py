"""Retention settings reach the bucket's lifecycle and the sweeper (README "Privacy")."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import synthesise
from infra.settings import SettingsError


def bucket_rules(s: Any) -> dict[str, dict[str, Any]]:
    buckets = s.of_type("AWS::S3::Bucket").values()
    partner = next(b for b in buckets if "incoming/" in str(b["Properties"]))
    rules = partner["Properties"]["LifecycleConfiguration"]["Rules"]
    return {r["Id"]: r for r in rules}


def sweeper_env(s: Any) -> dict[str, str]:
    for fn in s.of_type("AWS::Lambda::Function").values():
        env = fn["Properties"].get("Environment", {}).get("Variables", {})
        if "EVENTS_SWEEP_BUDGET_S" in env:
            return dict(env)
    raise AssertionError("no sweeper function")


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_raw_uploads_expire_and_the_sweeper_gets_the_retention(synth: Any, env: str) -> None:
    s = synth(env)
    rule = bucket_rules(s)["expire-raw-uploads"]
    assert rule["Prefix"] == "incoming/" and rule["ExpirationInDays"] == 90
    assert rule["Status"] == "Enabled"
    assert "expire-reports" in bucket_rules(s)  # reports keep their own period
    variables = sweeper_env(s)
    assert variables["CARD_RETENTION_DAYS"] == "730"
    assert variables["AUDIT_RETENTION_DAYS"] == "400"
    assert variables["RETENTION_BATCH"] == "500"


def test_the_periods_come_from_cdk_json() -> None:
    s = synthesise("dev", {"privacy": {"rawUploadDays": 30, "cardRetentionDays": 0}})
    assert bucket_rules(s)["expire-raw-uploads"]["ExpirationInDays"] == 30
    assert sweeper_env(s)["CARD_RETENTION_DAYS"] == "0"  # keep forever


def test_an_oversized_batch_is_refused() -> None:
    with pytest.raises(SettingsError, match=r"privacy\.retentionBatch"):
        synthesise("dev", {"privacy": {"retentionBatch": 50_000}})
