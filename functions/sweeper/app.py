"""Outbox sweeper Lambda (every minute, EventBridge schedule): publishes every status-change
event still pending in `status_outbox` (a crash between the ingest commit and its publish, a
bus outage, a file larger than ingest's publish budget), then reports the outbox's state.

Metrics: EventsPublished, EventsPublishFailed, OutboxPending, OutboxOldestAgeSeconds (the
stack alarms on the last one). Then privacy housekeeping (README "Privacy"): the lookup audit's
day partitions (AuditPartitionsCreated/Dropped) and the retention of cards past their period
(CardsPurged, EventsPurged), in batches within what is left of the run.

A failing bus does not fail the invocation (the rows stay pending and are tried again next
minute); an unreachable database does.

Partner feed health (its own schedule, every 5 minutes, input {"task": "partner_health"};
infra/partner_health.py): every monitored partner's health now (cardstatus.partners), per
partner metrics MinutesSinceLastFile, FeedLate (0/1) and RejectRate (percent, last 7 days) with
a `partner` dimension (the stack alarms per partner), and a PartnerFeedLate /
PartnerFeedRecovered event per transition, written through the outbox and published at once.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from cardstatus import audit, events, partners, retention
from cardstatus.config import event_settings, load_privacy_settings, settings
from cardstatus.db import LazyConnection

logger = Logger()
metrics = Metrics()

DB = LazyConnection()
_events: Any = None
# Stop claiming new rows when less than this is left of the invocation.
RESERVE_MS = 5_000
PARTNER_HEALTH_TASK = "partner_health"


def events_client() -> Any:
    global _events
    if _events is None:
        _events = events.events_client()
    return _events


def housekeeping(conn: Any, deadline: float) -> None:
    """The audit trail's partitions, then expired cards until the deadline (README "Privacy")."""
    cfg = load_privacy_settings()
    now = datetime.now(UTC)
    created, dropped = audit.maintain(conn, cfg.audit_retention_days, as_of=now)
    metrics.add_metric(name="AuditPartitionsCreated", unit=MetricUnit.Count, value=created)
    metrics.add_metric(name="AuditPartitionsDropped", unit=MetricUnit.Count, value=dropped)
    if cfg.card_retention_days == 0:  # keep forever
        return
    purged = retention.purge_expired_cards(
        conn,
        retention_days=cfg.card_retention_days,
        now=now,
        batch=cfg.retention_batch,
        deadline=deadline,
    )
    metrics.add_metric(name="CardsPurged", unit=MetricUnit.Count, value=purged.cards)
    metrics.add_metric(name="EventsPurged", unit=MetricUnit.Count, value=purged.events)
    if purged.cards:
        logger.info("retention", extra={"cards": purged.cards, "events": purged.events})


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if isinstance(event, dict) and event.get("task") == PARTNER_HEALTH_TASK:
        return partner_health(event, context)
    cfg = event_settings()
    remaining_s = (context.get_remaining_time_in_millis() - RESERVE_MS) / 1e3
    budget_s = min(remaining_s, cfg.sweep_budget_s)  # runs do not overlap their schedule
    deadline = time.monotonic() + max(budget_s, 0.0)
    try:
        conn = DB.get()
        result = events.publish_pending(conn, events_client(), cfg=cfg, deadline=deadline)
        pending, oldest_s = events.outbox_stats(conn)
        housekeeping(conn, deadline)
    except Exception:
        DB.discard()
        raise
    metrics.add_metric(name="EventsPublished", unit=MetricUnit.Count, value=result.published)
    metrics.add_metric(name="EventsPublishFailed", unit=MetricUnit.Count, value=result.failed)
    metrics.add_metric(name="OutboxPending", unit=MetricUnit.Count, value=pending)
    metrics.add_metric(name="OutboxOldestAgeSeconds", unit=MetricUnit.Seconds, value=oldest_s)
    summary = {
        "scheduled_at": event.get("time"),
        "published": result.published,
        "failed": result.failed,
        "error": result.error,
        "timed_out": result.timed_out,
        "pending": pending,
        "oldest_pending_s": round(oldest_s, 1),
        "bus": cfg.bus_name,
    }
    if not cfg.enabled:
        logger.error("EVENT_BUS_NAME is not set: nothing is published", extra=summary)
    elif oldest_s > cfg.max_age_s:
        logger.error("the outbox is stuck: events pending longer than allowed", extra=summary)
    elif result.failed or result.error:
        logger.warning("some events could not be published; next sweep retries", extra=summary)
    else:
        logger.info("sweep done", extra=summary)
    return {k: v for k, v in summary.items() if k != "bus"}


def partner_health(
    event: dict[str, Any], context: LambdaContext, now: datetime | None = None
) -> dict[str, Any]:
    """Evaluate every monitored partner's feed, emit its metrics, record transitions and
    publish their events (README "Partner feed health")."""
    cfg = event_settings()
    at = now or datetime.now(UTC)
    try:
        conn = DB.get()
        healths = [h for h in partners.all_health(conn, settings(), at) if h.monitored]
        transitions = partners.record_transitions(conn, healths)
        published = None
        if transitions:
            ids = [t.outbox_id for t in transitions]
            remaining_s = (context.get_remaining_time_in_millis() - RESERVE_MS) / 1e3
            published = events.publish_file(
                conn,
                events_client(),
                id_range=(min(ids), max(ids)),
                cfg=cfg,
                deadline=time.monotonic() + max(min(remaining_s, cfg.sweep_budget_s), 0.0),
            )
    except Exception:
        DB.discard()
        raise
    for h in healths:
        emit_partner_metrics(h)
    alerting = [h.partner for h in healths if h.alerting]
    metrics.add_metric(name="PartnersAlerting", unit=MetricUnit.Count, value=len(alerting))
    summary = {
        "task": PARTNER_HEALTH_TASK,
        "at": at.isoformat(),
        "partners": {h.partner: h.state for h in healths},
        "alerting": alerting,
        "transitions": [
            {"partner": t.partner, "event": t.detail_type, "event_id": t.event_id}
            for t in transitions
        ],
        "published": published.published if published else 0,
    }
    if transitions:
        logger.warning("partner feed state changed", extra=summary)
    else:
        logger.info("partner feed health checked", extra=summary)
    return summary


def emit_partner_metrics(h: partners.PartnerHealth) -> None:
    """One metric set per partner (its own EMF document, dimensions service + partner)."""
    m = EphemeralMetrics()
    m.add_dimension(name="partner", value=partners.partner_key(h.partner))
    if h.minutes_since_last_file is not None:
        m.add_metric(
            name="MinutesSinceLastFile", unit=MetricUnit.Count, value=h.minutes_since_last_file
        )
    m.add_metric(name="FeedLate", unit=MetricUnit.Count, value=1 if h.state == partners.LATE else 0)
    rate = h.last_7_days.reject_rate
    if rate is not None:
        m.add_metric(name="RejectRate", unit=MetricUnit.Percent, value=round(rate * 100, 2))
    m.flush_metrics()
