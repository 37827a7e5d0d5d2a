"""Helpers of the events tests: outbox rows, a moto bus and the events it delivered, the
CardStatusChanged schema."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import jsonschema

from fixture_paths import ROOT

SCHEMA_PATH = ROOT / "docs" / "events" / "CardStatusChanged.schema.json"
BUS = "cardstatus-test"


def insert_rows(conn: Any, n: int, *, card_prefix: str = "CARD", file_id: int = 1) -> list[int]:
    """n pending outbox rows with valid details (ids returned, oldest first)."""
    ids = []
    with conn.cursor() as cur:
        for i in range(n):
            event_id = str(uuid.uuid4())
            card_id = f"{card_prefix}{i:05d}"
            detail = {
                "event_id": event_id,
                "card_id": card_id,
                "status": "DELIVERED",
                "previous_status": "PICKED_UP",
                "status_at": "2026-11-30T10:00:00+00:00",
                "reason": None,
                "partner": "acme",
                "file_id": file_id,
                "card_version": 2,
                "emitted_at": "2026-12-01T08:00:00+00:00",
            }
            cur.execute(
                "INSERT INTO status_outbox (event_id, card_id, card_version, detail, created_at)"
                " VALUES (%s, %s, 2, %s, now() - interval '5 minutes') RETURNING id",
                (event_id, card_id, json.dumps(detail)),
            )
            ids.append(cur.fetchone()[0])
    conn.commit()
    return ids


def outbox(conn: Any) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT id, event_id::text, card_id, card_version, detail, published_at, attempts,"
            " last_error FROM status_outbox ORDER BY id"
        )
        cols = [c.name for c in cur.description]
        rows = [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]
    conn.commit()
    return rows


class Recorder:
    """A moto bus with a rule that copies every cardstatus event into an SQS queue."""

    def __init__(self, session: Any, bus: str = BUS) -> None:
        self.events = session.client("events", region_name="us-east-1")
        self.sqs = session.client("sqs", region_name="us-east-1")
        self.bus = bus
        self.create_bus()
        self.queue_url = self.sqs.create_queue(QueueName=f"{bus}-recorder")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
        self.queue_arn = arn["Attributes"]["QueueArn"]
        self._received: list[dict[str, Any]] = []
        self.add_rule()

    def create_bus(self) -> None:
        self.events.create_event_bus(Name=self.bus)

    def add_rule(self) -> None:
        self.events.put_rule(
            Name="record-all",
            EventBusName=self.bus,
            EventPattern=json.dumps({"source": ["cardstatus"]}),
        )
        self.events.put_targets(
            Rule="record-all",
            EventBusName=self.bus,
            Targets=[{"Id": "recorder", "Arn": self.queue_arn}],
        )

    def delete_bus(self) -> None:
        self.events.remove_targets(Rule="record-all", EventBusName=self.bus, Ids=["recorder"])
        self.events.delete_rule(Name="record-all", EventBusName=self.bus)
        self.events.delete_event_bus(Name=self.bus)

    def restore_bus(self) -> None:
        self.create_bus()
        self.add_rule()

    def received(self) -> list[dict[str, Any]]:
        """Every event delivered so far (cumulative), in delivery order."""
        while True:
            got = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            messages = got.get("Messages", [])
            if not messages:
                return list(self._received)
            for m in messages:
                self._received.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])


def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(Path(SCHEMA_PATH).read_text("utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def assert_valid_events(events: list[dict[str, Any]]) -> None:
    """Every delivered event: the right envelope and a detail valid against the schema."""
    v = validator()
    for event in events:
        assert event["source"] == "cardstatus"
        assert event["detail-type"] == "CardStatusChanged"
        errors = sorted(v.iter_errors(event["detail"]), key=str)
        assert not errors, [e.message for e in errors]
