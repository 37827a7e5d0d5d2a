"""RDS PostgreSQL in isolated subnets, its master secret (rotated), and an RDS Proxy for the API.

Who connects how (login roles: cardstatus/dbroles.py, created by migration 0005):
* ingest connects to the instance directly as ``cardstatus_ingest`` with an IAM token
  (bounded concurrency, COPY and long transactions: no proxy); it has no access to the secret;
* api connects through the proxy as ``cardstatus_api`` with an IAM token; the proxy uses
  end-to-end IAM authentication to the database (DefaultAuthScheme=IAM_AUTH);
* migrate connects directly as the master user (the schema owner) with the master secret,
  which is encrypted with the stack's database key and otherwise kept for rotation and
  break-glass use. None of the function roles has a password anywhere.

The parameter group keeps statement text out of the server log (exported to CloudWatch):
psycopg2 interpolates parameters on the client, so a statement's text holds the phone it
looks up (docs/DEPLOY.md "No phone in the database's logs"). See SERVER_LOG_PARAMETERS;
Performance Insights (which samples statement text too) is off unless cdk.json
database.performanceInsights turns it on.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, CfnOutput, CfnResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct, IConstruct

from cardstatus import dbroles
from infra import aurora
from infra.nag import ack
from infra.network import Network, retention_days
from infra.settings import Settings
from infra.storage import data_removal_policy, removal_policy

MASTER_USER = "cardstatus_admin"

# No statement text (with its literals: phones) in the PostgreSQL log, on any path:
# - never log a statement for its duration (-1; pg_stat_statements, which normalises
#   constants to $n, is the slow-query tool) nor sample statements or transactions;
# - never add a STATEMENT: line to an error (panic: only for a PANIC);
# - terse: no DETAIL/CONTEXT/QUERY lines ("Failing row contains (... +9715...)", deadlock
#   reports that quote the other process's query, COPY lines);
# - no bind parameters in the log (for server-side binding, e.g. psycopg 3 / a future driver).
# tests/infra/test_db_log_redaction.py applies these to the embedded PostgreSQL, runs slow,
# cancelled and failing lookups by phone, and scans the server log for the phone.
SERVER_LOG_PARAMETERS: dict[str, str] = {
    "log_statement": "none",
    "log_min_duration_statement": "-1",
    "log_min_duration_sample": "-1",
    "log_transaction_sample_rate": "0",
    "log_min_error_statement": "panic",
    "log_error_verbosity": "terse",
    "log_parameter_max_length": "0",
    "log_parameter_max_length_on_error": "0",
    "log_lock_waits": "1",
}


def _default_child(construct: IConstruct) -> IConstruct:
    child = construct.node.default_child
    assert child is not None
    return child


SESSION_PARAMETERS = {"idle_in_transaction_session_timeout": "600000"}


class Database(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, settings: Settings, network: Network
    ) -> None:
        super().__init__(scope, construct_id)
        self.port = settings.get_int("database", "port")
        self.name = settings.get_str("database", "name")
        self.api_user = dbroles.API
        self.ingest_user = dbroles.INGEST

        self.key = kms.Key(
            self,
            "DbKey",
            alias=f"alias/{settings.resource_prefix}-db",
            description="cardstatus: database storage, snapshots and Performance Insights",
            enable_key_rotation=True,
            removal_policy=data_removal_policy(settings),
        )
        self.db_sg = network.security_group("DbSg", "PostgreSQL instance")
        self.rotation_sg = network.security_group("RotationSg", "Secret rotation function")
        self.allow_direct(self.rotation_sg, "rotation")
        network.allow_https_to_endpoints(self.rotation_sg)

        self.engine = settings.get_str("database", "engine")
        if self.engine not in ("postgres", "aurora"):
            raise ValueError(f"database.engine: {self.engine!r} is neither postgres nor aurora")
        self.instance: rds.DatabaseInstance | None = None
        self.cluster: rds.DatabaseCluster | None = None
        self._readers = 0
        if self.engine == "aurora":
            self._build_cluster(settings, network)
        else:
            self._build_instance(settings, network)
        self._build_rotation(settings, network)
        # database.proxy (cdk.json): prod keeps RDS Proxy in front of the api (connection
        # pooling for hundreds of concurrent api environments); dev, whose few connections the
        # instance takes directly, saves the proxy's 2-vCPU minimum (~$22/month, `make cost`):
        # the api then logs in to the instance itself, with the same IAM token and role.
        self.proxy: rds.DatabaseProxy | None = None
        if settings.get_bool("database", "proxy"):
            self.proxy_sg = network.security_group("ProxySg", "RDS Proxy in front of PostgreSQL")
            self.allow_direct(self.proxy_sg, "proxy")
            self.proxy = self._build_proxy(settings, network)
            CfnOutput(Stack.of(self), "ProxyEndpoint", value=self.proxy.endpoint)
        self._acknowledge(settings)
        CfnOutput(Stack.of(self), "DbEndpoint", value=self.writer_endpoint)
        CfnOutput(Stack.of(self), "DbSecretArn", value=self.secret.secret_arn)

    def _build_instance(self, settings: Settings, network: Network) -> None:
        """The instance, its parameter group and log groups; its master secret."""
        vpc = network.vpc
        engine, parameters = self._build_parameters(settings)
        identifier = f"{settings.resource_prefix}-db"
        log_groups = self._build_log_groups(settings, identifier)
        pi = settings.get_bool("database", "performanceInsights")
        instance = rds.DatabaseInstance(
            self,
            "Instance",
            instance_identifier=identifier,
            engine=engine,
            instance_type=ec2.InstanceType(settings.get_str("database", "instanceType")),
            vpc=vpc,
            vpc_subnets=network.data_subnets,
            security_groups=[self.db_sg],
            port=self.port,
            database_name=self.name,
            # For migrate (schema owner), rotation and break-glass only; encrypted with our key.
            credentials=rds.Credentials.from_generated_secret(MASTER_USER, encryption_key=self.key),
            parameter_group=parameters,
            storage_type=rds.StorageType.GP3,
            allocated_storage=settings.get_int("database", "allocatedStorageGb", minimum=20),
            max_allocated_storage=settings.get_int("database", "maxAllocatedStorageGb"),
            storage_encrypted=True,
            storage_encryption_key=self.key,
            multi_az=settings.get_bool("database", "multiAz"),
            backup_retention=Duration.days(
                settings.get_int("database", "backupRetentionDays", minimum=1)
            ),
            deletion_protection=settings.get_bool("database", "deletionProtection"),
            removal_policy=removal_policy(settings),
            publicly_accessible=False,
            iam_authentication=True,
            auto_minor_version_upgrade=True,
            allow_major_version_upgrade=False,
            copy_tags_to_snapshot=True,
            ca_certificate=rds.CaCertificate.RDS_CA_RSA2048_G1,
            cloudwatch_logs_exports=["postgresql", "upgrade"],
            enable_performance_insights=pi,
            performance_insight_encryption_key=self.key if pi else None,
            performance_insight_retention=rds.PerformanceInsightRetention.DEFAULT if pi else None,
        )
        for group in log_groups:
            instance.node.add_dependency(group)
        self.instance = instance
        self.monitored: rds.DatabaseInstance | rds.DatabaseCluster = instance
        self.writer_endpoint: str = instance.db_instance_endpoint_address
        self.resource: IConstruct = _default_child(instance)
        self._resource_id = instance.instance_resource_id
        self._keep_master_secret(settings, instance)

    def _build_cluster(self, settings: Settings, network: Network) -> None:
        """Aurora PostgreSQL Serverless v2 (infra/aurora.py) with the same contract."""
        identifier = f"{settings.resource_prefix}-db"
        log_group = aurora.cluster_log_group(self, settings, identifier)
        cluster = aurora.build_cluster(
            self,
            settings,
            network,
            {"rds.force_ssl": "1", **SERVER_LOG_PARAMETERS, **SESSION_PARAMETERS},
            rds.Credentials.from_generated_secret(MASTER_USER, encryption_key=self.key),
        )
        cluster.node.add_dependency(log_group)
        self.cluster = cluster
        self._readers = int(settings.get("database", "aurora").get("readers") or 0)
        self.monitored = cluster
        self.writer_endpoint = cluster.cluster_endpoint.hostname
        self.resource = _default_child(cluster)
        self._resource_id = cluster.cluster_resource_identifier
        self._keep_master_secret(settings, cluster)

    def _build_parameters(
        self, settings: Settings
    ) -> tuple[rds.IInstanceEngine, rds.ParameterGroup]:
        """The PostgreSQL engine version and the instance's parameter group."""
        version = settings.get_str("database", "engineVersion")
        engine = rds.DatabaseInstanceEngine.postgres(
            version=rds.PostgresEngineVersion.of(version, version.split(".")[0])
        )
        parameters = rds.ParameterGroup(
            self,
            "Parameters",
            engine=engine,
            description="cardstatus: TLS only, no statement text in the log, lock-wait logging",
            parameters={"rds.force_ssl": "1", **SERVER_LOG_PARAMETERS, **SESSION_PARAMETERS},
        )
        return engine, parameters

    def _build_log_groups(self, settings: Settings, identifier: str) -> list[logs.LogGroup]:
        """The instance's log groups, pre-created so that retention is ours (no LogRetention
        custom resource)."""
        log_policy = (
            RemovalPolicy.DESTROY
            if removal_policy(settings) == RemovalPolicy.DESTROY
            else RemovalPolicy.RETAIN
        )
        return [
            logs.LogGroup(
                self,
                f"Logs-{kind}",
                log_group_name=f"/aws/rds/instance/{identifier}/{kind}",
                retention=retention_days(settings.get_int("logRetentionDays")),
                removal_policy=log_policy,
            )
            for kind in ("postgresql", "upgrade")
        ]

    def _keep_master_secret(
        self, settings: Settings, database: rds.DatabaseInstance | rds.DatabaseCluster
    ) -> None:
        """self.secret: the master secret, retained with a retained database."""
        assert database.secret is not None
        self.secret: secretsmanager.ISecret = database.secret
        if removal_policy(settings) != RemovalPolicy.DESTROY:
            # A retained database keeps the credential of its master user.
            master_secret = database.node.find_child("Secret").node.default_child
            assert isinstance(master_secret, CfnResource)
            master_secret.apply_removal_policy(RemovalPolicy.RETAIN)

    def _build_rotation(self, settings: Settings, network: Network) -> None:
        vpc = network.vpc
        # Hosted single-user rotation of the master secret, inside the VPC.
        self.rotation = self.secret.add_rotation_schedule(
            "Rotation",
            automatically_after=Duration.days(
                settings.get_int("database", "rotationDays", minimum=1)
            ),
            hosted_rotation=secretsmanager.HostedRotation.postgre_sql_single_user(
                vpc=vpc,
                vpc_subnets=network.app_subnets,
                security_groups=[self.rotation_sg],
            ),
        )

    def _build_proxy(self, settings: Settings, network: Network) -> rds.DatabaseProxy:
        """RDS Proxy for the api function: TLS, end-to-end IAM as the api role."""
        vpc = network.vpc
        self.proxy_role = iam.Role(
            self,
            "ProxyRole",
            assumed_by=iam.ServicePrincipal("rds.amazonaws.com"),
            description="RDS Proxy: end-to-end IAM authentication to the database",
        )
        proxy = rds.DatabaseProxy(
            self,
            "Proxy",
            proxy_target=rds.ProxyTarget.from_cluster(self.cluster)
            if self.cluster is not None
            else rds.ProxyTarget.from_instance(self.instance),  # type: ignore[arg-type]
            vpc=vpc,
            vpc_subnets=network.data_subnets,
            security_groups=[self.proxy_sg],
            require_tls=True,
            iam_auth=True,
            default_auth_scheme=rds.DefaultAuthScheme.IAM_AUTH,
            role=self.proxy_role,
            debug_logging=False,
            max_connections_percent=settings.get_int("database", "proxyMaxConnectionsPercent"),
            idle_client_timeout=Duration.seconds(
                settings.get_int("database", "proxyIdleClientTimeoutSeconds")
            ),
        )
        # The proxy logs in to the database as the API user with an IAM token.
        self.proxy_role.add_to_policy(
            iam.PolicyStatement(
                sid="ProxyConnectsAsApiUser",
                actions=["rds-db:connect"],
                resources=[self.instance_user_arn(self.api_user)],
            )
        )
        if self.cluster is not None and self._readers:
            self._read_only_endpoint = aurora.read_only_proxy_endpoint(
                self, settings, proxy, network, self.proxy_sg
            )
        return proxy

    def connect_api(self, fn: iam.IGrantable, sg: ec2.SecurityGroup, user: str) -> str:
        """Let the api function (its role and security group) log in as `user` with an IAM
        token: through the proxy when there is one, else directly to the instance. Returns the
        host it connects to."""
        if self.proxy is not None:
            self.allow_via_proxy(sg, "api")
            self.proxy.grant_connect(fn, user)
            return self.proxy.endpoint
        self.allow_direct(sg, "api")
        self.grant_connect_direct(fn, user)
        return self.writer_endpoint

    def api_read_endpoint(self) -> str | None:
        """Aurora with readers: the host that reaches them (the proxy's READ_ONLY endpoint, or
        the cluster's reader endpoint without a proxy); None otherwise. The api gets it as
        DB_READ_HOST; DB_HOST stays the writer's, which its audit row per lookup needs."""
        if self.cluster is None or not self._readers:
            return None
        if self.proxy is not None:
            return self._read_only_endpoint
        return self.cluster.cluster_read_endpoint.hostname

    def _acknowledge(self, settings: Settings) -> None:
        if self.cluster is not None:
            self._acknowledge_cluster(settings, self.cluster)
            return
        assert self.instance is not None
        if not settings.get_bool("database", "multiAz"):
            ack(
                self.instance,
                "AwsSolutions-RDS3",
                f"{settings.env_name}: single-AZ to save cost; prod sets database.multiAz=true.",
            )
        if not settings.get_bool("database", "deletionProtection"):
            ack(
                self.instance,
                "AwsSolutions-RDS10",
                f"{settings.env_name}: torn down freely; prod sets database.deletionProtection.",
            )
        ack(
            self.instance,
            "AwsSolutions-RDS11",
            "Default port kept: the instance is only reachable from three security groups in "
            "isolated subnets, so a non-standard port adds no protection.",
        )

    def _acknowledge_cluster(self, settings: Settings, cluster: rds.DatabaseCluster) -> None:
        if not settings.get_bool("database", "deletionProtection"):
            ack(
                cluster,
                "AwsSolutions-RDS10",
                f"{settings.env_name}: torn down freely; prod sets database.deletionProtection.",
            )
        ack(
            cluster,
            "AwsSolutions-RDS11",
            "Default port kept: the cluster is only reachable from known security groups in "
            "isolated subnets, so a non-standard port adds no protection.",
        )

    def instance_user_arn(self, user: str) -> str:
        """rds-db:connect resource of a database user, directly on the instance (or cluster)."""
        return Stack.of(self).format_arn(
            service="rds-db",
            resource="dbuser",
            resource_name=f"{self._resource_id}/{user}",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    def grant_connect_direct(self, grantee: iam.IGrantable, user: str) -> None:
        """IAM authentication as `user` directly to the instance (not through the proxy)."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="ConnectToInstanceAsOwnRole",
                actions=["rds-db:connect"],
                resources=[self.instance_user_arn(user)],
            )
        )

    def allow_direct(self, client: ec2.SecurityGroup, what: str) -> None:
        """Let client's security group open connections to the instance."""
        self.db_sg.add_ingress_rule(client, ec2.Port.tcp(self.port), f"PostgreSQL from {what}")
        client.add_egress_rule(self.db_sg, ec2.Port.tcp(self.port), "PostgreSQL to the instance")

    def allow_via_proxy(self, client: ec2.SecurityGroup, what: str) -> None:
        assert self.proxy is not None, "no RDS Proxy in this environment (database.proxy)"
        self.proxy_sg.add_ingress_rule(client, ec2.Port.tcp(self.port), f"PostgreSQL from {what}")
        client.add_egress_rule(self.proxy_sg, ec2.Port.tcp(self.port), "PostgreSQL to the proxy")
