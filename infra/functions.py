"""The Lambda functions (ingest, api, migrate, sweeper): arm64, Python 3.12, both layers, in the
VPC, one least-privilege role and one security group each."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from aws_cdk import Annotations, ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.database import Database
from infra.layers import LayerAssets, load_build_module
from infra.nag import ack, arn_of, wildcard_finding
from infra.network import Network, retention_days
from infra.queueing import Queueing
from infra.settings import ROOT, Settings
from infra.storage import Storage, removal_policy

RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64
CA_BUNDLE_PATH = "/opt/python/cardstatus/certs/rds-global-bundle.pem"
ASSET_EXCLUDES = ["__pycache__", "*.pyc", "tests", ".pytest_cache", ".mypy_cache"]
FUNCTION_ASSETS = ROOT / "layers" / "build" / "functions"

VPC_ENI_REASON = (
    "Lambda needs ec2:*NetworkInterface* actions to attach to the VPC; EC2 does not support "
    "resource-level scoping for Describe*/Create on ENIs of functions (AWS managed policy "
    "AWSLambdaVPCAccessExecutionRole has the same shape)."
)
XRAY_REASON = (
    "xray:PutTraceSegments/PutTelemetryRecords do not support resource-level permissions; "
    "active tracing needs them on *."
)


def function_asset(name: str) -> Path:
    """The code asset of one function: functions/__init__.py and functions/<name>/, so its
    handler is `functions.<name>.app.handler`, importable the same way in Lambda, tests and
    local runs. Staged under layers/build/functions/<name>/ (rebuilt on every synth), with
    CPython 3.12 bytecode like the layers (layers/build.py compile_tree; sources only, and a
    synth warning from infra/layers.py, when no 3.12 is found)."""
    out = FUNCTION_ASSETS / name
    build = load_build_module()
    with build.one_build_at_a_time(f"function-{name}"):  # a synth beside another
        shutil.rmtree(out, ignore_errors=True)
        package = out / "functions"
        package.mkdir(parents=True)
        shutil.copyfile(ROOT / "functions" / "__init__.py", package / "__init__.py")
        shutil.copytree(
            ROOT / "functions" / name,
            package / name,
            ignore=shutil.ignore_patterns(*ASSET_EXCLUDES),
        )
        build.compile_tree(out, build.FUNCTION_RUNTIME_DIR)
    return out


# The per-partner settings the functions read from PARTNER_CONFIG (cardstatus.config); "group"
# and "handover_to" say which partners share cards (README "Card ownership").
PARTNER_CONFIG_KEYS = ("timezone", "day_first", "phone_region", "feed", "group", "handover_to")


class Functions(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        layers: LayerAssets,
        network: Network,
        database: Database,
        storage: Storage,
        queueing: Queueing,
    ) -> None:
        super().__init__(scope, construct_id)
        self._settings = settings
        self._network = network
        self._stack = Stack.of(self)

        self._build_layers(layers)
        self._build_common_env(settings, database)
        self._build_ingest(settings, network, database, storage, queueing)
        self._build_api(network, database)
        self._build_migrate(network, database)
        self._build_sweeper(network, database)

    def _build_layers(self, layers: LayerAssets) -> None:
        """The two layers every function gets: third-party packages, and the runtime package."""
        self.deps_layer = lambda_.LayerVersion(
            self,
            "DepsLayer",
            code=lambda_.Code.from_asset(str(layers.deps)),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="cardstatus third-party packages (arm64, cp312; boto3 from the runtime)",
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.code_layer = lambda_.LayerVersion(
            self,
            "CodeLayer",
            code=lambda_.Code.from_asset(str(layers.code)),
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[ARCHITECTURE],
            description="cardstatus shared package and the RDS CA bundle",
            removal_policy=RemovalPolicy.RETAIN,
        )

    def _build_common_env(self, settings: Settings, database: Database) -> None:
        """Environment variables shared by every function (cardstatus.config reads them)."""
        partner_config = {
            name: {k: v for k, v in opts.items() if k in PARTNER_CONFIG_KEYS}
            for name, opts in settings.partners.items()
        }
        self.common_env: dict[str, str] = {
            "POWERTOOLS_METRICS_NAMESPACE": settings.get_str("functions", "metricsNamespace"),
            "POWERTOOLS_LOG_LEVEL": settings.get_str("functions", "logLevel"),
            "POWERTOOLS_LOGGER_LOG_EVENT": "false",
            "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
            # No Pydantic plugins are installed: skip the scan of every installed package's
            # entry points when the first model is built (cold start).
            "PYDANTIC_DISABLE_PLUGINS": "__all__",
            "DB_SSLROOTCERT": CA_BUNDLE_PATH,
            "DB_NAME": database.name,
            "DB_PORT": str(database.port),
            "DB_CONNECT_TIMEOUT_S": str(settings.get_int("functions", "dbConnectTimeoutSeconds")),
            "PARTNER_CONFIG": json.dumps(partner_config, separators=(",", ":"), sort_keys=True),
            "INCOMING_PREFIX": settings.incoming_prefix,
            "REPORTS_PREFIX": settings.reports_prefix,
            "MAX_OBJECT_BYTES": str(settings.get_int("functions", "maxObjectBytes")),
        }
        keywords = settings.get_optional("exceptionReasonKeywords")
        if keywords:
            self.common_env["EXCEPTION_REASON_KEYWORDS"] = json.dumps(keywords, sort_keys=True)
        card_id_pattern = settings.get_optional("cardIdPattern")
        if card_id_pattern:  # README "Configuration": CARD_ID_PATTERN
            self.common_env["CARD_ID_PATTERN"] = str(card_id_pattern)

    def _build_ingest(
        self,
        settings: Settings,
        network: Network,
        database: Database,
        storage: Storage,
        queueing: Queueing,
    ) -> None:
        """ingest: SQS -> S3 object -> database (direct, own role, IAM) -> report in S3.

        Logs in as cardstatus_ingest with an IAM token: no database secret (the Secrets
        Manager endpoint only serves it the phone hash key, infra/phonekey.py); its
        role-level statement/lock/idle timeouts come from migration 0005."""
        self.ingest_sg = network.security_group("IngestSg", "ingest function")
        database.allow_direct(self.ingest_sg, "ingest")
        # S3, and Secrets Manager for the phone hash key (infra/phonekey.py)
        network.allow_https_to_endpoints(self.ingest_sg)
        self.ingest = self._function(
            "Ingest",
            "ingest",
            self.ingest_sg,
            {
                "DB_HOST": database.writer_endpoint,
                "DB_USER": database.ingest_user,
                "DB_IAM_AUTH": "true",
            },
        )
        database.grant_connect_direct(self.ingest, database.ingest_user)
        self._grant_ingest_storage(settings, storage)
        self._build_ingest_source(settings, queueing)

    def _grant_ingest_storage(self, settings: Settings, storage: Storage) -> None:
        """ingest reads partner files under incoming/ and writes reports under reports/."""
        bucket = storage.bucket
        incoming, reports = settings.incoming_prefix, settings.reports_prefix
        self.ingest.add_to_role_policy(
            iam.PolicyStatement(
                sid="ReadIncoming",
                actions=["s3:GetObject", "s3:GetObjectVersion"],
                resources=[bucket.arn_for_objects(f"{incoming}*")],
            )
        )
        self.ingest.add_to_role_policy(
            iam.PolicyStatement(
                sid="WriteReports",
                actions=["s3:PutObject"],
                resources=[bucket.arn_for_objects(f"{reports}*")],
            )
        )
        # Without ListBucket a missing object reads as AccessDenied instead of NoSuchKey.
        self.ingest.add_to_role_policy(
            iam.PolicyStatement(
                sid="TellMissingObjects",
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
            )
        )
        self.ingest.add_to_role_policy(
            iam.PolicyStatement(
                sid="DataKeyViaS3",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[storage.data_key.key_arn],
                conditions={
                    "StringEquals": {"kms:ViaService": f"s3.{self._stack.region}.amazonaws.com"}
                },
            )
        )
        for resource, reason in (
            (f"{incoming}*", f"ingest reads any partner file, only under {incoming}"),
            (f"{reports}*", f"ingest writes one report per file, only under {reports}"),
        ):
            ack(
                self.ingest.role,  # type: ignore[arg-type]
                wildcard_finding(f"{arn_of(bucket)}/{resource}"),
                f"Object names are partner-chosen: {reason}.",
            )

    def _build_ingest_source(self, settings: Settings, queueing: Queueing) -> None:
        """The SQS event source mapping: one file per message, partial batch responses."""
        window = settings.get_int("queue", "maxBatchingWindowSeconds")
        self.ingest.add_event_source(
            sources.SqsEventSource(
                queueing.queue,
                batch_size=settings.get_int("queue", "batchSize"),
                max_batching_window=Duration.seconds(window) if window else None,
                report_batch_item_failures=True,
                max_concurrency=settings.get_int("queue", "maximumConcurrency"),
            )
        )

    def _build_api(self, network: Network, database: Database) -> None:
        """api: API Gateway -> database (through RDS Proxy unless database.proxy is false) with
        an IAM token."""
        self.api_sg = network.security_group("ApiSg", "api function")
        network.allow_https_to_endpoints(self.api_sg)  # the phone hash key (infra/phonekey.py)
        self.api = self._function(
            "Api",
            "api",
            self.api_sg,
            {
                "DB_USER": database.api_user,
                "DB_IAM_AUTH": "true",
                # Lambda's active tracing still records the invocation; the X-Ray SDK inside
                # the function would add ~250-700 ms to the cold import (target <= 300 ms, README
                # "Domain rules").
                "POWERTOOLS_TRACE_DISABLED": "true",
            },
        )
        # Through RDS Proxy, or straight to the instance where database.proxy is false (dev).
        self.api.add_environment(
            "DB_HOST", database.connect_api(self.api, self.api_sg, database.api_user)
        )
        read_host = database.api_read_endpoint()  # Aurora with a reader (infra/aurora.py)
        if read_host is not None:
            self.api.add_environment("DB_READ_HOST", read_host)
        self.api_target = self._snap_start_alias(self.api, "api")

    def _snap_start_alias(self, fn: lambda_.Function, name: str) -> lambda_.IFunction:
        """What callers invoke: with SnapStart (`functions.<name>.snapStart`), the alias `live`
        on the version published from the current code and configuration (SnapStart only
        applies to published versions); without it, the function itself ($LATEST)."""
        if not self._settings.function(name).snap_start:
            return fn
        Annotations.of(fn).acknowledge_warning(
            "@aws-cdk/aws-lambda:snapStartRequirePublish",
            "A version is published from current_version on every change; callers use its alias.",
        )
        return lambda_.Alias(
            self, f"{fn.node.id}Live", alias_name="live", version=fn.current_version
        )

    def _build_migrate(self, network: Network, database: Database) -> None:
        """migrate: the deploy-time custom resource handler, as the schema owner."""
        self.migrate_sg = network.security_group("MigrateSg", "migrate function")
        database.allow_direct(self.migrate_sg, "migrate")
        network.allow_https_to_endpoints(self.migrate_sg)
        self.migrate = self._function(
            "Migrate",
            "migrate",
            self.migrate_sg,
            # The schema owner; apply_migrations sets its own statement and lock timeouts.
            {"DB_SECRET_ARN": database.secret.secret_arn},
        )
        database.secret.grant_read(self.migrate)

    def _build_sweeper(self, network: Network, database: Database) -> None:
        """sweeper: publishes status-change events left pending (schedule: infra/events.py).

        Connects like ingest, as cardstatus_ingest with an IAM token (the role that writes
        the outbox; migration 0006 grants it the outbox): no secret, no Secrets Manager."""
        self.sweeper_sg = network.security_group("SweeperSg", "outbox sweeper function")
        database.allow_direct(self.sweeper_sg, "sweeper")
        network.allow_https_to_s3(self.sweeper_sg)  # 443 out; infra/events.py admits it
        self.sweeper = self._function(
            "Sweeper",
            "sweeper",
            self.sweeper_sg,
            {
                "DB_HOST": database.writer_endpoint,
                "DB_USER": database.ingest_user,
                "DB_IAM_AUTH": "true",
            },
        )
        database.grant_connect_direct(self.sweeper, database.ingest_user)

    def add_function(
        self, construct_id: str, name: str, sg: ec2.SecurityGroup, env: dict[str, str]
    ) -> lambda_.Function:
        """One more function built like these (functions/<name>/, both layers, in the VPC, its
        own role and log group), for constructs of their own (infra/void.py)."""
        return self._function(construct_id, name, sg, env)

    def _function(
        self, construct_id: str, name: str, sg: ec2.SecurityGroup, env: dict[str, str]
    ) -> lambda_.Function:
        """One function: its log group, its role, arm64/Python 3.12, both layers, in the VPC."""
        settings = self._settings
        cfg = settings.function(name)
        log_group, role = self._log_group_and_role(construct_id, name)
        environment: dict[str, Any] = {
            **self.common_env,
            "POWERTOOLS_SERVICE_NAME": f"cardstatus-{name}",
            **env,
        }
        fn = lambda_.Function(
            self,
            construct_id,
            description=f"cardstatus {name}",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=f"functions.{name}.app.handler",
            # The staged asset is already filtered (and holds its compiled __pycache__).
            code=lambda_.Code.from_asset(str(function_asset(name))),
            layers=[self.deps_layer, self.code_layer],
            timeout=Duration.seconds(cfg.timeout_s),
            memory_size=cfg.memory_mb,
            reserved_concurrent_executions=cfg.reserved_concurrency,
            environment=environment,
            role=role,
            log_group=log_group,
            tracing=lambda_.Tracing.ACTIVE,
            **self._snap_start_props(cfg.snap_start),
            vpc=self._network.vpc,
            vpc_subnets=self._network.app_subnets,
            security_groups=[sg],
        )
        ack(role, wildcard_finding("*"), f"{VPC_ENI_REASON} {XRAY_REASON}")
        ack(
            fn,
            "AwsSolutions-L1",
            "The project pins the functions to Python 3.12 (the layer is built for cp312); moving "
            "to a newer runtime is a deliberate, tested change.",
        )
        return fn

    @staticmethod
    def _snap_start_props(enabled: bool) -> dict[str, Any]:
        """SnapStart on published versions. A superseded version is deleted rather than kept:
        Python snapshots are billed for as long as their version exists."""
        if not enabled:
            return {}
        return {
            "snap_start": lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS,
            "current_version_options": lambda_.VersionOptions(
                removal_policy=RemovalPolicy.DESTROY,
                description="published for SnapStart (alias live)",
            ),
        }

    def _log_group_and_role(self, construct_id: str, name: str) -> tuple[logs.LogGroup, iam.Role]:
        """The function's own log group, and its role: write to that log group, manage the VPC
        network interfaces (for the Lambda service only, never from the function's code)."""
        settings = self._settings
        log_group = logs.LogGroup(
            self,
            f"{construct_id}Logs",
            retention=retention_days(settings.get_int("logRetentionDays")),
            removal_policy=RemovalPolicy.DESTROY
            if removal_policy(settings) == RemovalPolicy.DESTROY
            else RemovalPolicy.RETAIN,
        )
        role = iam.Role(
            self,
            f"{construct_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"cardstatus {settings.env_name} {name} function",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteOwnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            )
        )
        self._allow_network_interfaces(role)
        return log_group, role

    def _allow_network_interfaces(self, role: iam.Role) -> None:
        """Manage the VPC network interfaces, for the Lambda service only."""
        role.add_to_policy(
            iam.PolicyStatement(
                sid="VpcNetworkInterfaces",
                actions=[
                    "ec2:CreateNetworkInterface",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeSubnets",
                    "ec2:DeleteNetworkInterface",
                    "ec2:AssignPrivateIpAddresses",
                    "ec2:UnassignPrivateIpAddresses",
                ],
                resources=["*"],
            )
        )
        # ...for the Lambda service only: the function's code holds the same credentials and
        # must not create or remove network interfaces with them (the condition key is set on
        # calls made with a function's credentials, never on the service's own calls).
        role.add_to_policy(
            iam.PolicyStatement(
                sid="NoNetworkInterfacesFromFunctionCode",
                effect=iam.Effect.DENY,
                actions=[
                    "ec2:CreateNetworkInterface",
                    "ec2:DeleteNetworkInterface",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeSubnets",
                    "ec2:DetachNetworkInterface",
                    "ec2:AssignPrivateIpAddresses",
                    "ec2:UnassignPrivateIpAddresses",
                ],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "lambda:SourceFunctionArn": self._stack.format_arn(
                            service="lambda",
                            resource="function",
                            resource_name="*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    }
                },
            )
        )
