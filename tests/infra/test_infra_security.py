"""CDK assertions: the security and reliability properties the stack promises (issue 4)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match

from infra.functions import CA_BUNDLE_PATH
from infra.settings import cdk_json_context

DATA_SERVICES = ("s3:", "sqs:", "kms:", "secretsmanager:", "rds-db:", "rds:", "dynamodb:", "sns:")


def _statements(resources: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(logical id, statement) of every identity policy in the template."""
    out = []
    for lid, res in resources.items():
        docs = []
        if res["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            docs.append(res["Properties"]["PolicyDocument"])
        elif res["Type"] == "AWS::IAM::Role":
            docs += [p["PolicyDocument"] for p in res["Properties"].get("Policies", [])]
        for doc in docs:
            out += [(lid, st) for st in doc["Statement"]]
    return out


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _app_functions(s: Any) -> dict[str, dict[str, Any]]:
    return {
        k: v
        for k, v in s.of_type("AWS::Lambda::Function").items()
        if k.startswith("Functions")
        and str(v["Properties"].get("Handler")).startswith("functions.")
    }


def _role_statements(s: Any, role_prefix: str) -> list[dict[str, Any]]:
    return [
        st for lid, st in _statements(s.resources) if lid.startswith(f"Functions{role_prefix}Role")
    ]


def _json_blob(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def test_handlers_are_importable_package_paths(dev: Any) -> None:
    handlers = sorted(v["Properties"]["Handler"] for v in _app_functions(dev).values())
    names = ("api", "audit", "ingest", "migrate", "sweeper", "void")
    assert handlers == [f"functions.{n}.app.handler" for n in names]


# -- storage -------------------------------------------------------------------------------


def test_buckets_encrypted_private_and_logged(dev: Any) -> None:
    buckets = dev.of_type("AWS::S3::Bucket")
    assert len(buckets) == 2
    for res in buckets.values():
        props = res["Properties"]
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    partner = next(v for k, v in buckets.items() if k.startswith("StoragePartnerBucket"))
    sse = partner["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert "KMSMasterKeyID" in sse["ServerSideEncryptionByDefault"]
    assert partner["Properties"]["LoggingConfiguration"]["LogFilePrefix"] == "partner-bucket/"
    rules = {r["Id"]: r for r in partner["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-reports"]["Prefix"] == "reports/"
    assert "NoncurrentVersionExpiration" in rules["expire-old-versions"]


def test_every_bucket_and_queue_and_topic_denies_plain_http(dev: Any) -> None:
    policies = (
        list(dev.of_type("AWS::S3::BucketPolicy").values())
        + list(dev.of_type("AWS::SQS::QueuePolicy").values())
        + list(dev.of_type("AWS::SNS::TopicPolicy").values())
    )
    # + the example event consumer queue and DLQ, and the audit sink's DLQ (infra/audit.py)
    assert len(policies) == 2 + 2 + 1 + 2 + 1
    for res in policies:
        statements = res["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            st["Effect"] == "Deny"
            and st.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
            for st in statements
        ), res


def test_partner_bucket_rejects_other_encryption(dev: Any) -> None:
    policy = next(
        v
        for v in dev.of_type("AWS::S3::BucketPolicy").values()
        if "StoragePartnerBucket" in _json_blob(v["Properties"]["Bucket"])
    )
    sids = {st.get("Sid") for st in policy["Properties"]["PolicyDocument"]["Statement"]}
    assert {"DenyUploadsWithForeignKmsKey", "DenyUploadsWithoutKms"} <= sids


def test_partner_roles_write_only_their_own_prefix(dev: Any) -> None:
    partners = sorted(
        p for p in cdk_json_context()["cardstatus:shared"]["partners"] if p != "default"
    )
    assert partners
    for partner in partners:
        statements = [
            st
            for lid, st in _statements(dev.resources)
            if lid.startswith(f"StorageUpload{partner}")
        ]
        put = next(st for st in statements if "s3:PutObject" in _as_list(st["Action"]))
        resources = _json_blob(put["Resource"])
        assert f"/incoming/{partner}/*" in resources
        for st in statements:
            assert "s3:GetObject" not in _as_list(st["Action"])
            assert "s3:DeleteObject" not in _as_list(st["Action"])


# -- queueing ------------------------------------------------------------------------------


def test_queue_encrypted_with_dlq_and_long_visibility(dev: Any) -> None:
    # (the example event consumer's queues are tested in test_infra_events.py)
    queues = {k: v for k, v in dev.of_type("AWS::SQS::Queue").items() if k.startswith("Queueing")}
    assert len(queues) == 2
    for q in queues.values():
        assert "KmsMasterKeyId" in q["Properties"]
    main = next(v for k, v in queues.items() if k.startswith("QueueingIngestQueue"))
    redrive = main["Properties"]["RedrivePolicy"]
    assert redrive["maxReceiveCount"] >= 5
    assert "QueueingDeadLetterQueue" in _json_blob(redrive["deadLetterTargetArn"])
    ingest = next(v for k, v in _app_functions(dev).items() if k.startswith("FunctionsIngest"))
    assert main["Properties"]["VisibilityTimeout"] >= 6 * ingest["Properties"]["Timeout"]


def test_ingest_event_source_reports_partial_failures_with_bounded_concurrency(dev: Any) -> None:
    shared = cdk_json_context()["cardstatus:shared"]["queue"]
    dev.template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "BatchSize": shared["batchSize"],
            "ScalingConfig": {"MaximumConcurrency": shared["maximumConcurrency"]},
            "EventSourceArn": {
                "Fn::GetAtt": [Match.string_like_regexp("QueueingIngestQueue"), "Arn"]
            },
        },
    )


def test_s3_notifies_queue_for_every_object_under_incoming(dev: Any) -> None:
    """SPEC 12-01: every object under incoming/ gets a report, so every one is queued (one
    prefix-only rule: no suffix filter leaving a .txt, .gz, .xlsx or .PDF unanswered)."""
    notif = next(iter(dev.of_type("Custom::S3BucketNotifications").values()))
    configs = notif["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert len(configs) == 1
    (cfg,) = configs
    assert cfg["Events"] == ["s3:ObjectCreated:*"]
    assert cfg["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "incoming/"}]


def test_reports_never_notify_the_queue(dev: Any) -> None:
    """Ingest writes each report under reports/: outside the notified prefix, so a report
    is never queued for ingestion (no loop)."""
    from cardstatus.s3ingest import report_key

    notif = next(iter(dev.of_type("Custom::S3BucketNotifications").values()))
    rules = [
        {r["Name"]: r["Value"] for r in c["Filter"]["Key"]["FilterRules"]}
        for c in notif["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    ]
    ingest = next(v for k, v in _app_functions(dev).items() if k.startswith("FunctionsIngest"))
    reports = ingest["Properties"]["Environment"]["Variables"]["REPORTS_PREFIX"]
    for key in ("incoming/acme/a.csv", "incoming/acme/b.PDF", "incoming/x"):
        written = report_key(key, reports)
        assert written.startswith(reports)
        assert not any(written.startswith(rule["prefix"]) for rule in rules), (written, rules)
    # ... and its role can write nowhere else.
    writes = [
        st for st in _role_statements(dev, "Ingest") if "s3:PutObject" in _as_list(st["Action"])
    ]
    assert writes and all("/incoming/" not in _json_blob(st["Resource"]) for st in writes)


# -- network / database --------------------------------------------------------------------


def test_vpc_has_no_internet_path_and_only_needed_endpoints(dev: Any) -> None:
    for forbidden in ("AWS::EC2::InternetGateway", "AWS::EC2::NatGateway", "AWS::EC2::EIP"):
        assert not dev.of_type(forbidden), forbidden
    endpoints = dev.of_type("AWS::EC2::VPCEndpoint").values()
    kinds = sorted(
        (
            e["Properties"].get("VpcEndpointType", "Gateway"),
            _json_blob(e["Properties"]["ServiceName"]),
        )
        for e in endpoints
    )
    assert len(kinds) == 3
    assert any(t == "Gateway" and ".s3" in name for t, name in kinds)
    assert any(t == "Interface" and "secretsmanager" in name for t, name in kinds)
    assert any(t == "Interface" and ".events" in name for t, name in kinds)  # infra/events.py


def test_database_encrypted_private_tls_only(dev: Any, prod: Any) -> None:
    for s, prod_like in ((dev, False), (prod, True)):
        s.template.has_resource_properties(
            "AWS::RDS::DBInstance",
            {
                "StorageEncrypted": True,
                "PubliclyAccessible": False,
                "EnableIAMDatabaseAuthentication": True,
                "Engine": "postgres",
                "MultiAZ": prod_like,
                "DeletionProtection": prod_like,
                "BackupRetentionPeriod": Match.any_value(),
            },
        )
        s.template.has_resource_properties(
            "AWS::RDS::DBParameterGroup", {"Parameters": Match.object_like({"rds.force_ssl": "1"})}
        )
        s.template.resource_count_is("AWS::SecretsManager::RotationSchedule", 1)
    prod.template.has_resource_properties(
        "AWS::RDS::DBProxy",
        {"RequireTLS": True, "DefaultAuthScheme": "IAM_AUTH", "EngineFamily": "POSTGRESQL"},
    )
    prod_db = next(iter(prod.of_type("AWS::RDS::DBInstance").values()))
    assert prod_db["DeletionPolicy"] in ("Snapshot", "Retain")
    assert prod_db["Properties"]["BackupRetentionPeriod"] >= 7


def test_database_reachable_only_from_known_security_groups(dev: Any) -> None:
    ingress = dev.of_type("AWS::EC2::SecurityGroupIngress").values()
    for rule in ingress:
        props = rule["Properties"]
        assert "CidrIp" not in props and "CidrIpv6" not in props, props
        assert "SourceSecurityGroupId" in props


# -- functions -----------------------------------------------------------------------------


def test_functions_arm64_py312_in_vpc_traced_with_both_layers(dev: Any) -> None:
    fns = _app_functions(dev)
    names = sorted(k.removeprefix("Functions")[:3] for k in fns)
    assert names == ["Api", "Aud", "Ing", "Mig", "Swe", "Voi"]
    for fn in fns.values():
        props = fn["Properties"]
        assert props["Runtime"] == "python3.12"
        assert props["Architectures"] == ["arm64"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert len(props["Layers"]) == 2
        assert props["VpcConfig"]["SubnetIds"] and props["VpcConfig"]["SecurityGroupIds"]
        env = props["Environment"]["Variables"]
        assert env["DB_SSLROOTCERT"] == CA_BUNDLE_PATH
        for key in (
            "POWERTOOLS_SERVICE_NAME",
            "POWERTOOLS_METRICS_NAMESPACE",
            "POWERTOOLS_LOG_LEVEL",
        ):
            assert env[key]
        json.loads(env["PARTNER_CONFIG"])


def test_api_function_uses_proxy_iam_auth_and_no_secret(prod: Any) -> None:
    api = next(v for k, v in _app_functions(prod).items() if k.startswith("FunctionsApi"))
    env = api["Properties"]["Environment"]["Variables"]
    assert env["DB_IAM_AUTH"] == "true"
    assert "DB_SECRET_ARN" not in env
    assert "DatabaseProxy" in _json_blob(env["DB_HOST"])
    statements = _role_statements(prod, "Api")
    actions = {a for st in statements for a in _as_list(st["Action"])}
    assert "rds-db:connect" in actions
    assert not any(a.startswith("s3:") for a in actions), actions
    # Secrets Manager and KMS: only to read the phone hash key (README "Privacy").
    phone_key = prod.stack.phone_key.secret
    for st in statements:
        if any(a.startswith("secretsmanager:") for a in _as_list(st["Action"])):
            assert _as_list(st["Resource"]) == [
                {"Ref": prod.stack.get_logical_id(phone_key.node.default_child)}
            ], st
        if any(a.startswith("kms:") for a in _as_list(st["Action"])):
            assert st["Action"] == "kms:Decrypt", st
            assert "secretsmanager." in _json_blob(st["Condition"]), st


def test_ingest_reads_incoming_writes_reports_only(dev: Any) -> None:
    statements = _role_statements(dev, "Ingest")
    by_sid = {st.get("Sid"): st for st in statements}
    assert _as_list(by_sid["ReadIncoming"]["Action"]) == ["s3:GetObject", "s3:GetObjectVersion"]
    assert "/incoming/*" in _json_blob(by_sid["ReadIncoming"]["Resource"])
    assert _as_list(by_sid["WriteReports"]["Action"]) == ["s3:PutObject"]
    assert "/reports/*" in _json_blob(by_sid["WriteReports"]["Resource"])
    s3_actions = {a for st in statements for a in _as_list(st["Action"]) if a.startswith("s3:")}
    assert s3_actions == {"s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:ListBucket"}
    env = next(v for k, v in _app_functions(dev).items() if k.startswith("FunctionsIngest"))[
        "Properties"
    ]["Environment"]["Variables"]
    assert env["INCOMING_PREFIX"] == "incoming/" and env["REPORTS_PREFIX"] == "reports/"
    # Its own role with an IAM token, directly to the instance (test_infra_hardening.py).
    assert "DB_SECRET_ARN" not in env and env["DB_IAM_AUTH"] == "true"


def test_no_wildcard_actions_and_no_wildcard_resources_on_data(dev: Any, prod: Any) -> None:
    for s in (dev, prod):
        for lid, st in _statements(s.resources):
            if st.get("Effect", "Allow") != "Allow":
                continue
            actions = _as_list(st["Action"])
            for action in actions:
                assert action != "*" and not action.endswith(":*"), (lid, action)
            if "*" in _as_list(st.get("Resource")):
                assert not any(a.startswith(DATA_SERVICES) for a in actions), (lid, actions)
                assert all(a.startswith(("ec2:", "xray:")) for a in actions), (lid, actions)


# -- API -----------------------------------------------------------------------------------


def test_every_method_requires_iam(dev: Any) -> None:
    methods = dev.of_type("AWS::ApiGateway::Method")
    assert len(methods) >= 4
    for m in methods.values():
        assert m["Properties"]["AuthorizationType"] == "AWS_IAM", m


def test_query_parameters_validated(dev: Any) -> None:
    dev.template.has_resource_properties(
        "AWS::ApiGateway::RequestValidator", {"ValidateRequestParameters": True}
    )
    cards = [
        m
        for m in dev.of_type("AWS::ApiGateway::Method").values()
        if "method.request.querystring.user_phone" in m["Properties"].get("RequestParameters", {})
        and m["Properties"]["HttpMethod"] == "GET"
    ]
    assert len(cards) == 2  # /get_card_status and /cards (each also has a HEAD twin)
    assert all("RequestValidatorId" in m["Properties"] for m in cards)
    # Optional at the gateway: the API's own 400 names the missing parameter.
    assert all(
        m["Properties"]["RequestParameters"]["method.request.querystring.user_phone"] is False
        for m in cards
    )


def test_stage_logging_tracing_throttling(dev: Any) -> None:
    stage = next(iter(dev.of_type("AWS::ApiGateway::Stage").values()))["Properties"]
    # API Gateway tracing records the full URL (?user_phone=...): off (docs/DEPLOY.md, "No
    # phone in traces").
    assert stage.get("TracingEnabled", False) is False
    settings = stage["MethodSettings"][0]
    assert settings["DataTraceEnabled"] is False
    assert settings["LoggingLevel"] == "ERROR"
    assert settings["ThrottlingRateLimit"] > 0 and settings["ThrottlingBurstLimit"] > 0
    fmt = stage["AccessLogSetting"]["Format"]
    json.loads(fmt.replace("$context.", "ctx_"))  # valid JSON
    for leak in (
        "querystring",
        "$context.path",
        "requestOverride",
        "$input",
        "$context.identity.userAgent",
    ):
        assert leak.lower() not in fmt.lower(), leak
    assert "$context.resourcePath" in fmt


def test_waf_rate_rule_attached_to_stage(prod: Any) -> None:
    acl = next(iter(prod.of_type("AWS::WAFv2::WebACL").values()))["Properties"]
    assert acl["Scope"] == "REGIONAL"
    assert any("RateBasedStatement" in r["Statement"] for r in acl["Rules"])
    for r in acl["Rules"]:
        assert r["VisibilityConfig"]["SampledRequestsEnabled"] is False
    assoc = next(iter(prod.of_type("AWS::WAFv2::WebACLAssociation").values()))["Properties"]
    assert "ApiRestApiDeploymentStage" in _json_blob(assoc["ResourceArn"])


def test_private_endpoint_option_denies_other_sources(private_api: Any) -> None:
    api = next(iter(private_api.of_type("AWS::ApiGateway::RestApi").values()))["Properties"]
    assert api["EndpointConfiguration"]["Types"] == ["PRIVATE"]
    deny = [s for s in api["Policy"]["Statement"] if s["Effect"] == "Deny"]
    assert any("aws:SourceVpce" in d["Condition"].get("StringNotEquals", {}) for d in deny)


# -- migrations, monitoring ----------------------------------------------------------------


def test_migrations_custom_resource_tracks_migration_files(dev: Any) -> None:
    from cardstatus.migrate import migrations_fingerprint

    res = next(iter(dev.of_type("Custom::CardStatusMigrations").values()))
    assert res["Properties"]["MigrationsFingerprint"] == migrations_fingerprint()
    deps = _as_list(res.get("DependsOn", []))
    assert any(d.startswith("DatabaseInstance") for d in deps), deps
    stage = next(iter(dev.of_type("AWS::ApiGateway::Stage").items()))
    assert any(d.startswith("MigrationsRun") for d in _as_list(stage[1].get("DependsOn", [])))


@pytest.mark.parametrize(
    ("metric", "namespace"),
    [
        ("ApproximateNumberOfMessagesVisible", "AWS/SQS"),
        ("Errors", "AWS/Lambda"),
        ("Throttles", "AWS/Lambda"),
        ("5XXError", "AWS/ApiGateway"),
        ("Latency", "AWS/ApiGateway"),
        ("CPUUtilization", "AWS/RDS"),
        ("DatabaseConnections", "AWS/RDS"),
        ("DatabaseConnectionsCurrentlySessionPinned", "AWS/RDS"),
    ],
)
def test_alarm_exists_and_notifies(dev: Any, prod: Any, metric: str, namespace: str) -> None:
    # The proxy's alarm exists where the proxy does (prod; dev has none: database.proxy).
    s = prod if metric == "DatabaseConnectionsCurrentlySessionPinned" else dev
    s.template.has_resource_properties(
        "AWS::CloudWatch::Alarm",
        {
            "MetricName": metric,
            "Namespace": namespace,
            "AlarmActions": [{"Ref": Match.string_like_regexp("MonitoringAlarmTopic")}],
        },
    )


def test_not_found_share_alarm_and_encrypted_topic(dev: Any, prod: Any) -> None:
    alarms = dev.of_type("AWS::CloudWatch::Alarm").values()
    assert any("notFound" in _json_blob(a["Properties"].get("Metrics", "")) for a in alarms)
    dev.template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    dev.template.resource_count_is("AWS::SNS::Subscription", 0)
    prod.template.has_resource_properties("AWS::SNS::Subscription", {"Protocol": "email"})
    dev.template.resource_count_is("AWS::CloudWatch::Dashboard", 1)


def test_the_dashboard_shows_every_alarm_of_the_stack(dev: Any, prod: Any) -> None:
    """Its alarm row is built last, so alarms made after the monitoring construct (audit,
    guard, events, partner feeds) are on it too."""
    for stack in (dev, prod):
        alarms = set(stack.of_type("AWS::CloudWatch::Alarm"))
        (dashboard,) = stack.of_type("AWS::CloudWatch::Dashboard").values()
        body = json.dumps(dashboard["Properties"]["DashboardBody"])
        shown = {name for name in alarms if f'"Fn::GetAtt": ["{name}", "Arn"]' in body}
        assert shown == alarms, sorted(alarms - shown)
        for late in ("MonitoringAuditDlqNotEmpty", "EventsOutboxOldestAge", "PartnerHealthFeed"):
            assert any(name.startswith(late) for name in shown), late
        assert body.index('"type\\":\\"alarm\\"') < body.index('"type\\":\\"metric\\"')


def test_kms_keys_rotate(dev: Any) -> None:
    keys = dev.of_type("AWS::KMS::Key")
    assert len(keys) == 3
    assert all(k["Properties"]["EnableKeyRotation"] is True for k in keys.values())


def test_prod_retains_data(prod: Any) -> None:
    for cfn_type in ("AWS::S3::Bucket", "AWS::SQS::Queue", "AWS::KMS::Key"):
        for res in prod.of_type(cfn_type).values():
            assert res.get("DeletionPolicy") == "Retain", cfn_type
    assert not prod.of_type("Custom::S3AutoDeleteObjects")
