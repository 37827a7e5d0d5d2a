"""`cardstatus local`: status-change events on a moto EventBridge bus, as in AWS.

The real ingest handler publishes each file's events to the bus `cardstatus-local` after its
commit, and the real sweeper handler runs once at start and then every minute (rows left
pending by an earlier run, a crash, or a bus that was down). A rule on the bus copies every
`cardstatus` event into an SQS queue, and a printer prints one readable line per event:

    event ZYW8890 DELIVERY_EXCEPTION -> RETURNED v3 (acme, file 4)
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

LOCAL_BUS = "cardstatus-local"
LOCAL_EVENTS_QUEUE = "cardstatus-local-events"
CONSOLE_RULE = "cardstatus-local-console"
SWEEP_EVERY_S = 60.0
SWEEP_TIMEOUT_S = 60


@dataclass(frozen=True)
class LocalBus:
    name: str
    queue_url: str


def create_local_bus(client: Callable[[str], Any]) -> LocalBus:
    """The bus, and a rule that copies every cardstatus event into a queue for the console."""
    events, sqs = client("events"), client("sqs")
    with contextlib.suppress(events.exceptions.ResourceAlreadyExistsException):
        events.create_event_bus(Name=LOCAL_BUS)
    queue_url = sqs.create_queue(QueueName=LOCAL_EVENTS_QUEUE)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    events.put_rule(
        Name=CONSOLE_RULE,
        EventBusName=LOCAL_BUS,
        EventPattern=json.dumps({"source": ["cardstatus"], "detail-type": ["CardStatusChanged"]}),
    )
    events.put_targets(
        Rule=CONSOLE_RULE, EventBusName=LOCAL_BUS, Targets=[{"Id": "console", "Arn": queue_arn}]
    )
    return LocalBus(name=LOCAL_BUS, queue_url=queue_url)


def describe(event: dict[str, Any]) -> str:
    """One readable line for a delivered CardStatusChanged event."""
    d = event.get("detail", {})
    previous = d.get("previous_status") or "(new)"
    return (
        f"event {d.get('card_id')} {previous} -> {d.get('status')} v{d.get('card_version')} "
        f"({d.get('partner')}, file {d.get('file_id')})"
    )


class EventPrinter(threading.Thread):
    """Prints every event the bus delivers to the console queue."""

    def __init__(self, sqs: Any, bus: LocalBus) -> None:
        super().__init__(name="event-printer", daemon=True)
        self.sqs = sqs
        self.bus = bus
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                got = self.sqs.receive_message(
                    QueueUrl=self.bus.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
                )
            except Exception as exc:  # moto stopping during shutdown
                if not self.stopping.is_set():
                    print(f"events: receive failed: {exc}", file=sys.stderr)
                    time.sleep(1)
                continue
            messages = got.get("Messages", [])
            events = []
            for m in messages:
                try:
                    events.append(json.loads(m["Body"]))
                except ValueError:
                    continue
            # EventBridge does not keep order; the console shows each card's changes in order.
            events.sort(key=lambda e: e.get("detail", {}).get("card_version") or 0)
            for event in events:
                print(describe(event), flush=True)
            for m in messages:
                with contextlib.suppress(Exception):  # moto stopping during shutdown
                    self.sqs.delete_message(
                        QueueUrl=self.bus.queue_url, ReceiptHandle=m["ReceiptHandle"]
                    )


@dataclass
class _Context:
    deadline: float
    function_name: str = "cardstatus-sweeper-local"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:local-sweeper"
    aws_request_id: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


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
    """Runs the real sweeper handler at start and every SWEEP_EVERY_S seconds."""

    def __init__(self, handler: Callable[[dict[str, Any], Any], Any]) -> None:
        super().__init__(name="sweep-schedule", daemon=True)
        self.handler = handler
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            context = _Context(
                deadline=time.monotonic() + SWEEP_TIMEOUT_S, aws_request_id=str(uuid.uuid4())
            )
            try:
                summary = self.handler(scheduled_event(), context)
                if summary.get("failed") or summary.get("error"):
                    print(f"sweeper: {summary}", file=sys.stderr, flush=True)
            except Exception as exc:
                if not self.stopping.is_set():
                    print(f"sweeper failed: {exc}", file=sys.stderr, flush=True)
            self.stopping.wait(SWEEP_EVERY_S)


class LocalEvents:
    """The bus, the printer and the sweep schedule of one `cardstatus local` run."""

    def __init__(
        self, client: Callable[[str], Any], sweeper: Callable[[dict[str, Any], Any], Any]
    ) -> None:
        self.bus = create_local_bus(client)
        self.printer = EventPrinter(client("sqs"), self.bus)
        self.schedule = SweepSchedule(sweeper)

    def start(self) -> None:
        self.printer.start()
        self.schedule.start()

    def stop(self, timeout_s: float = 3.0) -> None:
        """Signal both threads, then wait at most timeout_s in all (they are daemons: a sweep
        still running when the process exits leaves its rows pending for the next start)."""
        self.printer.stopping.set()
        self.schedule.stopping.set()
        deadline = time.monotonic() + timeout_s
        for thread in (self.printer, self.schedule):
            if thread.is_alive():
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
