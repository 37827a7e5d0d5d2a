"""Privacy (README "Privacy"): how long things are kept.

* Raw uploads under the incoming prefix expire after `privacy.rawUploadDays` (S3 lifecycle;
  a void works from the database's copies, never from the raw object). Reports keep their own
  rule (`bucket.reportsExpirationDays`, infra/storage.py).
* The sweeper deletes cards whose latest event is older than `privacy.cardRetentionDays`
  (0 = keep forever), `privacy.retentionBatch` cards per transaction, and keeps the lookup
  audit trail's day partitions for `privacy.auditRetentionDays`.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.settings import Settings, SettingsError


class Privacy(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        bucket: s3.Bucket,
        sweeper: lambda_.Function,
    ) -> None:
        super().__init__(scope, construct_id)
        raw_days = settings.get_int("privacy", "rawUploadDays", minimum=1)
        bucket.add_lifecycle_rule(
            id="expire-raw-uploads",
            prefix=settings.get("bucket", "incomingPrefix"),
            expiration=Duration.days(raw_days),
        )
        card_days = settings.get_int("privacy", "cardRetentionDays", minimum=0)
        audit_days = settings.get_int("privacy", "auditRetentionDays", minimum=1)
        batch = settings.get_int("privacy", "retentionBatch", minimum=1)
        if batch > 10_000:
            raise SettingsError(f"privacy.retentionBatch must be <= 10000, got {batch}")
        sweeper.add_environment("CARD_RETENTION_DAYS", str(card_days))
        sweeper.add_environment("AUDIT_RETENTION_DAYS", str(audit_days))
        sweeper.add_environment("RETENTION_BATCH", str(batch))
