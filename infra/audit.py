"""The lookup audit sink (README "Who looked at a card", "Privacy"): the audit trail off the
lookup's hot path.

The api function no longer INSERTs a `lookup_audit` row inside each lookup's query (+0.22-0.31
ms per lookup); it prints one JSON line per lookup to its log group (`{"audit": {"at", "caller",
"route", "by_phone", "outcome", "card_ids", "request_id"}}`). Here:

* A CloudWatch Logs subscription filter on the api function's log group (the function's own,
  whether callers invoke it through its SnapStart alias or not) sends the lines whose JSON has
  `audit.route`, and nothing else the api logs, to the audit function.
* The audit function (functions/audit) appends them to `lookup_audit` in batches. It connects
  directly to the writer as the api's database user (`cardstatus_api`, which may INSERT into
  `lookup_audit`) with an IAM token: rds-db:connect on that user only, PostgreSQL from its own
  security group to the instance, nothing else (it calls no AWS API: no HTTPS to endpoints).
  Reserved concurrency (cdk.json functions.audit) bounds its database connections.
* CloudWatch Logs invokes it asynchronously: Lambda retries a failed batch twice and keeps an
  event for up to MAX_EVENT_AGE (throttled by the reserved concurrency, or the database away),
  then sends it to a dead-letter queue, encrypted with the messages key like the ingest DLQ.
  Alarms on the stack's topic (infra/monitoring.py): AuditDlqNotEmpty (audit lines were not
  written: replay each record's requestPayload) and AuditErrors (the function raised).
"""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_logs_destinations as logs_destinations
from constructs import Construct

from infra.database import Database
from infra.functions import Functions
from infra.monitoring import Monitoring
from infra.nag import ack
from infra.network import Network
from infra.queueing import dead_letter_queue
from infra.settings import Settings
from infra.storage import data_removal_policy

FIVE_MIN = Duration.minutes(5)
# The lines the api prints for the audit trail (`{"audit": {"route": ...}}`), and only those.
AUDIT_FILTER = logs.FilterPattern.exists("$.audit.route")
# How long Lambda keeps retrying an event it could not deliver (throttled, database away):
# Lambda's maximum, so an outage of a few hours loses no audit line before the DLQ.
MAX_EVENT_AGE = Duration.hours(6)
RETRY_ATTEMPTS = 2


class AuditSink(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        functions: Functions,
        network: Network,
        database: Database,
        key: kms.IKey,
        monitoring: Monitoring,
    ) -> None:
        super().__init__(scope, construct_id)
        self._build_function(functions, network, database)
        self._build_dead_letter_queue(settings, key)
        self._build_subscription(functions.api)
        self._build_alarms(monitoring)

    def _build_function(self, functions: Functions, network: Network, database: Database) -> None:
        """The audit function: direct IAM connection to the writer as the api's user."""
        self.security_group = network.security_group("AuditSg", "audit sink function")
        database.allow_direct(self.security_group, "audit")
        self.function = functions.add_function(
            "Audit",
            "audit",
            self.security_group,
            {
                "DB_HOST": database.writer_endpoint,
                "DB_USER": database.api_user,
                "DB_IAM_AUTH": "true",
                "POWERTOOLS_TRACE_DISABLED": "true",
            },
        )
        database.grant_connect_direct(self.function, database.api_user)

    def _build_dead_letter_queue(self, settings: Settings, key: kms.IKey) -> None:
        """Events that failed every retry or outlived MAX_EVENT_AGE, under the messages key."""
        self.dlq = dead_letter_queue(
            self, "DeadLetterQueue", settings, key, data_removal_policy(settings)
        )
        ack(
            self.dlq,
            "AwsSolutions-SQS3",
            "This queue is itself a dead-letter queue: the audit function's on-failure "
            "destination for asynchronous invocations (not an SQS redrive target, which is what "
            "cdk-nag looks for); an operator replays its records (AuditDlqNotEmpty alarm).",
        )
        self._build_async_invoke(key)

    def _build_async_invoke(self, key: kms.IKey) -> None:
        """Retries, event age and the on-failure destination of the function's asynchronous
        invocations ($LATEST: what the subscription invokes). Lambda sends to the DLQ with the
        function's role: sqs:SendMessage on that queue, and the messages key's data key through
        SQS only. (fn.configure_async_invoke with an SqsDestination would grant the queue's
        whole grantSendMessages: kms:Encrypt, kms:ReEncrypt*, kms:GenerateDataKey* as well.)"""
        fn = self.function
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="SendFailedEventsToDlq",
                actions=["sqs:SendMessage"],
                resources=[self.dlq.queue_arn],
            )
        )
        region = Stack.of(self).region
        fn.add_to_role_policy(
            iam.PolicyStatement(
                sid="DlqDataKeyViaSqs",
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"sqs.{region}.amazonaws.com"}},
            )
        )
        self.async_invoke = lambda_.CfnEventInvokeConfig(
            self,
            "AsyncInvoke",
            function_name=fn.function_name,
            qualifier="$LATEST",
            maximum_retry_attempts=RETRY_ATTEMPTS,
            maximum_event_age_in_seconds=int(MAX_EVENT_AGE.to_seconds()),
            destination_config=lambda_.CfnEventInvokeConfig.DestinationConfigProperty(
                on_failure=lambda_.CfnEventInvokeConfig.OnFailureProperty(
                    destination=self.dlq.queue_arn
                )
            ),
        )
        # Lambda checks at creation that the role may send to the destination.
        assert fn.role is not None
        self.async_invoke.node.add_dependency(fn.role)

    def _build_subscription(self, api: lambda_.Function) -> None:
        """The api's audit lines -> the audit function (CloudWatch Logs may invoke it, from
        that log group only)."""
        self.subscription = logs.SubscriptionFilter(
            self,
            "ApiAuditLines",
            log_group=api.log_group,
            filter_pattern=AUDIT_FILTER,
            destination=logs_destinations.LambdaDestination(self.function),
        )

    def _build_alarms(self, monitoring: Monitoring) -> None:
        self.alarms = [
            monitoring.add_alarm(
                "AuditDlqNotEmpty",
                self.dlq.metric_approximate_number_of_messages_visible(
                    period=Duration.minutes(1), statistic="Maximum"
                ),
                0,
                "Lookup audit lines failed every retry and are in the audit DLQ: the lookups "
                "they record are missing from lookup_audit. Fix the cause, then invoke the "
                "audit function again with each message's requestPayload.",
            ),
            monitoring.add_alarm(
                "AuditErrors",
                self.function.metric_errors(period=FIVE_MIN, statistic="Sum"),
                0,
                "The audit function raised errors (Lambda retries the batch; lines that fail "
                "every retry go to the audit DLQ).",
            ),
        ]
