"""S3 ObjectCreated under incoming/ (any name) -> SQS queue (+ DLQ)."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.settings import Settings
from infra.storage import data_removal_policy


class Queueing(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        bucket: s3.IBucket,
    ) -> None:
        super().__init__(scope, construct_id)
        policy = data_removal_policy(settings)

        # Messages (S3 notifications, alarm notifications) get their own key: its policy
        # names the bucket (S3 may encrypt into the queue), and the bucket's key must not
        # name the bucket back (a dependency cycle).
        self.key = kms.Key(
            self,
            "MessagesKey",
            alias=f"alias/{settings.resource_prefix}-messages",
            description="cardstatus: ingest queue, dead-letter queues (ingest, audit), alarm topic",
            enable_key_rotation=True,
            removal_policy=policy,
        )
        self._build_queues(settings, policy)

        # Every object created under incoming/ is queued, whatever its name (SPEC 12-01: each
        # gets a report): ingestion accepts .csv/.txt/.tsv/.gz/.xlsx in any letter case and
        # rejects anything else with the reason, which a suffix filter would leave unanswered.
        # Reports go under reports/, which settings.validate() keeps apart from incoming/, so
        # writing one never notifies the queue (no loop).
        bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3n.SqsDestination(self.queue),
            s3.NotificationKeyFilter(prefix=settings.incoming_prefix),
        )

    def _build_queues(self, settings: Settings, policy: RemovalPolicy) -> None:
        """The ingest queue and its dead-letter queue, both under the messages key."""
        key = self.key
        self.dlq = dead_letter_queue(self, "DeadLetterQueue", settings, key, policy)
        self.queue = sqs.Queue(
            self,
            "IngestQueue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            data_key_reuse=Duration.hours(1),
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(
                settings.get_int("queue", "visibilityTimeoutSeconds")
            ),
            retention_period=Duration.days(settings.get_int("queue", "retentionDays", minimum=1)),
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=settings.get_int("queue", "maxReceiveCount", minimum=5),
                queue=self.dlq,
            ),
            removal_policy=policy,
        )


def dead_letter_queue(
    scope: Construct, construct_id: str, settings: Settings, key: kms.IKey, policy: RemovalPolicy
) -> sqs.Queue:
    """A dead-letter queue of this stack: under the messages key, TLS only, kept
    `queue.dlqRetentionDays` (the ingest queue's, infra/audit.py's)."""
    return sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key,
        data_key_reuse=Duration.hours(1),
        enforce_ssl=True,
        retention_period=Duration.days(settings.get_int("queue", "dlqRetentionDays", minimum=1)),
        removal_policy=policy,
    )
