"""Status-change events (README "Events"): the custom bus, its archive, the outbox sweeper's
schedule, the EventBridge VPC endpoint, least-privilege PutEvents, alarms, and an example
consumer.

* Bus `cardstatus-<env>` (events are encrypted at rest with an AWS owned key; they carry no
  phone number) with an archive of every `cardstatus` event kept `events.archiveRetentionDays`
  days (replay: README "Events").
* Publishers (ingest, sweeper and the void function) get `events:PutEvents` on this bus
  only, and `EVENT_BUS_NAME`. The functions run in isolated subnets: they reach
  EventBridge through an interface endpoint whose policy allows PutEvents on this bus by this
  account's principals and nothing else.
* The sweeper runs every `events.sweepEveryMinutes` minute(s) (EventBridge schedule rule).
* Alarms to the stack's alarm topic: events that failed to publish, outbox older than
  `events.outboxMaxAgeMinutes` (also when the sweeper stops reporting), sweeper errors.
* Example consumer (`events.exampleConsumer`, or `-c cardstatus:exampleConsumer=false`): a rule
  with an SQS target and a DLQ, the pattern a consumer team copies into its own stack.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as eventbridge
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cardstatus import dbroles
from infra.network import Network
from infra.settings import Settings, SettingsError
from infra.storage import data_removal_policy

SOURCE = "cardstatus"
DETAIL_TYPE = "CardStatusChanged"
EXAMPLE_CONSUMER_CONTEXT = "cardstatus:exampleConsumer"
FIVE_MIN = Duration.minutes(5)


def example_consumer_enabled(settings: Settings, scope: Construct) -> bool:
    override = scope.node.try_get_context(EXAMPLE_CONSUMER_CONTEXT)
    if override is not None:
        return str(override).strip().lower() in ("1", "true", "yes", "on")
    return settings.get_bool("events", "exampleConsumer")


class Events(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        network: Network,
        publishers: list[lambda_.Function],
        sweeper: lambda_.Function,
        alarm_topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self._settings = settings
        self._prefix = settings.resource_prefix
        namespace = settings.get_str("functions", "metricsNamespace")
        max_age_min = settings.get_int("events", "outboxMaxAgeMinutes", minimum=2)
        self._build_bus(settings)
        self._build_endpoint(network)
        self._configure_publishers(settings, publishers, sweeper, max_age_min)
        self._build_schedule(settings, sweeper)
        self._build_alarms(sweeper, alarm_topic, namespace, max_age_min)
        self.consumer_queue: sqs.Queue | None = None
        if example_consumer_enabled(settings, self):
            self._example_consumer()

        stack = Stack.of(self)
        CfnOutput(stack, "EventBusName", value=self.bus.event_bus_name)
        CfnOutput(stack, "EventBusArn", value=self.bus.event_bus_arn)
        CfnOutput(stack, "EventArchiveName", value=self.archive.archive_name)

    def _build_bus(self, settings: Settings) -> None:
        """The bus and its archive of every `cardstatus` event."""
        self.bus = eventbridge.EventBus(
            self, "Bus", event_bus_name=self._prefix, description="cardstatus status-change events"
        )
        self.archive = eventbridge.Archive(
            self,
            "Archive",
            source_event_bus=self.bus,
            archive_name=f"{self._prefix}-status-changes",
            description="Every CardStatusChanged event, for replay to consumers",
            event_pattern=eventbridge.EventPattern(source=[SOURCE]),
            retention=Duration.days(settings.get_int("events", "archiveRetentionDays", minimum=1)),
        )
        self.archive.apply_removal_policy(data_removal_policy(settings))

    def _build_endpoint(self, network: Network) -> None:
        """The path from the isolated subnets to EventBridge: an interface endpoint with its
        own security group (HTTPS from the publishers' security groups only)."""
        self.endpoint_sg = ec2.SecurityGroup(
            self,
            "EndpointSg",
            vpc=network.vpc,
            description="EventBridge interface endpoint: HTTPS from the event publishers",
            allow_all_outbound=False,
        )
        self.endpoint = ec2.InterfaceVpcEndpoint(
            self,
            "Endpoint",
            vpc=network.vpc,
            service=ec2.InterfaceVpcEndpointAwsService.EVENTBRIDGE,
            subnets=network.endpoint_subnets,
            security_groups=[self.endpoint_sg],
            private_dns_enabled=True,
            open=False,
        )
        self.endpoint.add_to_policy(
            iam.PolicyStatement(
                sid="PutEventsOnTheStatusBusOnly",
                principals=[iam.AnyPrincipal()],
                actions=["events:PutEvents"],
                resources=[self.bus.event_bus_arn],
                conditions={"StringEquals": {"aws:PrincipalAccount": Stack.of(self).account}},
            )
        )

    def _configure_publishers(
        self,
        settings: Settings,
        publishers: list[lambda_.Function],
        sweeper: lambda_.Function,
        max_age_min: int,
    ) -> None:
        """PutEvents for every publisher, and the sweeper's and publishers' time budgets."""
        for fn in publishers:
            self.grant_publish(fn)
        self._restrict_bus(publishers)
        sweeper.add_environment("EVENTS_MAX_AGE_S", str(max_age_min * 60))
        sweep_budget = self._sweep_budget_s(settings)
        sweeper.add_environment("EVENTS_SWEEP_BUDGET_S", str(sweep_budget))
        for fn in publishers:
            if fn is not sweeper:
                fn.add_environment(
                    "EVENTS_PUBLISH_BUDGET_S",
                    str(settings.get_int("events", "publishBudgetSeconds", minimum=0)),
                )

    def _restrict_bus(self, publishers: list[lambda_.Function]) -> None:
        """The bus's resource policy (SPEC 10, 12-06): PutEvents only by the publishers'
        roles (ingest, sweeper, void). An explicit Deny binds principals of this account too,
        whatever their identity policies allow (AdministratorAccess included), so nobody
        else can put a forged CardStatusChanged (and its card_version) in front of consumers
        or into the archive. `aws:PrincipalArn` is the role ARN for an assumed-role session.
        The Deny applies to IAM principals (`Null aws:PrincipalArn false`): archive replays
        are sent by EventBridge itself (docs/DEPLOY.md "Checks on a deployed stack")."""
        roles = [fn.role.role_arn for fn in publishers if fn.role is not None]
        self.bus.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyPublishersPutEvents",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["events:PutEvents"],
                resources=[self.bus.event_bus_arn],
                conditions={
                    "ArnNotEquals": {"aws:PrincipalArn": roles},
                    "Null": {"aws:PrincipalArn": "false"},
                },
            )
        )
        self.bus.add_to_resource_policy(
            iam.PolicyStatement(
                sid="PublishersPutEvents",
                principals=[iam.AccountRootPrincipal()],
                actions=["events:PutEvents"],
                resources=[self.bus.event_bus_arn],
                conditions={"ArnEquals": {"aws:PrincipalArn": roles}},
            )
        )

    @staticmethod
    def _sweep_budget_s(settings: Settings) -> int:
        """events.sweepBudgetSeconds, checked against the sweep interval, the sweeper's
        timeout and the statement timeout of the role it logs in as."""
        every = settings.get_int("events", "sweepEveryMinutes", minimum=1)
        sweep_budget = settings.get_int("events", "sweepBudgetSeconds", minimum=1)
        sweeper_timeout = settings.function("sweeper").timeout_s
        if sweep_budget >= every * 60 or sweep_budget >= sweeper_timeout:
            raise SettingsError(
                "events.sweepBudgetSeconds must be shorter than the sweep interval and than "
                "functions.sweeper.timeoutSeconds (sweeps must not overlap or be cut off)"
            )
        # The sweeper logs in as the ingest role: same rule as infra/settings.py's check.
        role_s = (
            dbroles.statement_timeout_s(dbroles.INGEST)
            + dbroles.FUNCTION_OF_ROLE[dbroles.INGEST][1]
        )
        if sweeper_timeout < role_s:
            raise SettingsError(
                f"functions.sweeper.timeoutSeconds ({sweeper_timeout}) must exceed the "
                f"statement_timeout of role {dbroles.INGEST} plus its margin ({role_s:g} s)"
            )
        return sweep_budget

    def _build_schedule(self, settings: Settings, sweeper: lambda_.Function) -> None:
        every = settings.get_int("events", "sweepEveryMinutes", minimum=1)
        self.schedule = eventbridge.Rule(
            self,
            "SweepSchedule",
            description="Publish status-change events left pending in the outbox",
            schedule=eventbridge.Schedule.rate(Duration.minutes(every)),
            targets=[
                targets.LambdaFunction(
                    sweeper,
                    retry_attempts=0,  # the next run comes soon enough
                    max_event_age=Duration.minutes(max(every, 1)),
                )
            ],
        )

    def _build_alarms(
        self,
        sweeper: lambda_.Function,
        alarm_topic: sns.ITopic,
        namespace: str,
        max_age_min: int,
    ) -> None:
        """Failed publishes, a stale outbox (or a silent sweeper), sweeper errors."""
        self._action = cw_actions.SnsAction(alarm_topic)
        self.alarms: list[cw.Alarm] = []

        def emf(name: str, service: str, statistic: str) -> cw.Metric:
            return cw.Metric(
                namespace=namespace,
                metric_name=name,
                dimensions_map={"service": f"cardstatus-{service}"},
                period=FIVE_MIN,
                statistic=statistic,
            )

        failed = cw.MathExpression(
            expression="FILL(ingest, 0) + FILL(sweeper, 0)",
            using_metrics={
                "ingest": emf("EventsPublishFailed", "ingest", "Sum"),
                "sweeper": emf("EventsPublishFailed", "sweeper", "Sum"),
            },
            label="Events that failed to publish",
            period=FIVE_MIN,
        )
        self._alarm(
            "EventsPublishFailed",
            failed,
            0,
            "Status-change events failed to publish (bus, endpoint or permissions); they stay "
            "in the outbox and the sweeper retries them every minute.",
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        self._alarm(
            "OutboxOldestAge",
            emf("OutboxOldestAgeSeconds", "sweeper", "Maximum"),
            max_age_min * 60,
            f"A status-change event has been pending for more than {max_age_min} minutes, or "
            "the sweeper stopped reporting: consumers are not being told (README 'Events').",
            treat_missing_data=cw.TreatMissingData.BREACHING,
        )
        self._alarm(
            "SweeperErrors",
            sweeper.metric_errors(period=FIVE_MIN, statistic="Sum"),
            0,
            "The outbox sweeper failed (database unreachable or a bug).",
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )

    def _alarm(
        self,
        name: str,
        metric: cw.IMetric,
        threshold: float,
        description: str,
        treat_missing_data: cw.TreatMissingData,
    ) -> cw.Alarm:
        a = cw.Alarm(
            self,
            name,
            alarm_name=f"{self._prefix}-{name}",
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=treat_missing_data,
        )
        a.add_alarm_action(self._action)
        a.add_ok_action(self._action)
        self.alarms.append(a)
        return a

    def grant_publish(self, fn: lambda_.Function) -> None:
        """events:PutEvents on this bus only, the bus name in EVENT_BUS_NAME, and HTTPS from
        the function's security groups to the endpoint (their 443 egress already exists)."""
        self.bus.grant_put_events_to(fn)
        fn.add_environment("EVENT_BUS_NAME", self.bus.event_bus_name)
        for sg in fn.connections.security_groups:
            self.endpoint_sg.add_ingress_rule(sg, ec2.Port.tcp(443), "HTTPS from event publishers")

    def _example_consumer(self) -> None:
        """What a consumer team copies: a rule on the bus -> its SQS queue, with a DLQ for
        events EventBridge could not deliver and for messages the consumer failed on."""
        policy = data_removal_policy(self._settings)
        dlq = sqs.Queue(
            self,
            "ExampleConsumerDlq",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
            removal_policy=policy,
        )
        queue = sqs.Queue(
            self,
            "ExampleConsumerQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(4),
            visibility_timeout=Duration.seconds(60),
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=5, queue=dlq),
            removal_policy=policy,
        )
        self.consumer_rule = eventbridge.Rule(
            self,
            "ExampleConsumerRule",
            event_bus=self.bus,
            description="Example consumer: every CardStatusChanged event into an SQS queue",
            event_pattern=eventbridge.EventPattern(source=[SOURCE], detail_type=[DETAIL_TYPE]),
            targets=[
                targets.SqsQueue(
                    queue,
                    dead_letter_queue=dlq,
                    retry_attempts=185,
                    max_event_age=Duration.hours(24),
                )
            ],
        )
        self._alarm(
            "ExampleConsumerDlqNotEmpty",
            dlq.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(1), statistic="Maximum"
            ),
            0,
            "The example consumer's DLQ holds events it could not receive or process.",
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        self.consumer_queue = queue
        CfnOutput(Stack.of(self), "ExampleConsumerQueueUrl", value=queue.queue_url)
