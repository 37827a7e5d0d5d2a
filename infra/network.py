"""VPC without internet access: isolated subnets, an S3 gateway endpoint, and interface
endpoints only for the AWS APIs a function inside the VPC calls itself.

Why only Secrets Manager (by default):
* migrate reads the database master secret (secretsmanager:GetSecretValue), and the
  hosted rotation function runs in the VPC too -> Secrets Manager interface endpoint
  (ingest logs in with an IAM token and does not reach this endpoint).
* ingest reads/writes S3 -> the free S3 gateway endpoint (same-region bucket).
* SSE-KMS objects and queues: S3 and SQS call KMS on the caller's behalf; functions never
  call KMS themselves -> no KMS endpoint.
* SQS: the Lambda event source mapping polls and deletes messages from outside the VPC,
  and the function reports failures in its response -> no SQS endpoint.
* CloudWatch Logs and EMF metrics: Lambda ships stdout/stderr itself -> no Logs endpoint.
* X-Ray: with active tracing the Lambda service runs the X-Ray daemon and forwards the
  segments; the function only sends UDP to the local daemon -> no X-Ray endpoint.
* RDS IAM auth tokens are signed locally (no API call) -> no RDS endpoint.
Add more through ``network.interfaceEndpoints`` in cdk.json if a function ever needs them.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.settings import Settings
from infra.storage import removal_policy

_ENDPOINT_SERVICES = {
    "secretsmanager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "xray": ec2.InterfaceVpcEndpointAwsService.XRAY,
    "kms": ec2.InterfaceVpcEndpointAwsService.KMS,
    "sqs": ec2.InterfaceVpcEndpointAwsService.SQS,
    "logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "monitoring": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
    "rds": ec2.InterfaceVpcEndpointAwsService.RDS,
    "execute-api": ec2.InterfaceVpcEndpointAwsService.APIGATEWAY,
}


class Network(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings) -> None:
        super().__init__(scope, construct_id)
        self._build_vpc(settings)
        self._build_interface_endpoints(settings)

    def _build_vpc(self, settings: Settings) -> None:
        """Isolated app and data subnets, flow logs, and the S3 gateway endpoint."""
        flow_logs = logs.LogGroup(
            self,
            "FlowLogs",
            retention=retention_days(
                settings.get_int("network", "flowLogRetentionDays", minimum=1)
            ),
            removal_policy=RemovalPolicy.DESTROY
            if removal_policy(settings) == RemovalPolicy.DESTROY
            else RemovalPolicy.RETAIN,
        )
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(settings.get_str("network", "cidr")),
            max_azs=settings.get_int("network", "maxAzs", minimum=2),
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="app", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=22
                ),
                ec2.SubnetConfiguration(
                    name="data", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24
                ),
            ],
            restrict_default_security_group=True,
            flow_logs={
                "All": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
                    traffic_type=ec2.FlowLogTrafficType.ALL,
                )
            },
        )
        # The one way out of the isolated subnets: limited to this stack's bucket and this
        # account's principals by restrict_s3_endpoint() (no exfiltration with foreign
        # credentials or to foreign buckets).
        self.s3_endpoint = self.vpc.add_gateway_endpoint(
            "S3", service=ec2.GatewayVpcEndpointAwsService.S3
        )
        self.app_subnets = ec2.SubnetSelection(subnet_group_name="app")
        self.data_subnets = ec2.SubnetSelection(subnet_group_name="data")
        # Interface endpoints bill per AZ (~$7.30/month each): network.endpointAzs = 1 (dev)
        # puts them in the first app subnet only (functions in the other AZ reach them across
        # AZs); prod keeps one per AZ so that an AZ outage leaves the others reachable.
        azs = settings.get_int("network", "endpointAzs", minimum=1)
        app = self.vpc.select_subnets(subnet_group_name="app").subnets
        self.endpoint_subnets = ec2.SubnetSelection(subnets=app[:azs])

    def _build_interface_endpoints(self, settings: Settings) -> None:
        """network.interfaceEndpoints, behind one security group, for this account only."""
        self.endpoint_sg = ec2.SecurityGroup(
            self,
            "EndpointSg",
            vpc=self.vpc,
            description="Interface VPC endpoints: HTTPS from the functions that need them",
            allow_all_outbound=False,
        )
        self.endpoints: dict[str, ec2.InterfaceVpcEndpoint] = {}
        for name in settings.get("network", "interfaceEndpoints"):
            if name not in _ENDPOINT_SERVICES:
                raise ValueError(f"network.interfaceEndpoints: unknown service {name!r}")
            endpoint = self.vpc.add_interface_endpoint(
                f"Endpoint-{name}",
                service=_ENDPOINT_SERVICES[name],
                subnets=self.endpoint_subnets,
                security_groups=[self.endpoint_sg],
                private_dns_enabled=True,
                open=False,
            )
            # Only principals of this account may use the endpoint (no exfiltration through it).
            endpoint.add_to_policy(
                iam.PolicyStatement(
                    principals=[iam.AnyPrincipal()],
                    actions=["*"],
                    resources=["*"],
                    conditions={"StringEquals": {"aws:PrincipalAccount": self.vpc.stack.account}},
                )
            )
            self.endpoints[name] = endpoint

    def restrict_s3_endpoint(self, bucket_arn: str, actions: list[str]) -> None:
        """Only `actions` on this bucket, by principals of this account, through the endpoint."""
        self.s3_endpoint.add_to_policy(
            iam.PolicyStatement(
                sid="OnlyThisStacksBucket",
                principals=[iam.AnyPrincipal()],
                actions=actions,
                resources=[bucket_arn, f"{bucket_arn}/*"],
                conditions={
                    "StringEquals": {
                        "aws:PrincipalAccount": self.vpc.stack.account,
                        "aws:ResourceAccount": self.vpc.stack.account,
                    }
                },
            )
        )

    def security_group(self, construct_id: str, description: str) -> ec2.SecurityGroup:
        """A security group with no egress until rules are added."""
        return ec2.SecurityGroup(
            self, construct_id, vpc=self.vpc, description=description, allow_all_outbound=False
        )

    def allow_https_to_endpoints(self, sg: ec2.SecurityGroup) -> None:
        """HTTPS to the interface endpoints and to S3 through the gateway endpoint.

        The subnets have no route to the internet, so 443 to anywhere only reaches VPC
        endpoints (the S3 prefix list is region-specific and would need a lookup).
        """
        self.allow_https_to_s3(sg)
        self.endpoint_sg.add_ingress_rule(sg, ec2.Port.tcp(443), "HTTPS from functions")

    def allow_https_to_s3(self, sg: ec2.SecurityGroup) -> None:
        """HTTPS out: reaches S3 through the gateway endpoint (and interface endpoints only
        if their security group admits sg, see allow_https_to_endpoints)."""
        sg.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to VPC endpoints / S3")


_RETENTION_DAYS = {
    1: "ONE_DAY",
    3: "THREE_DAYS",
    5: "FIVE_DAYS",
    7: "ONE_WEEK",
    14: "TWO_WEEKS",
    30: "ONE_MONTH",
    60: "TWO_MONTHS",
    90: "THREE_MONTHS",
    120: "FOUR_MONTHS",
    150: "FIVE_MONTHS",
    180: "SIX_MONTHS",
    365: "ONE_YEAR",
    400: "THIRTEEN_MONTHS",
    545: "EIGHTEEN_MONTHS",
    731: "TWO_YEARS",
    1096: "THREE_YEARS",
    1827: "FIVE_YEARS",
    2192: "SIX_YEARS",
    2557: "SEVEN_YEARS",
    2922: "EIGHT_YEARS",
    3288: "NINE_YEARS",
    3653: "TEN_YEARS",
}


def retention_days(days: int) -> logs.RetentionDays:
    """The shortest CloudWatch Logs retention that keeps logs at least `days` days."""
    for allowed in sorted(_RETENTION_DAYS):
        if allowed >= days:
            return logs.RetentionDays[_RETENTION_DAYS[allowed]]
    return logs.RetentionDays.TEN_YEARS
