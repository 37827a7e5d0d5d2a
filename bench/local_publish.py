"""`python -m bench.local_publish`: how long `make run` takes to publish a big file's events.

A file of N changed cards leaves N rows in `status_outbox`. This fills the outbox of a fresh
migrated database with N pending rows of one file (server-side, no ingestion run), creates the
local bus in moto exactly as `cardstatus local` does, and publishes them with the real
publisher (`cardstatus.events.publish_pending`, what the sweeper runs; ingest's own publish is
the same loop) through the client the local stack gives the handlers:

* in-process   InProcessBus: moto's EventBridge backend called directly (what `make run` uses);
* http         a botocore client to the moto server over HTTP (what it used before), timed on
               a sample of --http-sample rows only (it runs at a few hundred events/s).

Prints the wall time, events/s and the terminal lines the printer would show. One PostgreSQL:
embedded unless DATABASE_URL is set. The local stack's goal: 150,000 events in under a minute.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import os
import time
import uuid
from contextlib import redirect_stdout
from typing import Any

import psycopg2

from bench.__main__ import postgres_server
from cardstatus.migrate import apply_migrations

FILL = """
INSERT INTO status_outbox (event_id, card_id, card_version, detail)
SELECT gen_random_uuid(), 'BIG' || lpad(i::text, 7, '0'), 1,
       jsonb_build_object('card_id', 'BIG' || lpad(i::text, 7, '0'), 'status', 'DELIVERED',
                          'previous_status', NULL, 'status_at', '2026-12-06T08:00:00Z',
                          'reason', NULL, 'partner', 'acme', 'file_id', %(file_id)s,
                          'card_version', 1, 'emitted_at', '2026-12-06T08:00:01Z')
FROM generate_series(1, %(rows)s) i
"""


def _fill(url: str, rows: int, file_id: int) -> None:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("UPDATE status_outbox SET published_at = now()")
            cur.execute(FILL, {"rows": rows, "file_id": file_id})
        conn.commit()
    finally:
        conn.close()


def _drain(url: str, client: Any, cfg: Any, budget_s: float) -> tuple[int, float, int]:
    """(published, seconds, pending left) publishing until nothing is pending or budget_s."""
    from cardstatus import events

    conn = psycopg2.connect(url)
    published = 0
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < budget_s:
            result = events.publish_pending(
                conn, client, cfg=cfg, deadline=time.monotonic() + 50, min_age_s=0
            )
            published += result.published
            if result.error:
                raise RuntimeError(result.error)
            if not result.timed_out:
                break
        took = time.perf_counter() - started
        pending, _ = events.outbox_stats(conn)
    finally:
        conn.close()
    return published, took, pending


def run(url: str, rows: int, http_sample: int) -> dict[str, Any]:
    import boto3
    from moto.server import ThreadedMotoServer

    from cardstatus.config import event_settings
    from cardstatus_dev.local_events import LOCAL_BUS, EventPrinter, InProcessBus, create_local_bus

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:

        def client(service: str) -> Any:
            return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1")

        create_local_bus(client)
        cfg = dataclasses.replace(event_settings(), bus_name=LOCAL_BUS)
        results: dict[str, Any] = {"rows": rows}

        _fill(url, rows, file_id=25)
        bus = InProcessBus()
        published, took, pending = _drain(url, bus, cfg, budget_s=600)
        printed = io.StringIO()
        with redirect_stdout(printed):
            EventPrinter(bus).flush(quiet_s=0)
        results["in_process"] = {
            "published": published,
            "seconds": round(took, 1),
            "events_per_s": round(published / took),
            "pending_after": pending,
            "terminal_lines": printed.getvalue().splitlines(),
        }

        _fill(url, http_sample, file_id=26)
        published, took, pending = _drain(url, client("events"), cfg, budget_s=120)
        results["http"] = {
            "published": published,
            "seconds": round(took, 1),
            "events_per_s": round(published / took),
            "pending_after": pending,
            "minutes_for_rows": round(rows / (published / took) / 60, 1),
        }
        return results
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=150_000)
    parser.add_argument("--http-sample", type=int, default=3_000)
    args = parser.parse_args(argv)
    with postgres_server() as (admin_url, description):
        from cardstatus_dev.database import drop_database, ensure_database

        name = f"bench_publish_{uuid.uuid4().hex[:8]}"
        url = ensure_database(admin_url, name)
        try:
            conn = psycopg2.connect(url)
            apply_migrations(conn)
            conn.close()
            results = run(url, args.rows, args.http_sample)
        finally:
            drop_database(admin_url, name)
    results["database"] = description
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
