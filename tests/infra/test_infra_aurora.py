"""`-c database=aurora`: Aurora PostgreSQL Serverless v2 with the single instance's contract
(infra/aurora.py). Both engines synthesise cdk-nag clean (synthesise() raises otherwise); the
instance engine's template is tested everywhere else in tests/infra."""

from __future__ import annotations

import json
import tempfile
from typing import Any

import pytest

from cardstatus import dbroles
from conftest import Synthesised
from infra.database import SERVER_LOG_PARAMETERS
from infra.settings import cdk_json_context

_aurora: dict[str, Synthesised] = {}


def _synth(env: str) -> Synthesised:
    if env not in _aurora:
        import aws_cdk as cdk
        from aws_cdk.assertions import Template

        from infra.app import build_app
        from infra.stack import CardStatusStack

        context = {"env": env, "cardstatus:layerBuild": "cached", "database": "aurora"}
        outdir = tempfile.mkdtemp(prefix=f"cardstatus-cdk-aurora-{env}-")
        # The shipped cdk.json, example principals and all (as tests/infra/conftest.py).
        app = build_app(context, outdir=outdir, example_values_ok=True)
        stack = next(c for c in app.node.children if isinstance(c, CardStatusStack))
        app.synth()
        _aurora[env] = Synthesised(app=app, stack=stack, template=Template.from_stack(stack))
        assert isinstance(app, cdk.App)
    return _aurora[env]


@pytest.fixture(scope="module")
def dev_aurora() -> Synthesised:
    return _synth("dev")


@pytest.fixture(scope="module")
def prod_aurora() -> Synthesised:
    return _synth("prod")


def _blob(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _cluster(s: Synthesised) -> dict[str, Any]:
    clusters = s.of_type("AWS::RDS::DBCluster")
    assert len(clusters) == 1
    return dict(next(iter(clusters.values()))["Properties"])


def _api_env(s: Synthesised) -> dict[str, Any]:
    fn = next(
        v for k, v in s.of_type("AWS::Lambda::Function").items() if k.startswith("FunctionsApi")
    )
    return dict(fn["Properties"]["Environment"]["Variables"])


def test_dev_aurora_scales_to_zero_and_pauses_without_proxy(dev_aurora: Synthesised) -> None:
    cluster = _cluster(dev_aurora)
    assert cluster["Engine"] == "aurora-postgresql"
    scaling = cluster["ServerlessV2ScalingConfiguration"]
    assert scaling["MinCapacity"] == 0 and scaling["SecondsUntilAutoPause"] > 0
    assert dev_aurora.of_type("AWS::RDS::DBProxy") == {}
    assert "DatabaseCluster" in _blob(_api_env(dev_aurora)["DB_HOST"])
    assert "DB_READ_HOST" not in _api_env(dev_aurora)  # no reader in dev
    assert dev_aurora.of_type("AWS::RDS::DBInstance").keys() == {
        k for k in dev_aurora.of_type("AWS::RDS::DBInstance") if "Writer" in k
    }


def test_prod_aurora_reader_and_read_only_proxy_endpoint_for_the_api(
    prod_aurora: Synthesised,
) -> None:
    cluster = _cluster(prod_aurora)
    shared = cdk_json_context()["cardstatus:environments"]["prod"]["database"]["aurora"]
    scaling = cluster["ServerlessV2ScalingConfiguration"]
    assert (scaling["MinCapacity"], scaling["MaxCapacity"]) == (
        shared["minCapacity"],
        shared["maxCapacity"],
    )
    assert cluster["DeletionProtection"] is True
    instances = prod_aurora.of_type("AWS::RDS::DBInstance")
    assert sorted(k[len("DatabaseCluster") :][:6] for k in instances) == ["Reader", "Writer"]
    assert all(v["Properties"]["DBInstanceClass"] == "db.serverless" for v in instances.values())
    proxy = next(iter(prod_aurora.of_type("AWS::RDS::DBProxy").values()))["Properties"]
    assert proxy["RequireTLS"] and proxy["DefaultAuthScheme"] == "IAM_AUTH"
    endpoint = next(iter(prod_aurora.of_type("AWS::RDS::DBProxyEndpoint").values()))
    assert endpoint["Properties"]["TargetRole"] == "READ_ONLY"
    # The reader's endpoint is the api's DB_READ_HOST; DB_HOST stays the writer's through the
    # proxy (each lookup writes its audit row).
    assert "DatabaseProxyReadOnly" in _blob(_api_env(prod_aurora)["DB_READ_HOST"])
    assert "DatabaseProxy" in _blob(_api_env(prod_aurora)["DB_HOST"])
    assert "ReadOnly" not in _blob(_api_env(prod_aurora)["DB_HOST"])
    assert _api_env(prod_aurora)["DB_USER"] == dbroles.API


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_aurora_keeps_iam_auth_encryption_log_redaction_and_alarms(env: str) -> None:
    s = _synth(env)
    cluster = _cluster(s)
    assert cluster["EnableIAMDatabaseAuthentication"] is True
    assert cluster["StorageEncrypted"] is True and "DatabaseDbKey" in _blob(cluster["KmsKeyId"])
    assert cluster["EnableCloudwatchLogsExports"] == ["postgresql"]
    group = next(iter(s.of_type("AWS::RDS::DBClusterParameterGroup").values()))["Properties"]
    assert group["Parameters"]["rds.force_ssl"] == "1"
    for name, value in SERVER_LOG_PARAMETERS.items():
        assert group["Parameters"][name] == value, name
    metrics = {
        a["Properties"].get("MetricName") for a in s.of_type("AWS::CloudWatch::Alarm").values()
    }
    assert {"CPUUtilization", "DatabaseConnections", "ACUUtilization"} <= metrics
    logs = [v for v in s.of_type("AWS::Logs::LogGroup").values() if "/aws/rds/cluster/" in _blob(v)]
    assert len(logs) == 1  # pre-created with our retention
    assert s.of_type("AWS::RDS::DBProxy") == {} if env == "dev" else s.of_type("AWS::RDS::DBProxy")
    # Ingest logs in to the writer as its role; migrations run against the writer.
    fn = next(
        v for k, v in s.of_type("AWS::Lambda::Function").items() if k.startswith("FunctionsIngest")
    )
    assert "DatabaseCluster" in _blob(fn["Properties"]["Environment"]["Variables"]["DB_HOST"])
    run = next(iter(s.of_type("Custom::CardStatusMigrations").values()))["Properties"]
    assert "DatabaseCluster" in _blob(run["DatabaseEndpoint"])
