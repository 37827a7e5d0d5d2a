"""API handler latency, in-process and warm, with N cards (targets in README "Domain rules":
p50 <= 1 ms, p99 <= 5 ms).

    python -m bench.api_bench [--cards 1000000] [--iterations 5000] [--database-url URL]
                              [--as-owner] [--reader] [--relay [--relay-delay-ms MS]]

Without --database-url / $DATABASE_URL an embedded PostgreSQL is started in a temporary
directory. A fresh database is created, migrated and seeded with generate_series (every
7 consecutive cards share a phone; 1-2 events per card; phones hashed by the 0013 backfill),
then each lookup is timed through (every other one without its lookup-audit line, so
`audit_p50_ms` is what the audit adds at p50, measured in the same run: the line the api
prints; the audit function that appends it to the table runs elsewhere, in AWS as locally off
the lookup's path, so it is not loaded here; the card-id + phone lookup keeps its budget count)
`functions/api/app.py:handler` with API Gateway events (Powertools routing, validation,
logging and metrics included; log and metric lines go to /dev/null). Also reports the cold
import time of the handler module (fresh interpreter).

The handler connects as the api's own login role, `cardstatus_api`, as in AWS: its grants and
role-level settings (read-only by default, synchronous_commit=off for its budget counts,
0023), when the server lets it in without a password (the embedded one does); `--as-owner`
keeps the URL's own user. `--reader` also sets DATABASE_READ_URL to the
same database, so that lookups run on a second connection (README "Database connections").
`--relay` puts a TCP relay (bench/relay.py) between the handler and the server: one more hop,
as RDS Proxy adds in AWS, optionally holding each chunk `--relay-delay-ms` each way; the
report's `round_trip` is `SELECT 1` as the handler's connection then sees it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg2

ROOT = Path(__file__).resolve().parent.parent

SEED_SQL = """
INSERT INTO ingested_file (id, object_key, partner, outcome, report, started_at)
VALUES (1, 'bench.csv', 'bench', 'applied', '{}', now());

INSERT INTO card (card_id, status, status_at, phone, phone_at, phone_rank, picked_up_at,
                  delivered_at, exception_count)
SELECT 'B' || lpad(g::text, 9, '0'),
       CASE WHEN g %% 3 = 0 THEN 'PICKED_UP' ELSE 'DELIVERED' END::card_status,
       timestamptz '2023-01-01 00:00Z' + g * interval '1 minute',
       '+9715' || lpad(((g / 7) %% 100000000)::text, 8, '0'),
       timestamptz '2023-01-01 00:00Z' + g * interval '1 minute',
       'PICKED_UP',
       timestamptz '2023-01-01 00:00Z' + g * interval '1 minute' - interval '1 day',
       CASE WHEN g %% 3 = 0 THEN NULL
            ELSE timestamptz '2023-01-01 00:00Z' + g * interval '1 minute' END,
       0
FROM generate_series(1, %(n)s) AS g;

INSERT INTO card_event (card_id, status, occurred_at, phone, partner, source_file_id, source_line)
SELECT card_id, 'PICKED_UP'::card_status, picked_up_at, phone, 'bench', 1, 1 FROM card
UNION ALL
SELECT card_id, 'DELIVERED'::card_status, delivered_at, phone, 'bench', 1, 2 FROM card
WHERE delivered_at IS NOT NULL;
"""


def card_id(g: int) -> str:
    return "B" + str(g).zfill(9)


def national_phone(g: int) -> str:
    return "5" + str((g // 7) % 100000000).zfill(8)  # 9 digits, no country code


class BenchContext:
    """The Lambda context the benchmarks hand to the api handler in-process."""

    function_name = "cardstatus-api-bench"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:local:000000000000:function:cardstatus-api-bench"
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def _prepare_database(admin_url: str, n: int) -> str:
    from cardstatus.migrate import apply_migrations
    from cardstatus.phonebackfill import backfill_phones
    from cardstatus_dev.database import ensure_database

    name = f"cardstatus_apibench_{uuid.uuid4().hex[:8]}"
    url = ensure_database(admin_url, name)
    conn = psycopg2.connect(url)
    try:
        apply_migrations(conn)
        conn.autocommit = True
        started = time.perf_counter()
        with conn.cursor() as cur:
            cur.execute("SET synchronous_commit = off")
            cur.execute(SEED_SQL, {"n": n})
        conn.autocommit = False
        backfill_phones(conn, batch=50_000)  # the numbers become hashes (README "Privacy")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE card")
            cur.execute("VACUUM ANALYZE card_event")
        print(f"seeded {n:,} cards in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    finally:
        conn.close()
    return name


def _cold_import_ms(database_url: str, runs: int = 5) -> list[float]:
    code = (
        f"import sys, time; sys.path.insert(0, {str(ROOT)!r}); t = time.perf_counter(); "
        "import functions.api.app; print((time.perf_counter() - t) * 1000)"
    )
    env = {**os.environ, "DATABASE_URL": database_url, "POWERTOOLS_TRACE_DISABLED": "true"}
    out = []
    for _ in range(runs):
        result = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        out.append(float(result.stdout.strip().splitlines()[-1]))
    return out


def _percentiles(samples_ns: list[int]) -> dict[str, float]:
    ms = sorted(s / 1e6 for s in samples_ns)
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return {"p50": round(q[49], 3), "p99": round(q[98], 3), "max": round(ms[-1], 3)}


def _relayed(url: str, delay_ms: float) -> tuple[str, subprocess.Popen[str]]:
    """`url` through a relay process (bench/relay.py) to the same server's Unix socket."""
    from psycopg2.extensions import make_dsn, parse_dsn

    parts = parse_dsn(url)
    socket_path = f"{parts['host']}/.s.PGSQL.{parts.get('port', '5432')}"
    delay = str(delay_ms)
    relay = subprocess.Popen(
        [sys.executable, "-m", "bench.relay", "--to-socket", socket_path, "--delay-ms", delay],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert relay.stdout is not None
    port = relay.stdout.readline().strip()
    return make_dsn(url, host="127.0.0.1", port=port), relay


def _round_trip(conn: Any, iterations: int) -> dict[str, float]:
    """`SELECT 1` on the handler's own connection: what one round trip costs on this path."""
    samples = []
    with conn.cursor() as cur:
        for _ in range(iterations):
            t0 = time.perf_counter_ns()
            cur.execute("SELECT 1")
            cur.fetchall()
            samples.append(time.perf_counter_ns() - t0)
    return _percentiles(samples)


def run(
    admin_url: str,
    n: int,
    iterations: int,
    keep: bool,
    *,
    as_owner: bool,
    reader: bool,
    relay_delay_ms: float | None = None,
) -> dict[str, Any]:
    from bench.scale import as_api_role
    from cardstatus import config
    from cardstatus_dev.database import drop_database, with_database
    from cardstatus_dev.serve import build_event, load_api_module

    dbname = _prepare_database(admin_url, n)
    owner_url = with_database(admin_url, dbname)
    url = owner_url if as_owner else as_api_role(owner_url)
    relay = None
    if relay_delay_ms is not None:
        url, relay = _relayed(url, relay_delay_ms)
    os.environ["DATABASE_URL"] = url
    if reader:
        os.environ["DATABASE_READ_URL"] = url
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "cardstatus-bench")
    config.reset_settings_cache()
    try:
        app = load_api_module(audit_subscription=False)  # the api function alone
        app.DB.reset_settings(None)
        devnull = open(os.devnull, "w")  # noqa: SIM115
        app.logger.registered_handler.setStream(devnull)
        rng = random.Random(42)

        def pick() -> int:
            return rng.randint(1, n)

        lookups: dict[str, Callable[[], dict[str, Any]]] = {
            "get_card_status?card_id": lambda: build_event(
                "GET", f"/get_card_status?card_id={card_id(pick())}"
            ),
            "get_card_status?user_phone": lambda: build_event(
                "GET", f"/get_card_status?user_phone={national_phone(pick())}"
            ),
            "get_card_status?card_id&user_phone": lambda: _both(build_event, pick()),
            "cards/search {user_phone}": lambda: build_event(
                "POST",
                "/cards/search",
                [("Content-Type", "application/json")],
                json.dumps({"user_phone": national_phone(pick())}).encode(),
            ),
            "cards/{card_id}": lambda: build_event("GET", f"/cards/{card_id(pick())}"),
            "cards?user_phone": lambda: build_event(
                "GET", f"/cards?user_phone=0{national_phone(pick())}"
            ),
            "get_card_status (404)": lambda: build_event(
                "GET", f"/get_card_status?card_id=NOPE{pick()}"
            ),
        }
        results: dict[str, Any] = {}
        ctx = BenchContext()
        with contextlib.redirect_stdout(devnull):  # EMF metric lines
            for name, make_event in lookups.items():
                events = [make_event() for _ in range(iterations)]
                for event in events[: min(200, iterations)]:  # warm-up
                    app.handler(event, ctx)
                samples = []
                cpu = []
                unaudited = []  # every other lookup without its audit line (README "Privacy")
                statuses: dict[int, int] = {}
                lines = app.audit_lines
                for i, event in enumerate(events):
                    skip_audit = i % 2 == 1
                    if skip_audit:  # the lookup without printing its audit line
                        lines.write = lambda _line: None
                    t0, c0 = time.perf_counter_ns(), time.process_time_ns()
                    response = app.handler(event, ctx)
                    elapsed = time.perf_counter_ns() - t0
                    if skip_audit:
                        del lines.write  # the class's method again
                        unaudited.append(elapsed)
                        continue
                    cpu.append(time.process_time_ns() - c0)
                    samples.append(elapsed)
                    statuses[response["statusCode"]] = statuses.get(response["statusCode"], 0) + 1
                # Wall time is what a caller sees; the handler's own CPU time (this process,
                # not PostgreSQL) tells how much of it is Python when the machine is busy.
                without = _percentiles(unaudited)
                results[name] = {
                    **_percentiles(samples),
                    "cpu_p50": _percentiles(cpu)["p50"],
                    "p50_without_audit": without["p50"],
                    "audit_p50_ms": round(_percentiles(samples)["p50"] - without["p50"], 3),
                    "statuses": statuses,
                }
        results["load_average"] = [round(x, 2) for x in os.getloadavg()]
        results["cpus"] = os.cpu_count()
        results["connection"] = _connection_facts(app, reader)
        results["round_trip"] = _round_trip(app._connection(), iterations)
        results["relay_delay_ms"] = relay_delay_ms
        app.DB.discard()
        results["cold_import_ms"] = sorted(round(x, 1) for x in _cold_import_ms(owner_url))
        return {"cards": n, "iterations": iterations, "results": results}
    finally:
        if relay is not None:
            relay.terminate()
            relay.wait()
        if not keep:
            drop_database(admin_url, dbname)


def _connection_facts(app: Any, reader: bool) -> dict[str, Any]:
    """Who the lookups and the audit rows ran as, and whether commits waited for the flush."""
    with app.DB.get().cursor() as cur:
        cur.execute("SELECT current_user, current_setting('synchronous_commit')")
        user, synchronous_commit = cur.fetchone()
    return {
        "user": user,
        "synchronous_commit": synchronous_commit,
        "reader": reader and app.DB.read() is not app.DB.get(),
    }


def _both(build_event: Any, g: int) -> dict[str, Any]:
    return build_event(
        "GET", f"/get_card_status?card_id={card_id(g)}&user_phone={national_phone(g)}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=1_000_000)
    parser.add_argument("--iterations", type=int, default=5_000)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument(
        "--as-owner", action="store_true", help="connect as the URL's user, not cardstatus_api"
    )
    parser.add_argument(
        "--reader", action="store_true", help="lookups on a second connection (DATABASE_READ_URL)"
    )
    parser.add_argument(
        "--relay", action="store_true", help="through a TCP relay, one more hop (bench/relay.py)"
    )
    parser.add_argument("--relay-delay-ms", type=float, default=0.0)
    args = parser.parse_args(argv)

    server = None
    admin_url = args.database_url
    if not admin_url:
        from cardstatus_dev.database import start_embedded_server

        tmp = Path(tempfile.mkdtemp(prefix="cardstatus-apibench-"))
        server = start_embedded_server(tmp / "pgdata", cleanup_mode="delete")
        admin_url = server.get_uri()
    try:
        report = run(
            admin_url,
            args.cards,
            args.iterations,
            args.keep,
            as_owner=args.as_owner,
            reader=args.reader,
            relay_delay_ms=args.relay_delay_ms if args.relay else None,
        )
    finally:
        if server is not None:
            server.cleanup()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
