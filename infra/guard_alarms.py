"""Alarms on the trust boundary (README "Caller roles", "Voiding a file"), on the stack's
alarm topic (infra/monitoring.py):

* VoidErrors / VoidThrottles: the void function failed or was throttled (a void rewrites many
  cards: a failure leaves the operator without an answer).
* FilesVoided: informational, fires on every void (the void function's `FilesVoided` metric,
  one per void that changed something), so a void never goes unnoticed.
* LookupBudgetExceeded: a caller spent its budget of card-id + phone lookups that do not
  match (api.lookupMismatchBudget per api.lookupBudgetWindowSeconds) and got 429: someone may
  be guessing a card's phone. The api function gets the budget as environment variables.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.monitoring import Monitoring
from infra.settings import Settings

FIVE_MIN = Duration.minutes(5)


class GuardAlarms(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        monitoring: Monitoring,
        void_function: lambda_.Function,
        api_function: lambda_.Function,
    ) -> None:
        super().__init__(scope, construct_id)
        namespace = settings.get_str("functions", "metricsNamespace")
        budget, window_s = settings.lookup_budget
        api_function.add_environment("LOOKUP_MISMATCH_BUDGET", str(budget))
        api_function.add_environment("LOOKUP_BUDGET_WINDOW_S", str(window_s))
        self.alarms = [
            monitoring.add_alarm(
                "VoidErrors",
                void_function.metric_errors(period=FIVE_MIN, statistic="Sum"),
                0,
                "The void function raised errors (a void may not have been applied).",
            ),
            monitoring.add_alarm(
                "VoidThrottles",
                void_function.metric_throttles(period=FIVE_MIN, statistic="Sum"),
                0,
                "The void function was throttled (reserved concurrency reached).",
            ),
            monitoring.add_alarm(
                "FilesVoided",
                cw.Metric(
                    namespace=namespace,
                    metric_name="FilesVoided",
                    dimensions_map={"service": "cardstatus-void"},
                    period=FIVE_MIN,
                    statistic="Sum",
                ),
                0,
                "A file was voided (informational: every void notifies; check who and why with "
                "GET /files/{file_id}).",
            ),
            monitoring.add_alarm(
                "LookupBudgetExceeded",
                cw.Metric(
                    namespace=namespace,
                    metric_name="LookupBudgetExceeded",
                    dimensions_map={"service": "cardstatus-api"},
                    period=FIVE_MIN,
                    statistic="Sum",
                ),
                0,
                f"A caller made more than {budget} card-id + phone lookups that did not match "
                f"within {window_s} s and was answered 429: it may be guessing phones "
                "(README 'Caller roles'; the api log names the caller).",
            ),
        ]
