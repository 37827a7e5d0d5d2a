"""Alarms (to an encrypted SNS topic) and one dashboard for the whole service."""

from __future__ import annotations

import json
from collections.abc import Sequence

from aws_cdk import ArnFormat, CfnOutput, Duration, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.settings import Settings

FIVE_MIN = Duration.minutes(5)


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        key: kms.IKey,
        queue: sqs.IQueue,
        dlq: sqs.IQueue,
        ingest: lambda_.IFunction,
        api_function: lambda_.IFunction,
        migrate: lambda_.IFunction,
        rest_api: apigw.RestApi,
        access_logs: logs.ILogGroup,
        instance: rds.DatabaseInstance | rds.DatabaseCluster,
        proxy: rds.DatabaseProxy | None,
    ) -> None:
        super().__init__(scope, construct_id)
        prefix = settings.resource_prefix
        self._prefix = prefix
        self._build_topic(settings, key)
        self._action = cw_actions.SnsAction(self.topic)
        self.alarms: list[cw.Alarm] = []
        self._build_ingestion_alarms(settings, queue, dlq, ingest, api_function, migrate)
        requests, not_found = self._build_api_alarms(settings, rest_api, access_logs)
        pinned = self._build_database_alarms(settings, instance, proxy)
        self._build_dashboard(
            queue, dlq, ingest, api_function, rest_api, requests, not_found, instance, pinned
        )
        self._dashboard_done = False
        CfnOutput(Stack.of(self), "AlarmTopicArn", value=self.topic.topic_arn)
        CfnOutput(Stack.of(self), "DashboardName", value=self.dashboard.dashboard_name)

    def _alarm(
        self,
        name: str,
        metric: cw.IMetric,
        threshold: float,
        description: str,
        *,
        comparison: cw.ComparisonOperator = cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
        periods: int = 1,
    ) -> cw.Alarm:
        """An alarm named <prefix>-<name> that notifies the topic when it fires and clears."""
        a = cw.Alarm(
            self,
            name,
            alarm_name=f"{self._prefix}-{name}",
            alarm_description=description,
            metric=metric,
            threshold=threshold,
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            comparison_operator=comparison,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
        a.add_alarm_action(self._action)
        a.add_ok_action(self._action)
        self.alarms.append(a)
        return a

    def add_alarm(
        self, name: str, metric: cw.IMetric, threshold: float, description: str
    ) -> cw.Alarm:
        """One more alarm on this topic (constructs of their own: infra/guard_alarms.py)."""
        return self._alarm(name, metric, threshold, description)

    def _build_topic(self, settings: Settings, key: kms.IKey) -> None:
        prefix = self._prefix
        self.topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name=f"{prefix} alarms",
            master_key=key,
            enforce_ssl=True,
        )
        # CloudWatch alarms of this stack publish to the KMS-encrypted topic. enforce_ssl gives
        # the topic a policy of its own, which replaces SNS's default one: without this
        # statement no alarm could publish ("no resource-based policy allows SNS:Publish").
        stack = Stack.of(self)
        alarms_of_this_stack = {
            "StringEquals": {"aws:SourceAccount": stack.account},
            "ArnLike": {
                "aws:SourceArn": stack.format_arn(
                    service="cloudwatch",
                    resource="alarm",
                    resource_name=f"{prefix}-*",
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                )
            },
        }
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions=alarms_of_this_stack,
            )
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublishToEncryptedTopic",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions=alarms_of_this_stack,
            )
        )
        if settings.alarm_email:
            self.topic.add_subscription(subs.EmailSubscription(settings.alarm_email))

    def _build_ingestion_alarms(
        self,
        settings: Settings,
        queue: sqs.IQueue,
        dlq: sqs.IQueue,
        ingest: lambda_.IFunction,
        api_function: lambda_.IFunction,
        migrate: lambda_.IFunction,
    ) -> None:
        # -- ingestion --------------------------------------------------------------------
        self._alarm(
            "DlqNotEmpty",
            dlq.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(1), statistic="Maximum"
            ),
            0,
            "A partner file failed every retry and is in the DLQ: read its report, fix, redrive.",
        )
        self._alarm(
            "IngestBacklogOld",
            queue.metric_approximate_age_of_oldest_message(period=FIVE_MIN, statistic="Maximum"),
            settings.get_int("alarms", "queueOldestMessageSeconds"),
            "Files are waiting too long for ingestion (stuck or under-provisioned ingest).",
        )
        for fn_name, fn in (("Ingest", ingest), ("Api", api_function), ("Migrate", migrate)):
            self._alarm(
                f"{fn_name}Errors",
                fn.metric_errors(period=FIVE_MIN, statistic="Sum"),
                0,
                f"The {fn_name.lower()} function raised errors.",
            )
            self._alarm(
                f"{fn_name}Throttles",
                fn.metric_throttles(period=FIVE_MIN, statistic="Sum"),
                0,
                f"The {fn_name.lower()} function was throttled.",
            )

    def _build_api_alarms(
        self, settings: Settings, rest_api: apigw.RestApi, access_logs: logs.ILogGroup
    ) -> tuple[cw.IMetric, cw.IMetric]:
        """API alarms; returns the request and 404 metrics (for the dashboard)."""
        # -- API ----------------------------------------------------------------------------
        self._alarm(
            "Api5xx",
            rest_api.metric_server_error(period=FIVE_MIN, statistic="Sum"),
            0,
            "The API answered 5xx (database unavailable or a bug).",
        )
        self._alarm(
            "ApiLatencyP99",
            rest_api.metric_latency(period=FIVE_MIN, statistic="p99"),
            settings.get_int("alarms", "apiLatencyP99Ms"),
            "API p99 latency is above target.",
            periods=3,
        )
        requests, not_found = self._build_not_found_share_alarm(settings, rest_api, access_logs)
        self._build_not_found_per_caller_alarm(settings, access_logs)
        return requests, not_found

    def _build_not_found_share_alarm(
        self, settings: Settings, rest_api: apigw.RestApi, access_logs: logs.ILogGroup
    ) -> tuple[cw.IMetric, cw.IMetric]:
        """The share of 404s among all requests; returns the request and 404 metrics."""
        # 404s counted from the access log (API Gateway only has a 4XX total).
        not_found = logs.MetricFilter(
            self,
            "NotFoundFilter",
            log_group=access_logs,
            metric_namespace=settings.get_str("functions", "metricsNamespace"),
            metric_name=f"{self._prefix}-ApiNotFound",
            filter_pattern=logs.FilterPattern.string_value("$.status", "=", "404"),
            metric_value="1",
            default_value=0,
        ).metric(period=FIVE_MIN, statistic="Sum")
        requests = rest_api.metric_count(period=FIVE_MIN, statistic="Sum")
        min_requests = settings.get_int("alarms", "notFoundMinRequests")
        share = cw.MathExpression(
            expression=f"IF(requests >= {min_requests}, 100 * notFound / requests, 0)",
            using_metrics={"requests": requests, "notFound": not_found},
            label="404 share (%)",
            period=FIVE_MIN,
        )
        self._alarm(
            "ApiNotFoundShare",
            share,
            settings.get_int("alarms", "notFoundSharePercent"),
            "A high share of 404s: someone may be enumerating card ids or phones.",
            periods=2,
        )
        return requests, not_found

    def _build_not_found_per_caller_alarm(
        self, settings: Settings, access_logs: logs.ILogGroup
    ) -> None:
        """404s per caller: one principal's 404s, whatever the others do (an enumerating
        caller cannot hide behind the service's overall traffic). Contributor Insights ranks
        the access log's userArn among requests answered 404."""
        prefix = self._prefix
        per_caller = cw.CfnInsightRule(
            self,
            "NotFoundPerCaller",
            rule_name=f"{prefix}-api-404-per-caller",
            rule_state="ENABLED",
            rule_body=json.dumps(
                {
                    "Schema": {"Name": "CloudWatchLogRule", "Version": 1},
                    "LogGroupNames": [access_logs.log_group_name],
                    "LogFormat": "JSON",
                    "Contribution": {
                        "Keys": ["$.userArn"],
                        "Filters": [{"Match": "$.status", "In": ["404"]}],
                    },
                    "AggregateOn": "Count",
                }
            ),
        )
        self.not_found_per_caller_rule = per_caller
        self._alarm(
            "ApiNotFoundPerCaller",
            cw.MathExpression(
                expression=(
                    f"INSIGHT_RULE_METRIC('{prefix}-api-404-per-caller', 'MaxContributorValue')"
                ),
                label="404s of the busiest caller",
                period=FIVE_MIN,
            ),
            settings.get_int("alarms", "notFoundPerCallerPer5Minutes"),
            "One caller got many 404s in 5 minutes: it may be enumerating card ids or phones "
            "(Contributor Insights rule api-404-per-caller names it).",
        ).node.add_dependency(per_caller)

    def _build_database_alarms(
        self,
        settings: Settings,
        instance: rds.DatabaseInstance | rds.DatabaseCluster,
        proxy: rds.DatabaseProxy | None,
    ) -> cw.IMetric | None:
        """Database alarms; returns the proxy pinning metric (for the dashboard), None without
        a proxy."""
        # -- database -----------------------------------------------------------------------
        self._alarm(
            "DbCpu",
            instance.metric_cpu_utilization(period=FIVE_MIN, statistic="Average"),
            settings.get_int("alarms", "dbCpuPercent"),
            "Database CPU is high.",
            periods=3,
        )
        self._alarm(
            "DbConnections",
            instance.metric_database_connections(period=FIVE_MIN, statistic="Maximum"),
            settings.get_int("alarms", "dbConnections"),
            "Database connections near the instance limit.",
        )
        if isinstance(instance, rds.DatabaseInstance):
            self._alarm(
                "DbFreeStorageLow",
                instance.metric_free_storage_space(period=FIVE_MIN, statistic="Minimum"),
                2 * 1024**3,
                "Less than 2 GiB of database storage left (autoscaling may be at its maximum).",
                comparison=cw.ComparisonOperator.LESS_THAN_THRESHOLD,
            )
        else:  # Aurora storage grows by itself; capacity is what runs out
            self._alarm(
                "DbCapacityHigh",
                instance.metric_acu_utilization(period=FIVE_MIN, statistic="Average"),
                90,
                "Aurora capacity above 90% of database.aurora.maxCapacity.",
                periods=3,
            )
        if proxy is None:
            return None
        pinned = cw.Metric(
            namespace="AWS/RDS",
            metric_name="DatabaseConnectionsCurrentlySessionPinned",
            dimensions_map={"ProxyName": proxy.db_proxy_name},
            period=FIVE_MIN,
            statistic="Maximum",
        )
        self._alarm(
            "ProxySessionPinning",
            pinned,
            0,
            "RDS Proxy connections are pinned (session state on proxied connections).",
            periods=3,
        )
        return pinned

    def _build_dashboard(
        self,
        queue: sqs.IQueue,
        dlq: sqs.IQueue,
        ingest: lambda_.IFunction,
        api_function: lambda_.IFunction,
        rest_api: apigw.RestApi,
        requests: cw.IMetric,
        not_found: cw.IMetric,
        instance: rds.DatabaseInstance | rds.DatabaseCluster,
        pinned: cw.IMetric | None,
    ) -> None:
        prefix = self._prefix
        # -- dashboard: its rows are added by finish_dashboard, the alarm status row first ----
        self.dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=f"{prefix}-overview")
        self._metric_rows = [
            self._ingest_and_api_widgets(queue, dlq, ingest, rest_api, requests, not_found),
            self._latency_and_database_widgets(api_function, rest_api, instance, pinned),
        ]

    def finish_dashboard(self, alarms: Sequence[cw.IAlarm] = ()) -> None:
        """The dashboard's rows, once every construct has made its alarms: the status of every
        alarm of the stack (those made through `add_alarm` and the others' `alarms`), then the
        metric rows. Called once, by the stack, last."""
        if self._dashboard_done:
            raise RuntimeError("the dashboard is already finished")
        self._dashboard_done = True
        every = [*self.alarms, *alarms]
        self.dashboard.add_widgets(
            cw.AlarmStatusWidget(title="Alarms", alarms=every, width=24, height=4)
        )
        for row in self._metric_rows:
            self.dashboard.add_widgets(*row)

    @staticmethod
    def _ingest_and_api_widgets(
        queue: sqs.IQueue,
        dlq: sqs.IQueue,
        ingest: lambda_.IFunction,
        rest_api: apigw.RestApi,
        requests: cw.IMetric,
        not_found: cw.IMetric,
    ) -> list[cw.IWidget]:
        """The dashboard's second row: ingest queue, ingest function, API requests."""
        return [
            cw.GraphWidget(
                title="Ingest queue",
                left=[
                    queue.metric_approximate_number_of_messages_visible(period=Duration.minutes(1)),
                    dlq.metric_approximate_number_of_messages_visible(period=Duration.minutes(1)),
                ],
                right=[queue.metric_approximate_age_of_oldest_message(period=Duration.minutes(1))],
                width=8,
            ),
            cw.GraphWidget(
                title="Ingest function",
                left=[
                    ingest.metric_invocations(),
                    ingest.metric_errors(),
                    ingest.metric_throttles(),
                ],
                right=[ingest.metric_duration(statistic="p99")],
                width=8,
            ),
            cw.GraphWidget(
                title="API requests",
                left=[
                    requests,
                    rest_api.metric_client_error(period=FIVE_MIN),
                    rest_api.metric_server_error(period=FIVE_MIN),
                    not_found,
                ],
                width=8,
            ),
        ]

    @staticmethod
    def _latency_and_database_widgets(
        api_function: lambda_.IFunction,
        rest_api: apigw.RestApi,
        instance: rds.DatabaseInstance | rds.DatabaseCluster,
        pinned: cw.IMetric | None,
    ) -> list[cw.IWidget]:
        """The dashboard's third row: API latency, database, RDS Proxy pinning."""
        return [
            cw.GraphWidget(
                title="API latency",
                left=[
                    rest_api.metric_latency(statistic="p50"),
                    rest_api.metric_latency(statistic="p99"),
                    api_function.metric_duration(statistic="p99"),
                ],
                width=8,
            ),
            cw.GraphWidget(
                title="Database",
                left=[instance.metric_cpu_utilization()],
                right=[instance.metric_database_connections()],
                width=8,
            ),
            *(
                [cw.GraphWidget(title="RDS Proxy pinning", left=[pinned], width=8)]
                if pinned
                else []
            ),
        ]
