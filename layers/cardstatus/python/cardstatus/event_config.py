"""Settings of the status-change event publisher (README "Events"), read from environment
variables; re-exported by `cardstatus.config` (a module of their own so that the functions
that do not publish, the api, do not build these classes at import: cold start)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

PUT_EVENTS_MAX_ENTRIES = 10  # EventBridge PutEvents accepts at most 10 entries per call


@dataclass(frozen=True)
class EventSettings:
    """How the outbox publisher reaches EventBridge. No bus name = publishing is off (rows stay
    pending; `cardstatus events --pending` shows them)."""

    bus_name: str | None = None  # EVENT_BUS_NAME
    batch_size: int = PUT_EVENTS_MAX_ENTRIES  # EVENTS_BATCH_SIZE: entries per PutEvents (1-10)
    max_retries: int = 3  # EVENTS_MAX_RETRIES: re-sends of entries that failed in a call
    concurrency: int = 4  # EVENTS_PUBLISH_CONCURRENCY: PutEvents calls in flight
    publish_budget_s: float = 60.0  # EVENTS_PUBLISH_BUDGET_S: ingest's own publish; then sweeper
    sweep_min_age_s: float = 30.0  # EVENTS_SWEEP_MIN_AGE_S: sweeper leaves fresher rows to ingest
    sweep_budget_s: float = 50.0  # EVENTS_SWEEP_BUDGET_S: one sweep's time (< its schedule)
    max_age_s: int = 600  # EVENTS_MAX_AGE_S: pending longer than this = stuck (logged, alarmed)
    connect_timeout_s: float = 2.0  # EVENTS_CONNECT_TIMEOUT_S
    read_timeout_s: float = 5.0  # EVENTS_READ_TIMEOUT_S

    @property
    def enabled(self) -> bool:
        return bool(self.bus_name)


def load_event_settings() -> EventSettings:
    env = os.environ
    batch = int(env.get("EVENTS_BATCH_SIZE", str(PUT_EVENTS_MAX_ENTRIES)))
    if not 1 <= batch <= PUT_EVENTS_MAX_ENTRIES:
        raise ValueError(f"EVENTS_BATCH_SIZE must be 1-{PUT_EVENTS_MAX_ENTRIES}, got {batch}")
    return EventSettings(
        bus_name=env.get("EVENT_BUS_NAME") or None,
        batch_size=batch,
        max_retries=max(0, int(env.get("EVENTS_MAX_RETRIES", "3"))),
        concurrency=max(1, int(env.get("EVENTS_PUBLISH_CONCURRENCY", "4"))),
        publish_budget_s=float(env.get("EVENTS_PUBLISH_BUDGET_S", "60")),
        sweep_min_age_s=max(0.0, float(env.get("EVENTS_SWEEP_MIN_AGE_S", "30"))),
        sweep_budget_s=float(env.get("EVENTS_SWEEP_BUDGET_S", "50")),
        max_age_s=int(env.get("EVENTS_MAX_AGE_S", "600")),
        connect_timeout_s=float(env.get("EVENTS_CONNECT_TIMEOUT_S", "2")),
        read_timeout_s=float(env.get("EVENTS_READ_TIMEOUT_S", "5")),
    )


@lru_cache(maxsize=1)
def event_settings() -> EventSettings:
    return load_event_settings()
