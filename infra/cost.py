"""`make cost` / `python -m infra.cost [dev prod ...] [--aurora] [--json]`: what each
environment costs (`--aurora`: with `-c database=aurora`).

For each environment the stack is synthesised (offline, as `cdk synth`) and every resource of
the CloudFormation template is priced from the dated list-price table in
infra/pricing/ (one region): the **fixed monthly cost** of an idle environment (instance,
proxy, interface endpoints per AZ, keys, secrets, WAF, alarms, dashboard, the per-minute
sweeper, the SQS poller) and the **per-use costs** per million lookups, ingested rows and
status-change events, from the functions' memory in the template and the durations measured
by the benchmarks (MEASURED below; the lookup audit trail's figures are assumed: AUDIT).
Resources without an idle charge (Lambda functions, queues, subscription filters, buckets, log
groups, API Gateway, the event bus, ...) are listed as such. Data
volume (S3, logs, backups beyond the free allowance) grows with use and is not in the fixed
figure.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PRICES = ROOT / "infra" / "pricing" / "us-east-1-2026-12.json"

# Measured (README "Benchmarks", bench/): what one unit of work costs in function time.
MEASURED = {
    # In-process api p50 at 1M cards is ~1 ms; in Lambda add the round trip to the database
    # (RDS Proxy: ~1-2 ms), billed per ms: 3 ms per lookup.
    "lookup_ms": 3.0,
    # `make bench`: ~19k rows/s at 1M rows on a 2-vCPU machine (the ingest function's 1 GB
    # has ~0.6 vCPU: count it as 3x slower, 6.3k rows/s).
    "ingest_rows_per_s": 6_300.0,
    # Bytes logged per lookup: the function's request line and API Gateway's access log line.
    "log_bytes_per_lookup": 950,
    # The sweeper runs every minute; it finds nothing to publish when idle.
    "sweeper_idle_ms": 150.0,
    # Lambda's SQS pollers (long polling, 20 s) on the ingest queue: requests per month.
    "sqs_poll_requests_month": 5 * 3 * 60 * 24 * 30,
}

# The lookup audit trail (infra/audit.py): not measured yet, assumed. The api prints one JSON
# line per lookup (`{"audit": {"at", "caller", "route", "by_phone", "outcome", "card_ids",
# "request_id"}}`: ~270 bytes with a role ARN and one card id, + CloudWatch Logs' 26 bytes per
# event), ingested into its log group on top of log_bytes_per_lookup. The subscription filter
# itself is free; CloudWatch Logs delivers the matching lines to the audit function in batches
# (one invocation per batch, per api log stream): count 10 lines per batch, an invocation of
# 25 ms (one multi-row INSERT on a warm connection; a cold one adds the IAM login).
AUDIT = {
    "log_bytes_per_lookup": 300,
    "lines_per_batch": 10.0,
    "batch_ms": 25.0,
}


@dataclass
class Line:
    resource: str
    what: str
    monthly: float


def load_prices(path: Path = PRICES) -> dict[str, Any]:
    return json.loads(path.read_text())  # type: ignore[no-any-return,unused-ignore]


def synth_template(env: str, extra_context: dict[str, Any] | None = None) -> dict[str, Any]:
    """The environment's CloudFormation template (synthesised offline, layers as cached)."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from infra.app import build_app

    context = {"env": env, "cardstatus:layerBuild": "cached", **(extra_context or {})}
    # Pricing, not deploying: the shipped cdk.json's example principals are fine here.
    outdir = tempfile.mkdtemp(prefix=f"cardstatus-cost-{env}-")
    app = build_app(context, outdir=outdir, example_values_ok=True)
    with contextlib.redirect_stdout(sys.stderr):  # cdk-nag and jsii notices: not the report
        return app.synth().stacks[0].template  # type: ignore[no-any-return,unused-ignore]


def _count_metrics(props: dict[str, Any]) -> int:
    metrics = props.get("Metrics")
    if not metrics:
        return 1
    return max(1, sum(1 for m in metrics if "MetricStat" in m))


def _rds_instance(name: str, props: dict[str, Any], prices: dict[str, Any]) -> list[Line]:
    cls = props.get("DBInstanceClass", "")
    if "DBClusterIdentifier" in props or not cls:  # an Aurora instance: the cluster bills
        return []
    factor = prices["rds_multi_az_factor"] if props.get("MultiAZ") else 1
    rate = prices["rds_instance_per_hour"][cls] * factor
    lines = [Line(name, f"{cls} x{factor} AZ, {rate:.3f}/h", rate * prices["hours_per_month"])]
    gb = float(props.get("AllocatedStorage", 0))
    if gb:
        lines.append(
            Line(name, f"{gb:.0f} GB gp3 x{factor}", gb * prices["rds_gp3_gb_month"] * factor)
        )
    return lines


def _aurora_cluster(
    name: str, props: dict[str, Any], prices: dict[str, Any], instances: int
) -> list[Line]:
    minimum = float(props.get("ServerlessV2ScalingConfiguration", {}).get("MinCapacity", 0))
    hours = prices["hours_per_month"]
    acu = minimum * max(instances, 1) * prices["aurora_serverless_v2_acu_hour"] * hours
    pause = " (auto-pause at 0 ACU)" if minimum == 0 else ""
    return [
        Line(name, f"Serverless v2, min {minimum:g} ACU x {instances} instances{pause}", acu),
        Line(name, "Aurora storage, 10 GB", 10 * prices["aurora_storage_gb_month"]),
    ]


def _simple(kind: str, props: dict[str, Any], prices: dict[str, Any]) -> tuple[str, float] | None:
    """(what, $/month) of the resource types with a flat idle price."""
    hours = prices["hours_per_month"]
    if kind == "AWS::EC2::VPCEndpoint" and props.get("VpcEndpointType") == "Interface":
        azs = len(props.get("SubnetIds", []))
        return f"interface endpoint x{azs} AZ", azs * prices[
            "vpc_interface_endpoint_az_hour"
        ] * hours
    if kind == "AWS::WAFv2::WebACL":
        rules = len(props.get("Rules", []))
        return f"web ACL + {rules} rules", prices["waf_web_acl_month"] + rules * prices[
            "waf_rule_month"
        ]
    if kind == "AWS::CloudWatch::Alarm":
        n = _count_metrics(props)
        return f"alarm ({n} metric)", n * prices["cloudwatch_alarm_metric_month"]
    if kind == "AWS::Events::Rule" and props.get("ScheduleExpression") == "rate(1 minute)":
        runs = 60 * 24 * 30
        gb_s = runs * MEASURED["sweeper_idle_ms"] / 1000 * 0.25
        requests = runs / 1e6 * prices["lambda_per_million_requests"]
        return f"{runs} scheduled sweeper runs", gb_s * prices["lambda_arm_gb_second"] + requests
    if kind == "AWS::Lambda::EventSourceMapping":
        reqs = MEASURED["sqs_poll_requests_month"]
        return f"SQS long polls (~{reqs:,}/month)", reqs / 1e6 * prices["sqs_per_million_requests"]
    flat = {
        "AWS::KMS::Key": ("KMS key", "kms_key_month"),
        "AWS::SecretsManager::Secret": ("secret", "secretsmanager_secret_month"),
        "AWS::CloudWatch::Dashboard": ("dashboard", "cloudwatch_dashboard_month"),
        "AWS::CloudWatch::InsightRule": (
            "Contributor Insights rule",
            "cloudwatch_contributor_insights_rule_month",
        ),
    }
    if kind in flat:
        what, key = flat[kind]
        return what, float(prices[key])
    return None


def fixed_costs(template: dict[str, Any], prices: dict[str, Any]) -> list[Line]:
    """The monthly charge of every resource that bills while idle."""
    resources = template["Resources"]
    cluster_instances = sum(
        1
        for r in resources.values()
        if r["Type"] == "AWS::RDS::DBInstance"
        and r.get("Properties", {}).get("DBClusterIdentifier") is not None
    )
    lines: list[Line] = []
    target_vcpus: int | None = 0  # None: an Aurora Serverless v2 target (billed on ACUs)
    for name, res in resources.items():
        kind, props = res["Type"], res.get("Properties", {})
        if kind == "AWS::RDS::DBInstance":
            found = _rds_instance(name, props, prices)
            if found and target_vcpus is not None:
                cls = props["DBInstanceClass"]
                target_vcpus = max(target_vcpus, prices["rds_instance_vcpus"][cls])
            lines += found
        elif kind == "AWS::RDS::DBCluster":
            lines += _aurora_cluster(name, props, prices, cluster_instances)
            target_vcpus = None
        elif (simple := _simple(kind, props, prices)) is not None:
            lines.append(Line(name, simple[0], simple[1]))
    for name, res in resources.items():
        if res["Type"] != "AWS::RDS::DBProxy":
            continue
        if target_vcpus is None:
            units, label = prices["rds_proxy_serverless_min_acus"], "ACU (minimum)"
        else:
            units, label = max(target_vcpus, prices["rds_proxy_min_vcpus"]), "vCPU"
        monthly = units * prices["rds_proxy_vcpu_hour"] * prices["hours_per_month"]
        lines.append(Line(name, f"RDS Proxy, {units} {label}", monthly))
    return lines


def _function_memory_gb(template: dict[str, Any], service: str) -> float:
    for res in template["Resources"].values():
        if res["Type"] != "AWS::Lambda::Function":
            continue
        env = res.get("Properties", {}).get("Environment", {}).get("Variables", {})
        if env.get("POWERTOOLS_SERVICE_NAME") == service:
            return float(res["Properties"].get("MemorySize", 128)) / 1024
    raise KeyError(service)


def per_use(template: dict[str, Any], prices: dict[str, Any]) -> dict[str, float]:
    """$ per million lookups, ingested rows and status-change events."""
    waf = any(r["Type"] == "AWS::WAFv2::WebACL" for r in template["Resources"].values())
    api_gb = _function_memory_gb(template, "cardstatus-api")
    ingest_gb = _function_memory_gb(template, "cardstatus-ingest")
    lam_req = prices["lambda_per_million_requests"]
    gb_s = prices["lambda_arm_gb_second"]
    lookup = (
        prices["apigateway_rest_per_million"]
        + (prices["waf_per_million_requests"] if waf else 0.0)
        + lam_req
        + 1e6 * MEASURED["lookup_ms"] / 1000 * api_gb * gb_s
        + 1e6 * MEASURED["log_bytes_per_lookup"] / 1e9 * prices["cloudwatch_logs_ingest_gb"]
    )
    ingest_seconds = 1e6 / MEASURED["ingest_rows_per_s"]
    # 1M rows arrive as ~10 files of 100k rows: an upload, a read and a report each.
    files = 10
    rows = (
        ingest_seconds * ingest_gb * gb_s
        + files * (2 * prices["s3_put_per_thousand"] + prices["s3_get_per_thousand"]) / 1000
        + files * 3 / 1e6 * prices["sqs_per_million_requests"]
    )
    events = prices["eventbridge_custom_per_million"]
    audit = audit_per_million_lookups(template, prices)
    lookup += audit
    return {
        "per_million_lookups": round(lookup, 2),
        "audit_per_million_lookups": round(audit, 2),
        "per_million_ingested_rows": round(rows, 3),
        "per_million_events": round(events, 2),
        "api_memory_gb": api_gb,
        "ingest_memory_gb": ingest_gb,
    }


def audit_per_million_lookups(template: dict[str, Any], prices: dict[str, Any]) -> float:
    """$ per million lookups of the audit trail (AUDIT): the audit lines' log ingestion and
    the audit function's invocations; 0 in a template without the audit sink."""
    try:
        audit_gb = _function_memory_gb(template, "cardstatus-audit")
    except KeyError:
        return 0.0
    batches = 1e6 / AUDIT["lines_per_batch"]
    return (
        1e6 * AUDIT["log_bytes_per_lookup"] / 1e9 * prices["cloudwatch_logs_ingest_gb"]
        + batches / 1e6 * prices["lambda_per_million_requests"]
        + batches * AUDIT["batch_ms"] / 1000 * audit_gb * prices["lambda_arm_gb_second"]
    )


def report(env: str, template: dict[str, Any], prices: dict[str, Any]) -> dict[str, Any]:
    lines = fixed_costs(template, prices)
    return {
        "env": env,
        "fixed_monthly": round(sum(line.monthly for line in lines), 2),
        "lines": [line.__dict__ | {"monthly": round(line.monthly, 2)} for line in lines],
        "per_use": per_use(template, prices),
    }


def render(reports: list[dict[str, Any]], prices: dict[str, Any]) -> str:
    out = [f"Prices: {prices['region']}, list prices as of {prices['as_of']} ({PRICES.name})."]
    for rep in reports:
        out.append(f"\n## {rep['env']}: fixed ${rep['fixed_monthly']:.2f}/month")
        grouped: dict[str, tuple[int, float]] = {}
        for line in rep["lines"]:
            key = line["what"].split(" (")[0] if line["what"].startswith("alarm") else line["what"]
            count, monthly = grouped.get(key, (0, 0.0))
            grouped[key] = (count + 1, monthly + line["monthly"])
        for what, (count, monthly) in sorted(grouped.items(), key=lambda kv: -kv[1][1]):
            out.append(
                f"  {monthly:8.2f}  {count} x {what}" if count > 1 else f"  {monthly:8.2f}  {what}"
            )
        use = rep["per_use"]
        out.append(
            f"  per use: ${use['per_million_lookups']:.2f} / 1M lookups "
            f"(audit trail ${use['audit_per_million_lookups']:.2f}), "
            f"${use['per_million_ingested_rows']:.3f} / 1M ingested rows, "
            f"${use['per_million_events']:.2f} / 1M status-change events"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    as_json = "--json" in args
    envs = [a for a in args if not a.startswith("--")] or ["dev", "prod"]
    engine = "aurora" if "--aurora" in args else None  # as `-c database=aurora`
    prices = load_prices()
    extra = {"database": engine} if engine else None
    reports = [report(env, synth_template(env, extra), prices) for env in envs]
    print(json.dumps(reports, indent=2) if as_json else render(reports, prices))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
