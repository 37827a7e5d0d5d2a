"""Partner bucket (incoming/ uploads, reports/ written by ingestion), its access-log bucket,
the customer-managed KMS key for data at rest, and one upload role per partner."""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.nag import ack, arn_of, wildcard_finding
from infra.settings import ACCOUNT, PARTITION, PartnerTrust, Settings, principal_account


def removal_policy(settings: Settings) -> RemovalPolicy:
    return {
        "destroy": RemovalPolicy.DESTROY,
        "retain": RemovalPolicy.RETAIN,
        "snapshot": RemovalPolicy.SNAPSHOT,
    }[settings.get_str("removalPolicy")]


def data_removal_policy(settings: Settings) -> RemovalPolicy:
    """S3/SQS/KMS cannot snapshot: 'snapshot' means retain for them."""
    policy = removal_policy(settings)
    return RemovalPolicy.RETAIN if policy == RemovalPolicy.SNAPSHOT else policy


def partner_principal(trust: PartnerTrust) -> iam.IPrincipal:
    """The trust policy of a partner's upload role.

    The principal is the partner's account, narrowed by aws:PrincipalArn to the named roles or
    users (so a name may hold wildcards and need not exist yet, and no other identity of that
    account can assume the role, whatever its own policies allow); with an ExternalId when the
    partner configured one (required for another account: confused-deputy protection).
    """
    accounts = sorted({principal_account(p) for p in trust.principals})
    arns = [
        p.replace(ACCOUNT, Aws.ACCOUNT_ID).replace(PARTITION, Aws.PARTITION)
        for p in trust.principals
    ]
    conditions: dict[str, Any] = {"ArnLike": {"aws:PrincipalArn": arns}}
    if trust.external_id:
        conditions["StringEquals"] = {"sts:ExternalId": trust.external_id}
    members: list[iam.IPrincipal] = [
        iam.AccountRootPrincipal() if account == ACCOUNT else iam.AccountPrincipal(account)
        for account in accounts
    ]
    principal = members[0] if len(members) == 1 else iam.CompositePrincipal(*members)
    return iam.PrincipalWithConditions(principal, conditions)


class Storage(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings) -> None:
        super().__init__(scope, construct_id)
        policy = data_removal_policy(settings)
        auto_delete = settings.get_bool("autoDeleteObjects") and policy == RemovalPolicy.DESTROY
        # Customer-managed key for partner files and reports. Rotated yearly by KMS.
        self.data_key = kms.Key(
            self,
            "DataKey",
            alias=f"alias/{settings.resource_prefix}-data",
            description="cardstatus: partner files and ingestion reports",
            enable_key_rotation=True,
            removal_policy=policy,
        )

        self._build_access_logs(settings, policy, auto_delete)
        self._build_bucket(settings, policy, auto_delete)
        self._deny_other_encryption()
        self._build_partner_roles(settings)

    def _build_access_logs(
        self, settings: Settings, policy: RemovalPolicy, auto_delete: bool
    ) -> None:
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            # Server access log delivery does not support SSE-KMS targets: SSE-S3 it is.
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(
                        settings.get_int("bucket", "accessLogsExpirationDays", minimum=1)
                    ),
                    noncurrent_version_expiration=Duration.days(1),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            removal_policy=policy,
            auto_delete_objects=auto_delete,
        )
        ack(
            self.access_logs,
            "AwsSolutions-S1",
            "This is the server-access-log target bucket; logging it into itself would loop.",
        )

    def _build_bucket(self, settings: Settings, policy: RemovalPolicy, auto_delete: bool) -> None:
        reports = settings.reports_prefix
        self.bucket = s3.Bucket(
            self,
            "PartnerBucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.data_key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="partner-bucket/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-old-versions",
                    noncurrent_version_expiration=Duration.days(
                        settings.get_int("bucket", "noncurrentVersionExpirationDays", minimum=1)
                    ),
                    abort_incomplete_multipart_upload_after=Duration.days(
                        settings.get_int("bucket", "abortIncompleteUploadDays", minimum=1)
                    ),
                ),
                s3.LifecycleRule(
                    id="expire-reports",
                    prefix=reports,
                    expiration=Duration.days(
                        settings.get_int("bucket", "reportsExpirationDays", minimum=1)
                    ),
                ),
            ],
            removal_policy=policy,
            auto_delete_objects=auto_delete,
        )

    def _deny_other_encryption(self) -> None:
        # Objects are encrypted with the data key: an upload may not ask for another key or SSE-S3.
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DenyUploadsWithForeignKmsKey",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:PutObject"],
                resources=[self.bucket.arn_for_objects("*")],
                conditions={
                    "StringNotEqualsIfExists": {
                        "s3:x-amz-server-side-encryption-aws-kms-key-id": self.data_key.key_arn
                    },
                    "Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "false"},
                },
            )
        )
        # `aws:kms` (or `aws:kms:dsse`) without a key id would use the AWS managed aws/s3 key.
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DenyKmsUploadsWithoutOurKeyId",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:PutObject"],
                resources=[self.bucket.arn_for_objects("*")],
                conditions={
                    "StringLike": {"s3:x-amz-server-side-encryption": "aws:kms*"},
                    "Null": {"s3:x-amz-server-side-encryption-aws-kms-key-id": "true"},
                },
            )
        )
        # SSE-C: an object nobody here can read (and the known ransomware primitive).
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DenyCustomerProvidedKeys",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:PutObject"],
                resources=[self.bucket.arn_for_objects("*")],
                conditions={
                    "Null": {"s3:x-amz-server-side-encryption-customer-algorithm": "false"}
                },
            )
        )
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="DenyUploadsWithoutKms",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:PutObject"],
                resources=[self.bucket.arn_for_objects("*")],
                conditions={"StringEquals": {"s3:x-amz-server-side-encryption": "AES256"}},
            )
        )

    def _build_partner_roles(self, settings: Settings) -> None:
        """One upload role per partner: PutObject into incoming/<partner>/ only."""
        stack = Stack.of(self)
        incoming = settings.incoming_prefix
        # One upload role per partner: PutObject into incoming/<partner>/ only. Only the
        # principals cdk.json names for the partner may assume it (partnerPrincipals).
        self.partner_roles: dict[str, iam.Role] = {}
        for partner, trust in settings.partner_trust.items():
            role = iam.Role(
                self,
                f"Upload-{partner}",
                assumed_by=partner_principal(trust),
                description=f"cardstatus {settings.env_name}: partner {partner} uploads CSV files",
                max_session_duration=Duration.hours(1),
            )
            prefix = f"{incoming}{partner}/"
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="UploadOwnPrefix",
                    actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                    resources=[self.bucket.arn_for_objects(f"{prefix}*")],
                )
            )
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="ListOwnPrefix",
                    actions=["s3:ListBucket"],
                    resources=[self.bucket.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{prefix}*", prefix]}},
                )
            )
            # SSE-KMS uploads (multipart ones too) need GenerateDataKey + Decrypt, via S3 only.
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="EncryptViaS3",
                    actions=["kms:GenerateDataKey", "kms:Decrypt"],
                    resources=[self.data_key.key_arn],
                    conditions={
                        "StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"}
                    },
                )
            )
            ack(
                role,
                wildcard_finding(f"{arn_of(self.bucket)}/{prefix}*"),
                f"Partner {partner} may write any object name, but only under {prefix}.",
            )
            self.partner_roles[partner] = role
            CfnOutput(
                stack,
                f"UploadRoleArn{partner.title().replace('-', '').replace('_', '')}",
                value=role.role_arn,
                description=f"Role partner {partner} assumes to upload to s3://<bucket>/{prefix}",
            )
