"""Deploy-time migrations: a custom resource (CDK Provider framework) whose onEvent handler is
the migrate function. Its properties carry a fingerprint of the migration files, so it runs
on the first deploy and on every deploy where a migration was added or changed (and when the
database instance is replaced). A failing migration fails the deploy (and rolls it back)."""

from __future__ import annotations

import hashlib

from aws_cdk import CustomResource, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct, IConstruct

from infra.nag import ack, arn_of, managed_policy_finding, wildcard_finding
from infra.network import retention_days
from infra.settings import ROOT, Settings

MIGRATIONS_DIR = ROOT / "layers" / "cardstatus" / "python" / "cardstatus" / "sql" / "migrations"


def migrations_fingerprint() -> str:
    """Same recipe as cardstatus.migrate.migrations_fingerprint (version + sha256 per file)."""
    digest = hashlib.sha256()
    for path in sorted(MIGRATIONS_DIR.glob("*.sql"), key=lambda p: p.name):
        checksum = hashlib.sha256(path.read_text("utf-8").encode("utf-8")).hexdigest()
        digest.update(path.name.removesuffix(".sql").encode() + b"\0" + checksum.encode() + b"\n")
    return digest.hexdigest()


class Migrations(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        migrate_function: lambda_.IFunction,
        database_endpoint: str,
        depends_on: list[IConstruct],
    ) -> None:
        super().__init__(scope, construct_id)
        provider_logs = logs.LogGroup(
            self,
            "ProviderLogs",
            retention=retention_days(settings.get_int("logRetentionDays")),
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=migrate_function,
            log_group=provider_logs,
        )
        self.fingerprint = migrations_fingerprint()
        self.resource = CustomResource(
            self,
            "Run",
            service_token=self.provider.service_token,
            resource_type="Custom::CardStatusMigrations",
            properties={
                "MigrationsFingerprint": self.fingerprint,
                "DatabaseEndpoint": database_endpoint,
            },
        )
        for dep in depends_on:
            self.resource.node.add_dependency(dep)

        fw = self.provider.node.find_child("framework-onEvent")
        ack(
            fw,
            managed_policy_finding("service-role/AWSLambdaBasicExecutionRole"),
            "CDK Provider framework function (not ours): AWS managed basic-execution policy "
            "only lets it write its own logs.",
        )
        ack(
            fw,
            wildcard_finding(f"{arn_of(migrate_function)}:*"),
            "CDK Provider framework may invoke any version/alias of the migrate function (and "
            "only that function).",
        )
        ack(
            fw,
            "AwsSolutions-L1",
            "CDK Provider framework function: its Node.js runtime is chosen and updated by the "
            "aws-cdk-lib release.",
        )
