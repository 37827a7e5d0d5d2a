"""Aurora PostgreSQL Serverless v2: the database when one instance is not enough
(`cdk deploy -c database=aurora`, or `database.engine: "aurora"` in cdk.json; docs/CAPACITY.md
says when).

The same contract as the single instance (infra/database.py builds either): the same login
roles with IAM authentication (migration 0005 grants rds_iam), the same master secret
(encrypted with the stack's key, rotated), the same migrations, the same parameters (TLS only,
no statement text in the log: SERVER_LOG_PARAMETERS) in a cluster parameter group, logs
exported to CloudWatch with our retention, encryption with the stack's key, and alarms
(monitoring.py: CPU, connections, plus ACU utilisation near the maximum).

Capacity from cdk.json `database.aurora`: `minCapacity` / `maxCapacity` in ACUs (dev: 0 with
`autoPauseMinutes`: an idle dev cluster pauses and bills storage only; prod: a floor that
keeps the buffer cache warm), `readers`: serverless v2 readers that scale with the writer
(prod: one, in another AZ; the api reads through it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds

from infra.network import Network, retention_days
from infra.settings import Settings
from infra.storage import removal_policy

if TYPE_CHECKING:
    from infra.database import Database


def aurora_engine(settings: Settings) -> rds.IClusterEngine:
    version = str(settings.get("database", "aurora", "engineVersion"))
    return rds.DatabaseClusterEngine.aurora_postgres(
        version=rds.AuroraPostgresEngineVersion.of(version, version.split(".")[0])
    )


def build_cluster(
    db: Database,
    settings: Settings,
    network: Network,
    parameters: dict[str, str],
    credentials: rds.Credentials,
) -> rds.DatabaseCluster:
    """The Serverless v2 cluster: a writer and `database.aurora.readers` readers."""
    engine = aurora_engine(settings)
    group = rds.ParameterGroup(
        db,
        "ClusterParameters",
        engine=engine,
        description="cardstatus: TLS only, no statement text in the log, lock-wait logging",
        parameters=parameters,
    )
    pi = settings.get_bool("database", "performanceInsights")
    aurora = settings.get("database", "aurora")
    pause = int(aurora.get("autoPauseMinutes") or 0)
    readers = int(aurora.get("readers") or 0)

    def instance(name: str, **kwargs: object) -> rds.IClusterInstance:
        return rds.ClusterInstance.serverless_v2(
            name,
            ca_certificate=rds.CaCertificate.RDS_CA_RSA2048_G1,
            enable_performance_insights=pi,
            performance_insight_encryption_key=db.key if pi else None,
            auto_minor_version_upgrade=True,
            allow_major_version_upgrade=False,
            publicly_accessible=False,
            **kwargs,  # type: ignore[arg-type]
        )

    return rds.DatabaseCluster(
        db,
        "Cluster",
        cluster_identifier=f"{settings.resource_prefix}-db",
        engine=engine,
        writer=instance("Writer"),
        readers=[instance(f"Reader{i + 1}", scale_with_writer=True) for i in range(readers)],
        serverless_v2_min_capacity=float(aurora["minCapacity"]),
        serverless_v2_max_capacity=float(aurora["maxCapacity"]),
        serverless_v2_auto_pause_duration=Duration.minutes(pause) if pause else None,
        vpc=network.vpc,
        vpc_subnets=network.data_subnets,
        security_groups=[db.db_sg],
        port=db.port,
        default_database_name=db.name,
        credentials=credentials,
        parameter_group=group,
        storage_encrypted=True,
        storage_encryption_key=db.key,
        iam_authentication=True,
        backup=rds.BackupProps(
            retention=Duration.days(settings.get_int("database", "backupRetentionDays", minimum=1))
        ),
        deletion_protection=settings.get_bool("database", "deletionProtection"),
        removal_policy=removal_policy(settings),
        copy_tags_to_snapshot=True,
        cloudwatch_logs_exports=["postgresql"],
    )


def read_only_proxy_endpoint(
    db: Database,
    settings: Settings,
    proxy: rds.DatabaseProxy,
    network: Network,
    proxy_sg: ec2.SecurityGroup,
) -> str:
    """A READ_ONLY endpoint of the proxy (it routes to the readers): the api's host."""
    endpoint = rds.CfnDBProxyEndpoint(
        db,
        "ProxyReadOnly",
        db_proxy_endpoint_name=f"{settings.resource_prefix}-api-read-only",
        db_proxy_name=proxy.db_proxy_name,
        vpc_subnet_ids=network.vpc.select_subnets(subnet_group_name="data").subnet_ids,
        vpc_security_group_ids=[proxy_sg.security_group_id],
        target_role="READ_ONLY",
    )
    return endpoint.attr_endpoint


def cluster_log_group(db: Database, settings: Settings, identifier: str) -> logs.LogGroup:
    """The cluster's PostgreSQL log group, pre-created with our retention (no LogRetention
    custom resource)."""
    return logs.LogGroup(
        db,
        "Logs-cluster-postgresql",
        log_group_name=f"/aws/rds/cluster/{identifier}/postgresql",
        retention=retention_days(settings.get_int("logRetentionDays")),
        removal_policy=removal_policy(settings),
    )
