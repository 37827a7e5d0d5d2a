"""Status-change events (README "Events"): publish the transactional outbox to EventBridge.

Ingestion writes one `status_outbox` row per changed card in the file's own transaction.
After that transaction commits, the ingest function publishes the file's rows
(`publish_file`); a sweeper function publishes whatever is still pending every minute
(`publish_pending`) — rows left behind by a crash between commit and publish, by a bus outage,
or by a file too large for the ingest function's publish budget.

Guarantees:
* at least once: a row is marked published only after EventBridge accepted its entry;
  a crash between PutEvents and the mark sends it again (consumers dedupe on `event_id`);
* no concurrent double send: rows are claimed `FOR UPDATE SKIP LOCKED` for the duration of
  the send (see cardstatus.sql.events);
* never in the way of ingestion: every PutEvents failure is recorded on its rows
  (`attempts`, `last_error`) and leaves them pending; nothing here raises for a failing bus.
  Database errors do raise (the caller owns the connection); the ingest handler catches them.

Entries: source `cardstatus`, detail-type `CardStatusChanged` (or the row's `detail_type`:
`PartnerFeedLate` / `PartnerFeedRecovered`, written by cardstatus.partners), detail = the row's
detail JSON (schemas: docs/events/<detail-type>.schema.json). Up to 10 entries per PutEvents call;
entries that fail in a call (FailedEntryCount) are sent again a bounded number of times.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg2.extensions import connection as Connection

from cardstatus.config import EventSettings, event_settings
from cardstatus.model import redact_phones
from cardstatus.sql import events as sql

logger = logging.getLogger(__name__)

SOURCE = "cardstatus"
DETAIL_TYPE = "CardStatusChanged"
ERROR_CHARS = 500  # last_error is kept short
CLAIM_BATCHES = 10  # a claim holds concurrency x CLAIM_BATCHES PutEvents calls' worth of rows
# A claim's transaction stays open while its rows are sent: no new call starts after this
# long, far below the ingest role's idle_in_transaction_session_timeout (60 s).
CHUNK_MAX_S = 20.0


@dataclass(frozen=True)
class OutboxRow:
    id: int
    event_id: str
    detail: dict[str, Any]
    detail_type: str | None = None  # None: CardStatusChanged (PartnerFeed*: cardstatus.partners)


@dataclass
class PublishResult:
    published: int = 0  # rows EventBridge accepted (now marked published)
    failed: int = 0  # rows attempted and still pending (attempts + 1, last_error set)
    error: str | None = None  # why publishing stopped early (bus unreachable, access denied)
    timed_out: bool = False  # the time budget ran out; the rest is left to the sweeper
    published_ids: list[int] = field(default_factory=list)

    def add(self, other: PublishResult) -> None:
        self.published += other.published
        self.failed += other.failed
        self.published_ids += other.published_ids
        self.error = self.error or other.error
        self.timed_out = self.timed_out or other.timed_out


def events_client(cfg: EventSettings | None = None, region: str | None = None) -> Any:
    """A botocore EventBridge client (no boto3 import; from the process's session,
    cardstatus.db.aws_client) with short timeouts: inside the VPC an unreachable endpoint must
    not hold ingestion for minutes."""
    import botocore.config

    from cardstatus.db import aws_client

    cfg = cfg or event_settings()
    config = botocore.config.Config(
        connect_timeout=cfg.connect_timeout_s,
        read_timeout=cfg.read_timeout_s,
        retries={"max_attempts": 3, "mode": "standard"},
    )
    return aws_client("events", region, config=config)


def entry(row: OutboxRow, bus_name: str) -> dict[str, Any]:
    """The PutEvents entry of one outbox row."""
    detail = row.detail if "event_id" in row.detail else {"event_id": row.event_id, **row.detail}
    return {
        "Source": SOURCE,
        "DetailType": row.detail_type or DETAIL_TYPE,
        "Detail": json.dumps(detail, separators=(",", ":"), ensure_ascii=False),
        "EventBusName": bus_name,
    }


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return redact_phones(f"{type(exc).__name__}: {text[0] if text else ''}")[:ERROR_CHARS]


class Publisher:
    """Claims outbox rows, sends them in PutEvents batches, records the outcome per row."""

    def __init__(
        self,
        conn: Connection,
        client: Any,
        cfg: EventSettings | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        claim_rows: int | None = None,
    ) -> None:
        self.conn = conn
        self.client = client
        self.cfg = cfg or event_settings()
        self._sleep = sleep
        self.claim_rows = claim_rows or self.cfg.batch_size * self.cfg.concurrency * CLAIM_BATCHES

    # -- claims ---------------------------------------------------------------------------
    def run(self, claim_sql: str, params: dict[str, Any], deadline: float | None) -> PublishResult:
        """Claim, send and mark rows chunk by chunk until none is left, the bus fails, or the
        deadline (time.monotonic()) passes."""
        result = PublishResult()
        if not self.cfg.bus_name:
            return result
        after = 0
        limit = self.claim_rows
        while True:
            if deadline is not None and time.monotonic() >= deadline:
                result.timed_out = True
                break
            try:
                with self.conn.cursor() as cur:
                    cur.execute(sql.CLAIM_IN_ID_ORDER)
                    cur.execute(claim_sql, {**params, "after": after, "limit": limit})
                    rows = [OutboxRow(int(i), str(e), dict(d), t) for i, e, d, t in cur.fetchall()]
                if not rows:
                    self.conn.commit()
                    break
                after = rows[-1].id
                chunk_deadline = time.monotonic() + CHUNK_MAX_S
                if deadline is not None:
                    chunk_deadline = min(chunk_deadline, deadline)
                chunk = self._send(rows, chunk_deadline)  # never raises
                self._mark(chunk)
                self.conn.commit()
            except BaseException:
                self.conn.rollback()
                raise
            result.add(chunk)
            if chunk.error:
                break
            if chunk.published + chunk.failed < len(rows):
                result.timed_out = True  # the rest of this claim is left for the next run
                break
        return result

    def _mark(self, chunk: _Chunk) -> None:
        with self.conn.cursor() as cur:
            if chunk.published_ids:
                cur.execute(sql.MARK_PUBLISHED, {"ids": chunk.published_ids})
            if chunk.errors:
                ids, errors = zip(*sorted(chunk.errors.items()), strict=True)
                cur.execute(sql.MARK_FAILED, {"ids": list(ids), "errors": list(errors)})

    # -- sending ---------------------------------------------------------------------------
    def _send(self, rows: list[OutboxRow], deadline: float) -> _Chunk:
        size = self.cfg.batch_size
        batches = [rows[i : i + size] for i in range(0, len(rows), size)]
        stop = threading.Event()

        def send(batch: list[OutboxRow]) -> tuple[list[int], dict[int, str], str | None]:
            return self._send_batch(batch, stop, deadline)

        if self.cfg.concurrency == 1 or len(batches) == 1:
            outcomes = [send(b) for b in batches]
        else:
            with ThreadPoolExecutor(max_workers=min(self.cfg.concurrency, len(batches))) as pool:
                outcomes = list(pool.map(send, batches))
        chunk = _Chunk()
        for ok, errors, fatal in outcomes:
            chunk.published_ids += ok
            chunk.errors.update(errors)
            chunk.error = chunk.error or fatal
        chunk.published = len(chunk.published_ids)
        chunk.failed = len(chunk.errors)
        return chunk

    def _send_batch(
        self, batch: Sequence[OutboxRow], stop: threading.Event, deadline: float
    ) -> tuple[list[int], dict[int, str], str | None]:
        """(published ids, {id: error} of rows that failed, error that stopped the bus).

        Rows not attempted (another batch found the bus unavailable, or the deadline passed
        before the first call) are in neither: they stay pending without an attempt counted.
        Retries stop at the deadline too; those rows count as failed."""
        bus = self.cfg.bus_name
        assert bus
        ok: list[int] = []
        errors: dict[int, str] = {}
        todo = list(batch)
        for attempt in range(self.cfg.max_retries + 1):
            if stop.is_set() or time.monotonic() >= deadline:
                return ok, errors, None
            try:
                response = self.client.put_events(Entries=[entry(r, bus) for r in todo])
            except Exception as exc:  # botocore has already retried what it retries
                stop.set()
                message = _describe(exc)
                errors.update((r.id, message) for r in todo)
                return ok, errors, message
            failed: list[OutboxRow] = []
            for row, res in zip(todo, response.get("Entries", []), strict=False):
                if res.get("ErrorCode") or not res.get("EventId"):
                    failed.append(row)
                    errors[row.id] = redact_phones(
                        f"{res.get('ErrorCode')}: {res.get('ErrorMessage') or ''}"
                    )[:ERROR_CHARS]
                else:
                    ok.append(row.id)
                    errors.pop(row.id, None)
            # A response shorter than the request would leave rows unanswered: retry them too.
            answered = len(response.get("Entries", []))
            for row in todo[answered:]:
                failed.append(row)
                errors[row.id] = "no result for this entry in the PutEvents response"
            if not failed:
                break
            todo = failed
            if attempt < self.cfg.max_retries:
                self._sleep(min(0.1 * 2**attempt, 2.0))
        return ok, errors, None


@dataclass
class _Chunk(PublishResult):
    errors: dict[int, str] = field(default_factory=dict)


# -- entry points ---------------------------------------------------------------------------


def publish_file(
    conn: Connection,
    client: Any,
    *,
    file_id: int | None = None,
    id_range: tuple[int, int] | None = None,
    cfg: EventSettings | None = None,
    deadline: float | None = None,
) -> PublishResult:
    """Publish one file's pending outbox rows: by the id range its report names, else by the
    file id in their detail. Run after the file's transaction committed."""
    publisher = Publisher(conn, client, cfg)
    if id_range is not None:
        first, last = id_range
        return publisher.run(
            sql.CLAIM_RANGE, {"first_id": int(first), "last_id": int(last)}, deadline
        )
    if file_id is None:
        return PublishResult()
    return publisher.run(sql.CLAIM_FILE, {"file_id": str(int(file_id))}, deadline)


def publish_report(
    conn: Connection,
    client: Any,
    report: dict[str, Any],
    *,
    cfg: EventSettings | None = None,
    deadline: float | None = None,
) -> PublishResult | None:
    """Publish what an ingestion report says the file changed; None when there is nothing to
    publish (no bus, not applied, no status change)."""
    cfg = cfg or event_settings()
    if not cfg.enabled or report.get("outcome") != "applied":
        return None
    outbox = report.get("outbox")
    if isinstance(outbox, dict) and outbox.get("first_id") is not None:
        first, last = int(outbox["first_id"]), int(outbox.get("last_id") or outbox["first_id"])
        return publish_file(conn, client, id_range=(first, last), cfg=cfg, deadline=deadline)
    if "status_changes" in report:  # the report says how many cards changed: none
        return None
    if report.get("file_id") is None:
        return None
    return publish_file(conn, client, file_id=report["file_id"], cfg=cfg, deadline=deadline)


def publish_pending(
    conn: Connection,
    client: Any,
    *,
    cfg: EventSettings | None = None,
    deadline: float | None = None,
    min_age_s: float | None = None,
) -> PublishResult:
    """Publish every pending row at least min_age_s old (default EVENTS_SWEEP_MIN_AGE_S),
    oldest first: the sweeper. Rows that fail are tried again on the next sweep."""
    publisher = Publisher(conn, client, cfg)
    age = publisher.cfg.sweep_min_age_s if min_age_s is None else min_age_s
    return publisher.run(sql.CLAIM_PENDING, {"min_age_s": float(age)}, deadline)


def outbox_stats(conn: Connection) -> tuple[int, float]:
    """(pending rows, age in seconds of the oldest pending row; 0 when none)."""
    with conn.cursor() as cur:
        cur.execute(sql.PENDING_STATS)
        count, age = cur.fetchone()  # type: ignore[misc]
    conn.commit()
    return int(count), float(age)


def list_outbox(
    conn: Connection,
    *,
    card_id: str | None = None,
    since: datetime | None = None,
    pending: bool = False,
) -> Iterator[dict[str, Any]]:
    """The outbox oldest first, as `cardstatus events` prints it: one dict per event
    {event_id, detail_type, detail, published_at (ISO or None)}. `since` is on created_at."""
    with conn.cursor(name="cardstatus_events") as cur:  # server-side: any outbox size
        cur.itersize = 2000
        cur.execute(sql.LIST_EVENTS, {"card_id": card_id, "since": since, "pending": pending})
        for event_id, detail, published_at, detail_type in cur:
            yield {
                "event_id": event_id,
                "detail_type": detail_type or DETAIL_TYPE,
                "detail": detail,
                "published_at": published_at.isoformat() if published_at else None,
            }
    conn.commit()
