"""The smoke test's managed policy (infra/smoke.py): exactly the smoke partner's prefix, its
reports, the bucket key via S3, and the routes `cardstatus smoke` calls; output SmokePolicyArn."""

from __future__ import annotations

import json
from typing import Any

import pytest

ENVS = ["dev", "prod"]


def _smoke_policy(synth: Any) -> dict[str, Any]:
    policies = synth.of_type("AWS::IAM::ManagedPolicy")
    (policy,) = [p for k, p in policies.items() if k.startswith("SmokeSmokePolicy")]
    return dict(policy["Properties"]["PolicyDocument"])


@pytest.mark.parametrize("env", ENVS)
def test_smoke_policy_holds_exactly_what_the_smoke_does(synth: Any, env: str) -> None:
    built = synth(env)
    statements = {s["Sid"]: s for s in _smoke_policy(built)["Statement"]}
    assert set(statements) == {
        "UploadSmokeFiles",
        "ReadSmokeReports",
        "EncryptViaS3",
        "CallTheRoutesItChecks",
    }
    assert statements["UploadSmokeFiles"]["Action"] == "s3:PutObject"
    assert "/incoming/smoke/*" in json.dumps(statements["UploadSmokeFiles"]["Resource"])
    assert statements["ReadSmokeReports"]["Action"] == "s3:GetObject"
    assert "/reports/incoming/smoke/*" in json.dumps(statements["ReadSmokeReports"]["Resource"])
    assert "kms:ViaService" in json.dumps(statements["EncryptViaS3"]["Condition"])
    routes = json.dumps(statements["CallTheRoutesItChecks"]["Resource"])
    for route in ("/GET/health", "/GET/cards/*", "/POST/cards/search", "/POST/files/*/void"):
        assert route in routes, route
    assert "/GET/*" not in routes  # not every read route: only those it checks
    assert "SmokePolicyArn" in built.template.to_json()["Outputs"]
