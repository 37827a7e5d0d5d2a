"""What each environment costs (infra/cost.py, `make cost`) and the dev design choices that
keep an idle dev environment under $40/month without changing prod (cdk.json)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.cost import AUDIT, audit_per_million_lookups, fixed_costs, load_prices, per_use


def _blob(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _api_function(s: Any) -> dict[str, Any]:
    return next(
        v for k, v in s.of_type("AWS::Lambda::Function").items() if k.startswith("FunctionsApi")
    )


def test_dev_has_no_proxy_and_the_api_logs_in_to_the_instance_with_iam(dev: Any) -> None:
    assert dev.of_type("AWS::RDS::DBProxy") == {}
    env = _api_function(dev)["Properties"]["Environment"]["Variables"]
    assert env["DB_IAM_AUTH"] == "true" and "DB_SECRET_ARN" not in env
    assert "DatabaseInstance" in _blob(env["DB_HOST"]) and "Proxy" not in _blob(env["DB_HOST"])
    api_policies = [
        v for k, v in dev.of_type("AWS::IAM::Policy").items() if k.startswith("FunctionsApi")
    ]
    statements = [st for p in api_policies for st in p["Properties"]["PolicyDocument"]["Statement"]]
    connect = [st for st in statements if "rds-db:connect" in _blob(st["Action"])]
    assert len(connect) == 1
    resource = _blob(connect[0]["Resource"])
    assert "/cardstatus_api" in resource and "DbiResourceId" in resource  # the instance itself


def test_dev_interface_endpoints_in_one_az_prod_in_every_az(dev: Any, prod: Any) -> None:
    for s, azs in ((dev, 1), (prod, 2)):
        interface = [
            v["Properties"]
            for v in s.of_type("AWS::EC2::VPCEndpoint").values()
            if v["Properties"].get("VpcEndpointType") == "Interface"
        ]
        assert len(interface) == 2  # secretsmanager, events
        assert all(len(p["SubnetIds"]) == azs for p in interface)


def test_dev_without_waf_prod_with_it_and_proxy(dev: Any, prod: Any) -> None:
    assert dev.of_type("AWS::WAFv2::WebACL") == {}
    assert len(prod.of_type("AWS::WAFv2::WebACL")) == 1
    assert len(prod.of_type("AWS::RDS::DBProxy")) == 1
    proxy_alarm = [k for k in prod.of_type("AWS::CloudWatch::Alarm") if "ProxySessionPinning" in k]
    assert proxy_alarm and not [k for k in dev.of_type("AWS::CloudWatch::Alarm") if "Proxy" in k]


def test_idle_dev_costs_at_most_40_dollars_and_prod_states_its_cost(dev: Any, prod: Any) -> None:
    prices = load_prices()
    dev_lines = fixed_costs(dev.template.to_json(), prices)
    dev_total = sum(line.monthly for line in dev_lines)
    assert 0 < dev_total <= 40, [(line.what, round(line.monthly, 2)) for line in dev_lines]
    prod_lines = fixed_costs(prod.template.to_json(), prices)
    whats = " ".join(line.what for line in prod_lines)
    assert "RDS Proxy, 2 vCPU" in whats and "db.m7g.large x2 AZ" in whats and "web ACL" in whats
    assert sum(line.monthly for line in prod_lines) > dev_total
    use = per_use(prod.template.to_json(), prices)
    assert use["per_million_lookups"] > 3.5  # API Gateway alone is $3.50
    assert use["per_million_events"] == prices["eventbridge_custom_per_million"]


def test_audit_sink_adds_its_two_alarms_to_the_fixed_cost_and_nothing_else(
    dev: Any, prod: Any
) -> None:
    """The audit function, its subscription filter and its (empty) DLQ cost nothing idle; the
    messages key is the existing one. Only AuditDlqNotEmpty and AuditErrors bill monthly."""
    prices = load_prices()
    for s in (dev, prod):
        lines = fixed_costs(s.template.to_json(), prices)
        audit = [line for line in lines if "Audit" in line.resource]
        names = ("MonitoringAuditDlqNotEmpty", "MonitoringAuditErrors")
        assert len(audit) == 2
        assert all(any(line.resource.startswith(n) for line in audit) for n in names)
        assert all(line.what == "alarm (1 metric)" for line in audit)
        assert sum(line.monthly for line in audit) == 2 * prices["cloudwatch_alarm_metric_month"]
        assert not any(line.resource.startswith("Audit") for line in lines)


def test_audit_trail_per_use_cost_is_its_log_lines_and_batched_invocations(prod: Any) -> None:
    prices = load_prices()
    template = prod.template.to_json()
    use = per_use(template, prices)
    batches = 1e6 / AUDIT["lines_per_batch"]
    expected = (
        AUDIT["log_bytes_per_lookup"] / 1000 * prices["cloudwatch_logs_ingest_gb"]
        + batches / 1e6 * prices["lambda_per_million_requests"]
        + batches * AUDIT["batch_ms"] / 1000 * 256 / 1024 * prices["lambda_arm_gb_second"]
    )
    assert use["audit_per_million_lookups"] == round(expected, 2)
    assert 0 < use["audit_per_million_lookups"] < 1  # cents per million lookups
    # Part of the per-lookup figure, and absent from a template without the audit sink.
    assert audit_per_million_lookups(template, prices) == pytest.approx(expected)
    without = {
        "Resources": {
            k: v
            for k, v in template["Resources"].items()
            if "cardstatus-audit" not in json.dumps(v.get("Properties", {}).get("Environment"))
        }
    }
    assert audit_per_million_lookups(without, prices) == 0
    rest = per_use(without, prices)["per_million_lookups"]
    assert abs(rest + expected - use["per_million_lookups"]) <= 0.01  # each figure rounded
