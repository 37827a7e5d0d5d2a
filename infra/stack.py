"""The one cardstatus stack: storage, queueing, network, database, functions, migrations,
API, monitoring, the lookup audit sink and status-change events, wired together."""

from __future__ import annotations

from typing import Any

from aws_cdk import Annotations, CfnOutput, Stack, Tags
from constructs import Construct

from infra.api import Api
from infra.audit import AuditSink
from infra.database import Database
from infra.events import Events
from infra.functions import Functions
from infra.guard_alarms import GuardAlarms
from infra.layers import LayerAssets
from infra.migrations import Migrations
from infra.monitoring import Monitoring
from infra.nag import ack, managed_policy_finding
from infra.network import Network
from infra.partner_health import PartnerHealth
from infra.phonekey import PhoneKey
from infra.privacy import Privacy
from infra.queueing import Queueing
from infra.settings import Settings
from infra.smoke import SmokeAccess
from infra.storage import Storage
from infra.void import VoidEndpoint

# What the functions inside the VPC do with S3 (through the gateway endpoint, whose policy
# allows nothing else): ingest reads partner files and writes reports.
S3_ENDPOINT_ACTIONS = ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:ListBucket"]


class CardStatusStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        layers: LayerAssets,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings
        untaggable = ["AWS::RDS::DBProxyTargetGroup"]  # its schema has no Tags
        Tags.of(self).add("service", "cardstatus", exclude_resource_types=untaggable)
        Tags.of(self).add("environment", settings.env_name, exclude_resource_types=untaggable)
        for warning in layers.warnings:
            Annotations.of(self).add_warning_v2("cardstatus:layers", warning)

        self._build_foundation(settings)
        self._build_compute(settings, layers)
        self._build_api(settings)
        self._build_monitoring_and_events(settings)
        self._acknowledge_cdk_singletons()
        CfnOutput(self, "BucketName", value=self.storage.bucket.bucket_name)
        CfnOutput(self, "IngestQueueUrl", value=self.queueing.queue.queue_url)
        CfnOutput(self, "DeadLetterQueueUrl", value=self.queueing.dlq.queue_url)

    def _build_foundation(self, settings: Settings) -> None:
        """Storage, queueing, network and database: what the functions are wired to."""
        self.storage = Storage(self, "Storage", settings=settings)
        self.queueing = Queueing(
            self,
            "Queueing",
            settings=settings,
            bucket=self.storage.bucket,
        )
        self.network = Network(self, "Network", settings=settings)
        self.network.restrict_s3_endpoint(self.storage.bucket.bucket_arn, S3_ENDPOINT_ACTIONS)
        self.database = Database(self, "Database", settings=settings, network=self.network)

    def _build_compute(self, settings: Settings, layers: LayerAssets) -> None:
        """The functions, and the migrations that run before rotation starts."""
        self.functions = Functions(
            self,
            "Functions",
            settings=settings,
            layers=layers,
            network=self.network,
            database=self.database,
            storage=self.storage,
            queueing=self.queueing,
        )
        # The phone hash key: read by the functions that hash phones (README "Privacy").
        self.phone_key = PhoneKey(
            self,
            "PhoneKey",
            settings=settings,
            key=self.database.key,
            readers=[self.functions.ingest, self.functions.api, self.functions.migrate],
        )
        self.migrations = Migrations(
            self,
            "Migrations",
            settings=settings,
            migrate_function=self.functions.migrate,
            database_endpoint=self.database.writer_endpoint,
            depends_on=[
                self.database.resource,
                self.database.secret.node.default_child,  # type: ignore[list-item]
                self.network,
                self.functions.migrate,
                self.phone_key.secret.node.default_child,  # type: ignore[list-item]
            ],
        )
        # The first rotation starts as soon as its schedule exists; while it runs, the secret
        # briefly holds a password the database no longer accepts. Let migrations go first.
        self.database.rotation.node.add_dependency(self.migrations.resource)

    def _build_api(self, settings: Settings) -> None:
        """The REST API (after the migrations) and its void method."""
        # The API should not take traffic before the schema (and its database user) exists.
        self.api = Api(
            self,
            "Api",
            settings=settings,
            handler=self.functions.api_target,
            network=self.network,
        )
        self.api.rest_api.deployment_stage.node.add_dependency(self.migrations.resource)
        self.void = VoidEndpoint(
            self,
            "Void",
            settings=settings,
            functions=self.functions,
            network=self.network,
            database=self.database,
            storage=self.storage,
            api=self.api,
        )
        # POST /privacy/erase (on the void function) hashes the number it erases.
        self.phone_key.add_reader(self.void.function)
        self.network.allow_https_to_endpoints(self.void.security_group)
        self.smoke = SmokeAccess(
            self, "Smoke", settings=settings, storage=self.storage, api=self.api
        )

    def _build_monitoring_and_events(self, settings: Settings) -> None:
        """Alarms and dashboard, then the status-change events (alarming to the same topic)."""
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            settings=settings,
            key=self.queueing.key,
            queue=self.queueing.queue,
            dlq=self.queueing.dlq,
            ingest=self.functions.ingest,
            api_function=self.functions.api,
            migrate=self.functions.migrate,
            rest_api=self.api.rest_api,
            access_logs=self.api.access_logs,
            instance=self.database.monitored,
            proxy=self.database.proxy,
        )
        self.guard_alarms = GuardAlarms(
            self,
            "GuardAlarms",
            settings=settings,
            monitoring=self.monitoring,
            void_function=self.void.function,
            api_function=self.functions.api,
        )
        # The lookup audit trail: the api's audit lines -> the audit function -> lookup_audit.
        self.audit = AuditSink(
            self,
            "Audit",
            settings=settings,
            functions=self.functions,
            network=self.network,
            database=self.database,
            key=self.queueing.key,
            monitoring=self.monitoring,
        )
        self.events = Events(
            self,
            "Events",
            settings=settings,
            network=self.network,
            # The void function publishes its void's events after commit, like ingest.
            publishers=[self.functions.ingest, self.functions.sweeper, self.void.function],
            sweeper=self.functions.sweeper,
            alarm_topic=self.monitoring.topic,
        )
        self.partner_health = PartnerHealth(
            self,
            "PartnerHealth",
            settings=settings,
            sweeper=self.functions.sweeper,
            alarm_topic=self.monitoring.topic,
        )
        self.privacy = Privacy(
            self,
            "Privacy",
            settings=settings,
            bucket=self.storage.bucket,
            sweeper=self.functions.sweeper,
        )
        # Last: the dashboard's alarm row shows every alarm above.
        self.monitoring.finish_dashboard(
            [*self.events.alarms, *self.partner_health.alarms.values()]
        )

    def _acknowledge_cdk_singletons(self) -> None:
        """Findings on functions aws-cdk-lib adds to the stack root (not our code)."""
        for child in self.node.children:
            if child.node.id.startswith("BucketNotificationsHandler"):
                ack(
                    child,
                    managed_policy_finding("service-role/AWSLambdaBasicExecutionRole"),
                    "aws-cdk-lib's S3 notifications handler (configures the bucket -> SQS "
                    "notification at deploy time); the managed policy only lets it write logs.",
                )
