"""`python -m bench.scale`: the service at 10M cards / 30M events (SPEC §6 "Scale"), or at any
size given with `--cards` (repeat it for several sizes side by side: `--cards 1000000
--cards 10000000`). Not part of `make test` or `make bench` (a 10M build takes a while).

Per size, in a fresh database migrated with the repository's migrations (whatever schema
main has: the same tables, indexes, constraints, grants as a deployed database):

1. **build**: cards and their events generated server-side (generate_series, one INSERT …
   SELECT per table, which is COPY speed without the client round trip) into the migrated
   tables, whose secondary indexes are dropped first and re-created afterwards from their own
   definitions (`pg_get_indexdef`, so the schema ends exactly as migrated); then VACUUM
   ANALYZE. Shape: 3 events per card (PICKED_UP, DELIVERY_EXCEPTION, DELIVERED; 2% of the
   cards stop before DELIVERED: the stuck cards), 3 cards per phone, three partners (acme
   60%, speedy 39.9%, rare 0.1%; a card's owner is its partner), files of 100k rows with 0.5%
   rejected rows, one file_card_change row per card. Phones are stored as ingestion stores
   them: keyed hash, key version, last 4 digits (hashed in Python with the local key, then
   COPYed and joined). The time it took is reported.
2. **lookups** in-process through `functions/api/app.py:handler` (Powertools routing,
   validation, logs, metrics), warm: by card id, by phone, card id + phone, POST
   /cards/search, /cards/{id}, /cards?user_phone=: p50/p99 of wall time and the handler's
   CPU time.
3. **ops routes**: /files (first page and a later page), /files/{id}, /files/{id}/rejects,
   /stuck_cards with and without a partner filter (a common and a rare partner),
   /partners when the api has it: p50/p99, plus EXPLAIN of each ops statement (no Seq Scan
   of a large table allowed: reported as `seq_scans`).
4. **ingest** of a 100k-row generated partner file (`cardstatus ingest`, a child process)
   into this database, against COPY into the same tables of the rows ingestion stores for a
   twin file (same shape, other card ids and phones; ingested into a scratch database and
   dumped), both starting cold from a CHECKPOINT: `ratio` = ingest rows/s ÷ COPY rows/s. Also
   the earlier figure, COPY of the very rows the ingest stored (dumped, deleted, COPYed back),
   which runs on the index pages the ingest has just warmed (`ratio_ingest_copy_warm`).
5. **void** of that file (`cardstatus.void.void_file`): seconds.
6. **capacity**: k = 1, 2, 4, 8, 16, 32 threads, each with its own connection, run the real
   lookup statements (by card id, by phone; half each) for `--capacity-seconds`; lookups/s,
   p99, and lookups per second per database CPU core (lookups ÷ the CPU seconds the
   PostgreSQL backends used, from /proc: what one core of the database serves when the
   client is not the limit).

Prints one JSON document (and `--out FILE` writes it). One PostgreSQL: `--database-url` /
$DATABASE_URL (an admin URL; a database per size is created and dropped unless `--keep`),
else an embedded one in a temporary directory. A 10M build takes a while: `--build-only
--keep` builds and keeps it (its name is printed), `--reuse NAME` measures an existing one
(a built database is only changed by step 4/5, which ingest a file and void it again, and by
the repository's newer migrations, which it applies first, with the backfills a deploy runs).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg2

from bench.api_bench import BenchContext

ROOT = Path(__file__).resolve().parent.parent
CARDSTATUS = Path(sys.executable).with_name("cardstatus")
FILE_ROWS = 100_000  # rows per generated file in the build
T0 = "2025-01-01 00:00:00+00"
BIG_TABLES = (
    "card",
    "card_event",
    "event_copy",
    "rejected_row",
    "status_outbox",
    "file_card_change",
)
PARTNERS = ("acme", "speedy", "rare")
K_LEVELS = (1, 2, 4, 8, 16, 32)

# One statement per table; %(n)s cards, card i (0-based) is 'S' || lpad(i, 9, '0'), phone
# '+97155' || lpad(i / 3, 7, '0') (3 cards per phone), events at T0 + i seconds (+0/1/2 days),
# card i's events all in file 1 + (3 i) / FILE_ROWS, line 2 + (3 i) % FILE_ROWS (+ 0/1/2).
BUILD_FILES = """
INSERT INTO ingested_file (id, object_key, sha256, meaning_key, partner, outcome, rows_total,
                           rows_accepted, rows_rejected, report, started_at, finished_at)
SELECT f, 'incoming/acme/scale ' || f || ' - export.csv', md5(f::text), 'scale-' || f, 'acme',
       'applied', %(file_rows)s, %(file_rows)s - %(file_rows)s / 200, %(file_rows)s / 200,
       jsonb_build_object('file_id', f), %(t0)s::timestamptz + f * interval '1 hour',
       %(t0)s::timestamptz + f * interval '1 hour' + interval '1 minute'
FROM generate_series(1, %(files)s) f;
SELECT setval('ingested_file_id_seq', %(files)s);
"""

BUILD_REJECTS = """
INSERT INTO rejected_row (file_id, line, reason)
SELECT f, 2 + l * 200, 'card_id: invalid'
FROM generate_series(1, %(files)s) f, generate_series(0, %(file_rows)s / 200 - 1) l
"""

_EVENTS = """
SELECT 'S' || lpad(i::text, 9, '0') AS card_id, s.status::card_status AS status,
       %(t0)s::timestamptz + i * interval '1 second' + s.d * interval '1 day' AS occurred_at,
       ph.phone_hash, ph.phone_key, ph.phone_last4,
       CASE WHEN s.d = 1 THEN 'User not available' END AS comment,
       CASE WHEN s.d = 1 THEN 'recipient_unavailable' END AS reason,
       CASE WHEN i %% 1000 = 7 THEN 'rare' WHEN i %% 5 < 3 THEN 'acme' ELSE 'speedy' END AS partner,
       1 + (3 * i) / %(file_rows)s AS file_id, 2 + (3 * i) %% %(file_rows)s + s.d AS line
FROM generate_series(0, %(n)s - 1) i
JOIN scale_phone ph ON ph.p = i / 3,
     (VALUES ('PICKED_UP', 0), ('DELIVERY_EXCEPTION', 1), ('DELIVERED', 2)) s(status, d)
WHERE s.d < 2 OR i %% 50 <> 0
"""

# Phones are stored as ingestion stores them (README "Privacy"): the keyed hash, its key
# version and the last 4 digits, computed in Python (cardstatus.phonehash) for each of the
# n / 3 numbers and COPYed into this table, which the statements below join.
PHONE_MAP = """
CREATE UNLOGGED TABLE scale_phone (
    p integer PRIMARY KEY, phone_hash text NOT NULL, phone_key smallint NOT NULL,
    phone_last4 text NOT NULL)
"""

BUILD_EVENT_COPY = f"""
INSERT INTO event_copy (file_id, card_id, status, occurred_at, line, phone_hash, phone_key,
                        phone_last4, comment, reason, partner_row_id, partner)
SELECT file_id, card_id, status, occurred_at, line, phone_hash, phone_key, phone_last4,
       comment, reason, NULL, partner
FROM ({_EVENTS}) e
"""

BUILD_CARD_EVENT = f"""
INSERT INTO card_event (card_id, status, occurred_at, comment, reason, phone_hash, phone_key,
                        phone_last4, partner, source_file_id, source_line, partner_row_id)
SELECT card_id, status, occurred_at, comment, reason, phone_hash, phone_key, phone_last4,
       partner, file_id, line, NULL
FROM ({_EVENTS}) e
"""

# The projection, as ingestion computes it (the latest event is the last of the three; all of
# a card's events are its partner's, so its status_partner (0024) is its owner too).
BUILD_CARD = """
INSERT INTO card (card_id, status, status_at, comment, reason, phone_hash, phone_key,
                  phone_last4, phone_at, phone_rank, picked_up_at, delivered_at, returned_at,
                  exception_count, version, owner_partner, first_event_at, first_event_rank,
                  status_partner)
SELECT 'S' || lpad(i::text, 9, '0'),
       CASE WHEN i %% 50 = 0 THEN 'DELIVERY_EXCEPTION' ELSE 'DELIVERED' END::card_status,
       %(t0)s::timestamptz + i * interval '1 second'
           + CASE WHEN i %% 50 = 0 THEN interval '1 day' ELSE interval '2 days' END,
       CASE WHEN i %% 50 = 0 THEN 'User not available' END,
       CASE WHEN i %% 50 = 0 THEN 'recipient_unavailable' END,
       ph.phone_hash, ph.phone_key, ph.phone_last4,
       %(t0)s::timestamptz + i * interval '1 second'
           + CASE WHEN i %% 50 = 0 THEN interval '1 day' ELSE interval '2 days' END,
       CASE WHEN i %% 50 = 0 THEN 'DELIVERY_EXCEPTION' ELSE 'DELIVERED' END::card_status,
       %(t0)s::timestamptz + i * interval '1 second',
       CASE WHEN i %% 50 = 0 THEN NULL
            ELSE %(t0)s::timestamptz + i * interval '1 second' + interval '2 days' END,
       NULL, 1, 1,
       CASE WHEN i %% 1000 = 7 THEN 'rare' WHEN i %% 5 < 3 THEN 'acme' ELSE 'speedy' END,
       %(t0)s::timestamptz + i * interval '1 second', 'PICKED_UP',
       CASE WHEN i %% 1000 = 7 THEN 'rare' WHEN i %% 5 < 3 THEN 'acme' ELSE 'speedy' END
FROM generate_series(0, %(n)s - 1) i
JOIN scale_phone ph ON ph.p = i / 3
"""

# What each file changed (GET /files/{id}/cards): one 'apply' row per card, its events' file.
BUILD_FILE_CARD_CHANGE = """
INSERT INTO file_card_change (file_id, card_id, action, status_before, status_after, changed_at)
SELECT 1 + (3 * i) / %(file_rows)s, 'S' || lpad(i::text, 9, '0'), 'apply', NULL,
       CASE WHEN i %% 50 = 0 THEN 'DELIVERY_EXCEPTION' ELSE 'DELIVERED' END::card_status,
       %(t0)s::timestamptz + i * interval '1 second'
FROM generate_series(0, %(n)s - 1) i
"""


def card_id(i: int) -> str:
    return "S" + str(i).zfill(9)


def national_phone(i: int) -> str:
    return "55" + str(i // 3).zfill(7)  # 9 digits without the country code (AE)


def _percentiles(samples_ns: list[int]) -> dict[str, float]:
    ms = sorted(s / 1e6 for s in samples_ns)
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return {"p50": round(q[49], 3), "p99": round(q[98], 3), "max": round(ms[-1], 3)}


# --- build --------------------------------------------------------------------------------


def _secondary_indexes(cur: Any) -> list[tuple[str, str]]:
    """(name, definition) of the big tables' indexes that back no constraint."""
    cur.execute(
        """
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
        FROM pg_index i
        WHERE i.indrelid = ANY (%s::regclass[])
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
        ORDER BY 1
        """,
        ([t for t in BIG_TABLES],),
    )
    return [(name, definition) for name, definition in cur.fetchall()]


def _fill_phone_map(cur: Any, n: int) -> None:
    """scale_phone: number p = '+97155' || lpad(p, 7, '0') as ingestion would store it."""
    from cardstatus.phonehash import hash_phone, last4

    cur.execute(PHONE_MAP)
    chunk = 200_000
    for start in range(0, (n + 2) // 3, chunk):
        lines = []
        for p in range(start, min(start + chunk, (n + 2) // 3)):
            e164 = "+97155" + str(p).zfill(7)
            digest, version = hash_phone(e164)
            lines.append(f"{p}\t{digest}\t{version}\t{last4(e164)}\n")
        cur.copy_expert("COPY scale_phone FROM STDIN", io.StringIO("".join(lines)))
    cur.execute("ANALYZE scale_phone")


def build(url: str, n: int) -> dict[str, Any]:
    """Fill the migrated database at `url` with n cards (see the module docstring)."""
    files = (3 * n + FILE_ROWS - 1) // FILE_ROWS
    params = {"n": n, "t0": T0, "file_rows": FILE_ROWS, "files": files}
    timings: dict[str, float] = {}
    started = time.perf_counter()
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SET maintenance_work_mem = '1GB'")
            cur.execute("SET work_mem = '256MB'")
            cur.execute("SET synchronous_commit = off")
            indexes = _secondary_indexes(cur)
            for name, _ in indexes:
                cur.execute(f"DROP INDEX {name}")
            t = time.perf_counter()
            _fill_phone_map(cur, n)
            timings["phone_hash"] = round(time.perf_counter() - t, 1)
            for step, statement in (
                ("files", BUILD_FILES),
                ("rejected_row", BUILD_REJECTS),
                ("event_copy", BUILD_EVENT_COPY),
                ("card_event", BUILD_CARD_EVENT),
                ("card", BUILD_CARD),
                ("file_card_change", BUILD_FILE_CARD_CHANGE),
            ):
                t = time.perf_counter()
                cur.execute(statement, params)
                timings[step] = round(time.perf_counter() - t, 1)
                print(f"  {step}: {timings[step]} s", file=sys.stderr, flush=True)
            cur.execute("DROP TABLE scale_phone")
            t = time.perf_counter()
            for _, definition in indexes:
                cur.execute(definition)
            timings["secondary_indexes"] = round(time.perf_counter() - t, 1)
            t = time.perf_counter()
            cur.execute("VACUUM ANALYZE")
            timings["vacuum_analyze"] = round(time.perf_counter() - t, 1)
            cur.execute("SELECT count(*) FROM card_event")
            events = cur.fetchone()[0]
            cur.execute("SELECT pg_database_size(current_database())")
            size = cur.fetchone()[0]
    finally:
        conn.close()
    return {
        "cards": n,
        "events": int(events),
        "files": files,
        "seconds": round(time.perf_counter() - started, 1),
        "steps_s": timings,
        "indexes_rebuilt": [name for name, _ in indexes],
        "database_gb": round(size / 1e9, 2),
    }


# --- in-process api -------------------------------------------------------------------------


def _time_route(
    app: Any, make_event: Callable[[], dict[str, Any]], iterations: int, budget_s: float = 1e9
) -> dict:
    """p50/p99 over `iterations` calls after a warm-up, or over the calls that fit in
    `budget_s` seconds (at least 10) for a slow route."""
    ctx = BenchContext()
    events = [make_event() for _ in range(iterations)]
    for event in events[: min(200, iterations // 5)]:
        app.handler(event, ctx)
    wall: list[int] = []
    cpu: list[int] = []
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + budget_s
    for event in events:
        if len(wall) >= 10 and time.perf_counter() > deadline:
            break
        t0, c0 = time.perf_counter_ns(), time.process_time_ns()
        response = app.handler(event, ctx)
        cpu.append(time.process_time_ns() - c0)
        wall.append(time.perf_counter_ns() - t0)
        statuses[response["statusCode"]] = statuses.get(response["statusCode"], 0) + 1
    return {
        **_percentiles(wall),
        "cpu_p50": _percentiles(cpu)["p50"],
        "calls": len(wall),
        "statuses": statuses,
    }


def api_routes(url: str, n: int, iterations: int) -> dict[str, Any]:
    from cardstatus import config
    from cardstatus_dev.serve import build_event, load_api_module

    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "cardstatus-bench")
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    config.reset_settings_cache()
    app = load_api_module(audit_subscription=False)  # the api function alone, as in AWS
    app.DB.reset_settings(None)
    devnull = open(os.devnull, "w")  # noqa: SIM115
    app.logger.registered_handler.setStream(devnull)
    rng = random.Random(7)

    def pick() -> int:
        return rng.randrange(n)

    def search() -> dict[str, Any]:
        body = json.dumps({"user_phone": national_phone(pick())}).encode()
        return build_event("POST", "/cards/search", [("Content-Type", "application/json")], body)

    def both() -> dict[str, Any]:
        i = pick()
        return build_event(
            "GET", f"/get_card_status?card_id={card_id(i)}&user_phone={national_phone(i)}"
        )

    lookups: dict[str, Callable[[], dict[str, Any]]] = {
        "get_card_status?card_id": lambda: build_event(
            "GET", f"/get_card_status?card_id={card_id(pick())}"
        ),
        "get_card_status?user_phone": lambda: build_event(
            "GET", f"/get_card_status?user_phone={national_phone(pick())}"
        ),
        "get_card_status?card_id&user_phone": both,
        "POST /cards/search (phone)": search,
        "cards/{card_id}": lambda: build_event("GET", f"/cards/{card_id(pick())}"),
        "cards?user_phone": lambda: build_event(
            "GET", f"/cards?user_phone=0{national_phone(pick())}"
        ),
    }
    files = (3 * n + FILE_ROWS - 1) // FILE_ROWS
    cursor = _files_cursor(app, build_event)
    ops: dict[str, Callable[[], dict[str, Any]]] = {
        "files (first page)": lambda: build_event("GET", "/files?limit=50"),
        "files (second page)": lambda: build_event("GET", f"/files?limit=50&cursor={cursor}"),
        "files?partner=acme": lambda: build_event("GET", "/files?partner=acme&limit=50"),
        "files/{id}": lambda: build_event("GET", f"/files/{1 + rng.randrange(files)}"),
        "files/{id}/rejects": lambda: build_event(
            "GET", f"/files/{1 + rng.randrange(files)}/rejects?limit=100"
        ),
        "stuck_cards": lambda: build_event(
            "GET", "/stuck_cards?status=DELIVERY_EXCEPTION&limit=50"
        ),
        "stuck_cards?partner=acme": lambda: build_event(
            "GET", "/stuck_cards?status=DELIVERY_EXCEPTION&partner=acme&limit=50"
        ),
        "stuck_cards?partner=rare": lambda: build_event(
            "GET", "/stuck_cards?status=DELIVERY_EXCEPTION&partner=rare&limit=50"
        ),
    }
    if any("/partners" in str(getattr(r, "path", "")) for r in _routes(app)):
        ops["partners"] = lambda: build_event("GET", "/partners")
    out: dict[str, Any] = {"lookups": {}, "ops": {}}
    with contextlib.redirect_stdout(devnull):  # EMF metric lines
        for name, make in lookups.items():
            out["lookups"][name] = _time_route(app, make, iterations)
        for name, make in ops.items():
            # 100 calls each at the default, at most ~30 s: /partners reads every stuck card
            out["ops"][name] = _time_route(app, make, max(30, iterations // 30), budget_s=30)
    app.DB.discard()
    return out


def _routes(app: Any) -> list[Any]:
    return list(getattr(app.app, "_static_routes", [])) + list(
        getattr(app.app, "_dynamic_routes", [])
    )


def _files_cursor(app: Any, build_event: Any) -> str:
    with contextlib.redirect_stdout(open(os.devnull, "w")):
        response = app.handler(build_event("GET", "/files?limit=50"), BenchContext())
    return str(json.loads(response["body"]).get("next_cursor") or "")


def explain_ops(url: str) -> dict[str, Any]:
    """EXPLAIN of each ops statement with typical parameters; Seq Scans of big tables."""
    from cardstatus.sql import filecards, partners
    from cardstatus.sql import ops as sql

    base = {
        "partner": None,
        "outcome": None,
        "since": None,
        "after_at": None,
        "after_id": None,
        "has_rejects": None,
    }
    page = {"action": None, "after_action": None, "after_card": None, "limit": 101}
    statements: dict[str, tuple[str, dict[str, Any]]] = {
        "FILES": (sql.FILES, {**base, "limit": 51}),
        "FILES partner": (sql.FILES, {**base, "partner": "acme", "limit": 51}),
        "FILES has_rejects": (sql.FILES, {**base, "has_rejects": True, "limit": 51}),
        "REJECTS": (sql.REJECTS, {"file_id": 3, "after_line": None, "limit": 101}),
        "FILE_CARDS": (filecards.FILE_CARDS, {"file_id": 3, **page}),
        "STUCK_BY_PARTNER": (partners.STUCK_BY_PARTNER, {"cutoff": "2030-01-01T00:00:00Z"}),
    }
    for partner in (None, "acme", "rare"):
        stuck = {
            "status": "DELIVERY_EXCEPTION",
            "older_than_s": 86400,
            "after_at": None,
            "after_id": None,
            "partner": partner,
            "limit": 51,
        }
        query = sql.STUCK_CARDS if partner is None else sql.STUCK_CARDS_OF_PARTNER
        statements[f"STUCK_CARDS partner={partner}"] = (query, stuck)
        count = sql.STUCK_COUNT if partner is None else sql.STUCK_COUNT_OF_PARTNER
        statements[f"STUCK_COUNT partner={partner}"] = (count, {**stuck, "cap": 10_001})
    out: dict[str, Any] = {}
    with contextlib.closing(psycopg2.connect(url)) as conn, conn.cursor() as cur:
        for name, (query, params) in statements.items():
            cur.execute("EXPLAIN (ANALYZE, BUFFERS, TIMING OFF) " + query, params)
            plan = [row[0] for row in cur.fetchall()]
            seq = [line.strip() for line in plan if "Seq Scan on" in line]
            out[name] = {
                "seq_scans": [s for s in seq if any(f" {t} " in s + " " for t in BIG_TABLES)],
                "plan": plan,
            }
        conn.rollback()
    return out


# --- ingest and void ------------------------------------------------------------------------


def _dump_file_rows(cur: Any, file_id: int, outbox_after: int, tmp: Path) -> dict[str, int]:
    """The rows one ingest stored (card_event, event_copy, card, status_outbox,
    file_card_change) to files."""
    selects = {
        "event_copy": f"SELECT * FROM event_copy WHERE file_id = {file_id}",
        "card_event": f"SELECT * FROM card_event WHERE source_file_id = {file_id}",
        "card": "SELECT * FROM card WHERE card_id IN "
        f"(SELECT card_id FROM event_copy WHERE file_id = {file_id})",
        "status_outbox": f"SELECT * FROM status_outbox WHERE id > {outbox_after}",
        "file_card_change": f"SELECT * FROM file_card_change WHERE file_id = {file_id}",
    }
    rows: dict[str, int] = {}
    for table, select in selects.items():
        with open(tmp / table, "wb") as out:
            cur.copy_expert(f"COPY ({select}) TO STDOUT", out)
        rows[table] = cur.rowcount
    return rows


# The same file's rows COPYed back after the ingest land on the index pages the ingest has just
# read and written (warm), which flatters COPY most where the indexes are largest: at 10M cards
# the ingest pays the cache misses and the COPY does not. The twin file (same shape and size,
# other card ids and phones) is ingested into a scratch database and its rows COPYed into the
# measured database cold, as the ingest was: the ratio that compares like with like.
TWIN_PREFIX = "ZYV"
# The tables whose rows name their file, and the column that does.
_FILE_COLUMNS = {
    "event_copy": "file_id",
    "card_event": "source_file_id",
    "file_card_change": "file_id",
}


def _ingest(url: str, path: str) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    done = subprocess.run(
        [str(CARDSTATUS), "ingest", "--database-url", url, path],
        capture_output=True,
        text=True,
        check=True,
    )
    return time.perf_counter() - started, json.loads(done.stdout.strip().splitlines()[-1])


def _columns(cur: Any, table: str) -> list[str]:
    cur.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
        "AND table_schema = 'public' ORDER BY ordinal_position",
        (table,),
    )
    return [r[0] for r in cur.fetchall() if not (table == "status_outbox" and r[0] == "id")]


def _twin_rows(admin_url: str, data: Path, file_id: int, tmp: Path) -> dict[str, list[str]]:
    """The twin file's rows as ingestion stores them, dumped under `file_id` (the measured
    database's file; outbox ids are left to its sequence): table -> its COPY columns."""
    from bench.generate import generate
    from cardstatus.migrate import apply_migrations
    from cardstatus_dev.database import drop_database, ensure_database

    twin = generate(data, 100_000, seed=12, card_prefix=TWIN_PREFIX)
    name = f"cardstatus_scale_twin_{uuid.uuid4().hex[:6]}"
    scratch = ensure_database(admin_url, name)
    try:
        with contextlib.closing(psycopg2.connect(scratch)) as conn:
            apply_migrations(conn)
        _, report = _ingest(scratch, twin.path)
        twin_file = int(report["file_id"])
        columns: dict[str, list[str]] = {}
        with contextlib.closing(psycopg2.connect(scratch)) as conn, conn.cursor() as cur:
            for table in ("event_copy", "card_event", "card", "status_outbox", "file_card_change"):
                columns[table] = _columns(cur, table)
                file_column = _FILE_COLUMNS.get(table)
                select = ", ".join(
                    f"{file_id}::bigint" if c == file_column else c for c in columns[table]
                )
                where = f"WHERE {file_column} = {twin_file}" if file_column else ""
                with open(tmp / f"twin_{table}", "wb") as out:
                    cur.copy_expert(f"COPY (SELECT {select} FROM {table} {where}) TO STDOUT", out)
    finally:
        drop_database(admin_url, name)
        for path in (twin.path, twin.expected_path):
            Path(path).unlink(missing_ok=True)
    return columns


def _copy_in(
    conn: Any, tmp: Path, prefix: str, columns: dict[str, list[str]] | None
) -> tuple[float, dict[str, int]]:
    """COPY the dumped rows into the five tables, in one transaction: seconds, rows per table."""
    rows: dict[str, int] = {}
    started = time.perf_counter()
    with conn.cursor() as cur:
        for table in ("event_copy", "card_event", "card", "status_outbox", "file_card_change"):
            cols = f" ({', '.join(columns[table])})" if columns else ""
            with open(tmp / f"{prefix}{table}", "rb") as handle:
                cur.copy_expert(f"COPY {table}{cols} FROM STDIN", handle, size=1 << 16)
            rows[table] = cur.rowcount
    conn.commit()
    return time.perf_counter() - started, rows


def _delete_file_rows(conn: Any, file_id: int, outbox_after: int, card_prefix: str) -> None:
    """Remove the rows of `file_id` whose card ids start with `card_prefix` (the file, or its
    twin COPYed under its id) from the five tables, and the outbox rows after `outbox_after`."""
    with conn.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE gone ON COMMIT DROP AS SELECT DISTINCT card_id FROM event_copy "
            "WHERE file_id = %s AND card_id >= %s AND card_id < %s",
            (file_id, card_prefix, card_prefix[:-1] + chr(ord(card_prefix[-1]) + 1)),
        )
        cur.execute("DELETE FROM status_outbox WHERE id > %s", (outbox_after,))
        cur.execute("DELETE FROM card WHERE card_id IN (SELECT card_id FROM gone)")
        for table, column in _FILE_COLUMNS.items():
            cur.execute(
                f"DELETE FROM {table} WHERE {column} = %s "
                "AND card_id IN (SELECT card_id FROM gone)",
                (file_id,),
            )
    conn.commit()


def _checkpoint(conn: Any) -> int:
    """CHECKPOINT (every timed step starts from one); the outbox's last id."""
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT coalesce(max(id), 0) FROM status_outbox")
        last = int(cur.fetchone()[0])
        cur.execute("CHECKPOINT")
    conn.autocommit = False
    return last


def ingest_and_void(admin_url: str, url: str, data: Path) -> dict[str, Any]:
    """A 100k-row file ingested (timed); its twin's rows COPYed in cold (timed) and removed;
    the file's own rows removed and COPYed back warm (timed, the earlier figure); the file
    voided (timed)."""
    from bench.generate import generate
    from cardstatus.void import void_file

    gen = generate(data, 100_000, seed=11)
    out: dict[str, Any] = {"rows": 100_000}
    with contextlib.closing(psycopg2.connect(url)) as conn:
        outbox_after = _checkpoint(conn)
        ingest_s, report = _ingest(url, gen.path)
        file_id = int(report["file_id"])
        out["ingest"] = {
            "seconds": round(ingest_s, 2),
            "counts": report.get("counts"),
            "timings": report.get("timings"),  # the pipeline's steps, as its report gives them
        }
        with tempfile.TemporaryDirectory(prefix="cardstatus-scale-copy-") as tmp_dir:
            tmp = Path(tmp_dir)
            columns = _twin_rows(admin_url, data, file_id, tmp)
            twin_after = _checkpoint(conn)
            copy_s, twin_rows = _copy_in(conn, tmp, "twin_", columns)
            out["copy"] = {"seconds": round(copy_s, 2), "twin_table_rows": twin_rows}
            out["ratio_ingest_copy"] = round(copy_s / ingest_s, 3)
            _delete_file_rows(conn, file_id, twin_after, TWIN_PREFIX)
            conn.autocommit = True
            with conn.cursor() as cur:
                rows = _dump_file_rows(cur, file_id, outbox_after, tmp)
            conn.autocommit = False
            _delete_file_rows(conn, file_id, outbox_after, "ZYW")
            _checkpoint(conn)
            warm_s, _ = _copy_in(conn, tmp, "", None)
        out["copy_same_rows_warm"] = {"seconds": round(warm_s, 2), "table_rows": rows}
        out["ratio_ingest_copy_warm"] = round(warm_s / ingest_s, 3)
        started = time.perf_counter()
        result = void_file(conn, file_id, "scale bench", "bench")
        out["void"] = {
            "seconds": round(time.perf_counter() - started, 2),
            "events_removed": result.events_removed,
            "status_changes": result.status_changes,
            "timings_ms": result.timings,
        }
    for p in (gen.path, gen.expected_path):
        Path(p).unlink(missing_ok=True)
    return out


# --- capacity -------------------------------------------------------------------------------


def _backend_cpu_seconds(pids: list[int]) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def capacity(url: str, n: int, seconds: float) -> list[dict[str, Any]]:
    """Lookups/s and p99 with k concurrent clients, and lookups per database CPU second."""
    from cardstatus.phonehash import lookup_hashes
    from cardstatus.sql import cards as sql

    levels = []
    for k in K_LEVELS:
        conns = [psycopg2.connect(url) for _ in range(k)]
        for c in conns:
            c.autocommit = True
        pids = [c.info.backend_pid for c in conns]
        local = Path("/proc").exists() and all(Path(f"/proc/{p}").exists() for p in pids)
        latencies: list[list[int]] = [[] for _ in range(k)]
        stop = threading.Event()

        def work(j: int, conns: list[Any], stop: threading.Event, out: list[int]) -> None:
            rng = random.Random(j)
            cur = conns[j].cursor()
            while not stop.is_set():
                i = rng.randrange(n)
                t0 = time.perf_counter_ns()
                if rng.random() < 0.5:
                    cur.execute(sql.CARD_BY_ID, {"card_id": card_id(i)})
                else:
                    hashes = lookup_hashes("+971" + national_phone(i))  # as the api does
                    cur.execute(sql.LATEST_CARD_BY_PHONE, {"phone_hashes": hashes, "limit": 101})
                cur.fetchall()
                out.append(time.perf_counter_ns() - t0)

        cpu0 = _backend_cpu_seconds(pids) if local else None
        threads = [
            threading.Thread(target=work, args=(j, conns, stop, latencies[j])) for j in range(k)
        ]
        started = time.perf_counter()
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
        cpu1 = _backend_cpu_seconds(pids) if local else None
        for c in conns:
            c.close()
        samples = [x for per in latencies for x in per]
        db_cpu = (cpu1 - cpu0) if cpu0 is not None and cpu1 is not None else None
        levels.append(
            {
                "k": k,
                "lookups_per_s": round(len(samples) / wall),
                **{key: v for key, v in _percentiles(samples).items() if key != "max"},
                "db_cpu_s": round(db_cpu, 2) if db_cpu is not None else None,
                "lookups_per_db_core_s": round(len(samples) / db_cpu) if db_cpu else None,
            }
        )
        print(f"  capacity k={k}: {levels[-1]}", file=sys.stderr, flush=True)
    return levels


# --- driver ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _server(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from cardstatus_dev.database import start_embedded_server

    tmp = Path(tempfile.mkdtemp(prefix="cardstatus-scale-"))
    server = start_embedded_server(tmp / "pgdata", cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


def as_api_role(url: str) -> str:
    """The same database as the api's login role (its grants and role-level settings: read
    only, statement_timeout), when the migrations created it and the server lets it in."""
    from psycopg2.extensions import make_dsn, parse_dsn

    candidate = make_dsn(**{**parse_dsn(url), "user": "cardstatus_api", "password": None})
    try:
        psycopg2.connect(candidate).close()
    except psycopg2.Error:
        return url
    return candidate


# The server settings the figures depend on most (an RDS instance's memory settings differ
# from the embedded server's defaults: db.m7g.large has shared_buffers ~2 GB).
SERVER_SETTINGS = (
    "server_version",
    "shared_buffers",
    "effective_cache_size",
    "work_mem",
    "maintenance_work_mem",
    "max_wal_size",
)


def server_settings(conn: Any) -> dict[str, str]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT name, current_setting(name) FROM unnest(%s::text[]) AS name",
            (list(SERVER_SETTINGS),),
        )
        return dict(cur.fetchall())


def run_size(admin_url: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    from cardstatus.migrate import apply_migrations
    from cardstatus.statuspartner import backfill_status_partner
    from cardstatus_dev.database import drop_database, ensure_database, with_database

    name = args.reuse or f"cardstatus_scale_{n}_{uuid.uuid4().hex[:6]}"
    url = with_database(admin_url, name) if args.reuse else ensure_database(admin_url, name)
    result: dict[str, Any] = {"cards": n, "database": name}
    try:
        with contextlib.closing(psycopg2.connect(url)) as conn:
            applied = apply_migrations(conn)
            # a database built before 0024 (--reuse) gets card.status_partner as a deploy does
            result["status_partner_backfill"] = backfill_status_partner(conn)
            result["server"] = server_settings(conn)
        result["migrations"] = [str(m) for m in applied] if applied else []
        if not args.reuse:
            print(f"# {n:,} cards: build into {name}", file=sys.stderr, flush=True)
            result["build"] = build(url, n)
            print(f"  built in {result['build']['seconds']} s", file=sys.stderr, flush=True)
        if args.build_only:
            return result
        api_url = as_api_role(with_database(admin_url, name))
        with contextlib.closing(psycopg2.connect(api_url)) as conn, conn.cursor() as cur:
            cur.execute("SELECT current_user")
            result["api_login"] = cur.fetchone()[0]  # type: ignore[index]
        result["api"] = api_routes(api_url, n, args.iterations)
        result["explain"] = explain_ops(url)
        if not args.skip_ingest:
            with tempfile.TemporaryDirectory(prefix="cardstatus-scale-data-") as data:
                result["ingest_void"] = ingest_and_void(admin_url, url, Path(data))
        result["capacity"] = capacity(api_url, n, args.capacity_seconds)
    finally:
        if not (args.keep or args.reuse or args.build_only):  # a built 10M is worth keeping
            drop_database(admin_url, name)
    return result


def summary(results: list[dict[str, Any]]) -> str:
    """A plain-text side-by-side table of the headline figures."""
    lines = []
    head = "| figure | " + " | ".join(f"{r['cards']:,} cards" for r in results) + " |"
    lines += [head, "|---" * (len(results) + 1) + "|"]

    def row(label: str, get: Callable[[dict[str, Any]], Any]) -> None:
        cells = []
        for r in results:
            try:
                cells.append(str(get(r)))
            except (KeyError, TypeError):
                cells.append("—")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    row("shared_buffers", lambda r: r["server"]["shared_buffers"])
    row("build (s)", lambda r: r["build"]["seconds"])
    row("database (GB)", lambda r: r["build"]["database_gb"])
    for name in results[0]["api"]["lookups"]:
        row(
            f"{name} p50/p99 ms (cpu p50)",
            lambda r, n=name: "{p50} / {p99} ({cpu_p50})".format(**r["api"]["lookups"][n]),
        )
    for name in results[0]["api"]["ops"]:
        row(f"{name} p50/p99 ms", lambda r, n=name: "{p50} / {p99}".format(**r["api"]["ops"][n]))
    row(
        "ops EXPLAIN: seq scans of big tables",
        lambda r: sum(len(v["seq_scans"]) for v in r["explain"].values()),
    )
    row("ingest 100k rows (s)", lambda r: r["ingest_void"]["ingest"]["seconds"])
    row("COPY of the twin file's rows, cold (s)", lambda r: r["ingest_void"]["copy"]["seconds"])
    row("ingest / COPY ratio", lambda r: r["ingest_void"]["ratio_ingest_copy"])
    row(
        "COPY of the same rows, warm (s) / ratio",
        lambda r: "{} / {}".format(
            r["ingest_void"]["copy_same_rows_warm"]["seconds"],
            r["ingest_void"]["ratio_ingest_copy_warm"],
        ),
    )
    row("void of the 100k-row file (s)", lambda r: r["ingest_void"]["void"]["seconds"])
    for i, k in enumerate(K_LEVELS):
        row(
            f"capacity k={k}: lookups/s, p99 ms, per DB core",
            lambda r, i=i: "{lookups_per_s} / {p99} / {lookups_per_db_core_s}".format(
                **r["capacity"][i]
            ),
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, action="append", help="size(s); default 10M")
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--capacity-seconds", type=float, default=5.0)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument("--build-only", action="store_true", help="build, measure nothing")
    parser.add_argument("--reuse", help="measure this already built database (one --cards)")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args(argv)
    sizes = args.cards or [10_000_000]
    results = []
    with _server(args.database_url) as admin_url:
        for n in sizes:
            results.append(run_size(admin_url, n, args))
            if args.out:
                Path(args.out).write_text(json.dumps(results, indent=2, default=str))
    if args.build_only:
        print(json.dumps(results, indent=2, default=str))
        return 0
    document = {"results": results, "summary": summary(results), "load": os.getloadavg()}
    print(json.dumps(document, indent=2, default=str))
    print(document["summary"], file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
