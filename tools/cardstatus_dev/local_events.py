"""`cardstatus local`: status-change events on a moto EventBridge bus, as in AWS.

The real ingest handler publishes each file's events to the bus `cardstatus-local` after its
commit, and the real sweeper handler runs once at start and then every minute (rows left
pending by an earlier run, a crash, or a bus that was down). Rules created on the bus (with the
AWS CLI against the local endpoint) receive the events as in AWS.

The handlers reach the bus in-process (`InProcessBus`, moto's EventBridge backend called
directly with the same entries and the same answers as `PutEvents`), not over HTTP: moto's
HTTP server takes ~2 ms per call of 10 entries (~500 events/s), which left a 150k-row file's
events pending for hours; in-process the outbox drains at database speed (README "Events",
`python -m bench.local_publish`). The terminal gets one line per file, not per event:

    events file 4: 3 published to cardstatus-local (last: ZYW8890 DELIVERY_EXCEPTION -> RETURNED v3)
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cardstatus_dev.lambda_context import LocalContext

LOCAL_BUS = "cardstatus-local"
LOCAL_REGION = "us-east-1"
SWEEP_EVERY_S = 60.0
# The partner feed health check: the sweeper's second schedule, as in the stack
# (infra/partner_health.py: every 5 minutes, input {"task": "partner_health"}).
PARTNER_HEALTH_EVERY_S = 300.0
PARTNER_HEALTH_EVENT = {"task": "partner_health"}
SWEEP_TIMEOUT_S = 60
# A file's line is printed once no event of it was published for this long (a file's events
# go out in one burst; a burst cut by the publish budget gets a second line from the sweeper).
QUIET_S = 1.0


def create_local_bus(client: Callable[[str], Any]) -> str:
    """The bus, in moto (kept for the run; rules on it are the user's)."""
    events = client("events")
    with contextlib.suppress(events.exceptions.ResourceAlreadyExistsException):
        events.create_event_bus(Name=LOCAL_BUS)
    return LOCAL_BUS


def describe(event: dict[str, Any]) -> str:
    """One readable line for a CardStatusChanged event."""
    d = event.get("detail", {})
    previous = d.get("previous_status") or "(new)"
    return (
        f"event {d.get('card_id')} {previous} -> {d.get('status')} v{d.get('card_version')} "
        f"({d.get('partner')}, file {d.get('file_id')})"
    )


@dataclass
class _FileCount:
    published: int = 0
    printed: int = 0
    last_at: float = 0.0
    last: dict[str, Any] = field(default_factory=dict)


class InProcessBus:
    """A `PutEvents` client for the handlers that calls moto's EventBridge backend in this
    process (moto runs here too): the same validation, rules and answers, without HTTP. It
    counts what it published per file for the terminal."""

    def __init__(self, account_id: str | None = None, region: str = LOCAL_REGION) -> None:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.events.models import events_backends

        self.backend = events_backends[account_id or DEFAULT_ACCOUNT_ID][region]
        self.lock = threading.Lock()
        self.files: dict[Any, _FileCount] = {}

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        answers = self.backend.put_events(Entries)
        failed = sum(1 for a in answers if a.get("ErrorCode"))
        now = time.monotonic()
        with self.lock:
            for entry, answer in zip(Entries, answers, strict=False):
                if answer.get("ErrorCode"):
                    continue
                try:
                    detail = json.loads(entry["Detail"])
                except (ValueError, KeyError):
                    continue
                kind = entry.get("DetailType", "CardStatusChanged")
                key = detail.get("file_id") if kind == "CardStatusChanged" else kind
                count = self.files.setdefault(key, _FileCount())
                count.published += 1
                count.last_at = now
                count.last = detail
        return {"FailedEntryCount": failed, "Entries": answers}

    def lines(self, quiet_s: float = QUIET_S, now: float | None = None) -> list[str]:
        """One line per file whose events stopped arriving quiet_s ago and were not printed."""
        now = time.monotonic() if now is None else now
        out = []
        with self.lock:
            for file_id, count in self.files.items():
                new = count.published - count.printed
                if new <= 0 or now - count.last_at < quiet_s:
                    continue
                count.printed = count.published
                d = count.last
                last = (
                    f"{d.get('card_id')} {d.get('previous_status') or '(new)'} -> "
                    f"{d.get('status') or '(gone)'} v{d.get('card_version')}"
                )
                partner = f", {d.get('partner')}" if d.get("partner") else ""
                if isinstance(file_id, str):  # another detail-type (PartnerFeedLate, ...)
                    what, last, partner = file_id, f"partner {d.get('partner')}", ""
                else:
                    what = "file " + str(file_id) if file_id is not None else "no file"
                out.append(
                    f"events {what}: {new:,} published to {LOCAL_BUS} (last: {last}{partner})"
                )
        return out


class EventPrinter(threading.Thread):
    """Prints one line per file once its events are published (see InProcessBus.lines)."""

    def __init__(self, bus: InProcessBus) -> None:
        super().__init__(name="event-printer", daemon=True)
        self.bus = bus
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.25):
            self.flush()

    def flush(self, quiet_s: float = QUIET_S) -> None:
        for line in self.bus.lines(quiet_s):
            print(line, flush=True)


def scheduled_event() -> dict[str, Any]:
    """What the EventBridge schedule rule hands the sweeper."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:000000000000:rule/cardstatus-local-sweep"],
        "detail": {},
    }


class SweepSchedule(threading.Thread):
    """Runs the real sweeper handler on the stack's two schedules: the outbox sweep at start
    and every SWEEP_EVERY_S seconds, the partner feed health check at start and every
    PARTNER_HEALTH_EVERY_S seconds (its PartnerFeedLate / PartnerFeedRecovered events reach
    the local bus, its metrics the metrics log)."""

    def __init__(self, handler: Callable[[dict[str, Any], Any], Any]) -> None:
        super().__init__(name="sweep-schedule", daemon=True)
        self.handler = handler
        self.stopping = threading.Event()

    def run(self) -> None:
        health_due = time.monotonic()
        while not self.stopping.is_set():
            self._invoke("sweeper", scheduled_event())
            if time.monotonic() >= health_due and not self.stopping.is_set():
                self._invoke("partner health", dict(PARTNER_HEALTH_EVENT))
                health_due = time.monotonic() + PARTNER_HEALTH_EVERY_S
            self.stopping.wait(SWEEP_EVERY_S)

    def _invoke(self, name: str, event: dict[str, Any]) -> None:
        context = LocalContext("sweeper", timeout_ms=int(SWEEP_TIMEOUT_S * 1000))
        try:
            summary = self.handler(event, context)
            if summary.get("failed") or summary.get("error"):
                print(f"{name}: {summary}", file=sys.stderr, flush=True)
        except Exception as exc:
            if not self.stopping.is_set():
                print(f"{name} failed: {exc}", file=sys.stderr, flush=True)


class LocalEvents:
    """The bus, the in-process client, the printer and the sweep schedule of one run."""

    def __init__(
        self, client: Callable[[str], Any], sweeper: Callable[[dict[str, Any], Any], Any]
    ) -> None:
        self.bus_name = create_local_bus(client)
        self.client = InProcessBus()
        self.printer = EventPrinter(self.client)
        self.schedule = SweepSchedule(sweeper)
        self._original_client: Any = None

    def use_in_process_client(self) -> None:
        """The handlers' EventBridge client (cardstatus.events.events_client) becomes the
        in-process one: each handler asks for it on its first publish."""
        from cardstatus import events

        self._original_client = events.events_client
        events.events_client = lambda *args, **kwargs: self.client

    def start(self) -> None:
        self.printer.start()
        self.schedule.start()

    def stop(self, timeout_s: float = 3.0) -> None:
        """Signal both threads, then wait at most timeout_s in all (they are daemons: a sweep
        still running when the process exits leaves its rows pending for the next start); the
        lines of files published meanwhile are printed."""
        self.printer.stopping.set()
        self.schedule.stopping.set()
        deadline = time.monotonic() + timeout_s
        for thread in (self.printer, self.schedule):
            if thread.is_alive():
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self.printer.flush(quiet_s=0.0)
        if self._original_client is not None:  # the handlers' own client again (tests)
            from cardstatus import events

            events.events_client = self._original_client
            self._original_client = None
