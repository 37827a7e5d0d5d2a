"""Partner feed health in AWS (README "Partner feed health"): the sweeper's own 5-minute
schedule for the partner-health task, and one CloudWatch alarm per monitored partner.

* Monitored partners: those with `feed` in cdk.json `partners` (the same PARTNER_CONFIG the
  functions read; checked here with cardstatus.config.parse_feed, so a bad feed fails synth).
* Schedule: every 5 minutes the sweeper gets {"task": "partner_health"}: it emits per-partner
  metrics (MinutesSinceLastFile, FeedLate, RejectRate; dimensions service + partner) and writes
  PartnerFeedLate / PartnerFeedRecovered through the outbox (functions/sweeper/app.py).
* Alarm `<prefix>-PartnerFeed-<partner>` to the stack's alarm topic: the feed is late, or its
  7-day reject rate is above the feed's `max_reject_rate`, in a 5-minute period. Missing data
  is not breaching: a silent sweeper is caught by the events alarms (OutboxOldestAge,
  SweeperErrors, infra/events.py).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as eventbridge
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from constructs import Construct

from cardstatus.config import FeedSettings, parse_feed
from infra.settings import Settings, SettingsError

EVERY = Duration.minutes(5)
TASK = {"task": "partner_health"}


def monitored_partners(settings: Settings) -> dict[str, FeedSettings]:
    """{partner: feed} of every configured partner with a `feed` (`default` excepted)."""
    out: dict[str, FeedSettings] = {}
    for name, opts in settings.partners.items():
        try:
            feed = parse_feed(name, opts.get("feed"))
        except ValueError as exc:
            raise SettingsError(f"partners.{name}.feed: {exc}") from None
        if feed is not None and name != "default":
            out[name] = feed
    return out


class PartnerHealth(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        sweeper: lambda_.Function,
        alarm_topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self._prefix = settings.resource_prefix
        self._namespace = settings.get_str("functions", "metricsNamespace")
        self.feeds = monitored_partners(settings)
        self.alarms: dict[str, cw.Alarm] = {}
        self.schedule: eventbridge.Rule | None = None
        if not self.feeds:
            return  # nothing to watch: no schedule, no alarms (the API and CLI still answer)
        self.schedule = eventbridge.Rule(
            self,
            "Schedule",
            description="Evaluate partner feed health (metrics, alarms, transition events)",
            schedule=eventbridge.Schedule.rate(EVERY),
            targets=[
                targets.LambdaFunction(
                    sweeper,
                    event=eventbridge.RuleTargetInput.from_object(TASK),
                    retry_attempts=0,  # the next evaluation comes in 5 minutes
                    max_event_age=EVERY,
                )
            ],
        )
        action = cw_actions.SnsAction(alarm_topic)
        for name, feed in sorted(self.feeds.items()):
            alarm = self._alarm(name, feed)
            alarm.add_alarm_action(action)
            self.alarms[name] = alarm

    def metric(self, name: str, partner: str, statistic: str = "Maximum") -> cw.Metric:
        return cw.Metric(
            namespace=self._namespace,
            metric_name=name,
            dimensions_map={"service": "cardstatus-sweeper", "partner": partner.lower()},
            period=EVERY,
            statistic=statistic,
        )

    def _alarm(self, name: str, feed: FeedSettings) -> cw.Alarm:
        late = self.metric("FeedLate", name)
        if feed.max_reject_rate is None:
            metric: cw.IMetric = late
            what = "late"
        else:
            limit = round(feed.max_reject_rate * 100, 4)  # RejectRate is in percent
            metric = cw.MathExpression(
                expression=f"IF(late > 0 OR FILL(rate, 0) > {limit:g}, 1, 0)",
                using_metrics={"late": late, "rate": self.metric("RejectRate", name)},
                label=f"{name}: feed late or reject rate over {limit:g}%",
                period=EVERY,
            )
            what = f"late, or its 7-day reject rate is above {limit:g}%"
        quiet = f", quiet days {', '.join(feed.quiet_days)}" if feed.quiet_days else ""
        return cw.Alarm(
            self,
            f"Feed{name.capitalize()}",
            alarm_name=f"{self._prefix}-PartnerFeed-{name}",
            alarm_description=(
                f"Partner {name}'s feed is {what} (a file every {feed.every_hours:g} h, "
                f"grace {feed.grace_hours:g} h{quiet}). Check: cardstatus partners --partner "
                f"{name} --table; README 'Partner feed health'."
            ),
            metric=metric,
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
        )
