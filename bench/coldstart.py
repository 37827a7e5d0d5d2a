"""Cold start and size of each Lambda function (targets: README "Domain rules").

* import time of each handler module in a fresh interpreter (median of several runs);
* first invocation: import + one handler call with a sample event, in a fresh interpreter;
* unzipped size of each function's code + layers (``layers/build/`` from ``layers/build.py``).

Run by ``python -m bench``; ``python -m bench.coldstart [DATABASE_URL]`` alone prints JSON.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LAYER_SRC = ROOT / "layers" / "cardstatus" / "python"
BUILD = ROOT / "layers" / "build"
HANDLERS = ("ingest", "api", "migrate", "sweeper")

# Imports a handler module and times it; the interpreter's own start is not included.
_IMPORT_SNIPPET = """
import time, importlib
t = time.perf_counter()
importlib.import_module({module!r})
print(time.perf_counter() - t)
"""

# Import + first call of the handler with a sample event (no AWS calls needed for these).
_FIRST_CALL_SNIPPET = """
import json, time, importlib
t = time.perf_counter()
mod = importlib.import_module({module!r})
class Ctx:
    function_name = "bench"; memory_limit_in_mb = 512; aws_request_id = "bench-1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:bench"
    log_group_name = "/aws/lambda/bench"; log_stream_name = "bench"; function_version = "$LATEST"
    def get_remaining_time_in_millis(self): return 60000
result = mod.handler(json.loads({event!r}), Ctx())
print(json.dumps({{"seconds": time.perf_counter() - t, "result": str(result)[:120]}}))
"""

_TEST_EVENT_BODY = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"})
SAMPLE_EVENTS = {
    # An SQS message carrying the s3:TestEvent: exercises Powertools batch processing only.
    "ingest": json.dumps(
        {
            "Records": [
                {
                    "messageId": "bench-1",
                    "receiptHandle": "x",
                    "body": _TEST_EVENT_BODY,
                    "attributes": {"ApproximateReceiveCount": "1"},
                    "messageAttributes": {},
                    "md5OfBody": "",
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:bench",
                    "awsRegion": "us-east-1",
                }
            ]
        }
    ),
}


def _env(database_url: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(LAYER_SRC)])
    env.setdefault("POWERTOOLS_SERVICE_NAME", "cardstatus")
    env.setdefault("POWERTOOLS_METRICS_NAMESPACE", "cardstatus-bench")
    env["POWERTOOLS_TRACE_DISABLED"] = "true"
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    env.setdefault("AWS_ACCESS_KEY_ID", "bench")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def _run(code: str, env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


def _top_imports(module: str, env: dict[str, str], n: int = 6) -> list[tuple[str, float]]:
    """Import time (ms, self time summed per top-level package) from -X importtime."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    tops: dict[str, float] = {}
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        own, _cumulative, name = line.removeprefix("import time:").split("|", 2)
        if not own.strip().isdigit():
            continue
        package = name.strip().split(".")[0]
        tops[package] = tops.get(package, 0.0) + int(own) / 1000
    return [(k, round(v, 1)) for k, v in sorted(tops.items(), key=lambda kv: -kv[1])[:n]]


def _tree_bytes(path: Path) -> int:
    total = 0
    for p in path.rglob("*"):
        if p.is_file() and "__pycache__" not in p.parts:
            total += p.stat().st_size
    return total


def measure(database_url: str | None = None, runs: int = 5) -> dict[str, Any]:
    env = _env(database_url)
    handlers: dict[str, Any] = {}
    for name in HANDLERS:
        app = ROOT / "functions" / name / "app.py"
        module = f"functions.{name}.app"
        if not app.exists():
            handlers[name] = {"missing": f"functions/{name}/app.py does not exist yet"}
            continue
        entry: dict[str, Any] = {}
        try:
            times = [float(_run(_IMPORT_SNIPPET.format(module=module), env)) for _ in range(runs)]
            entry["import_ms_median"] = round(statistics.median(times) * 1000, 1)
            entry["import_ms_min"] = round(min(times) * 1000, 1)
            entry["top_imports_ms"] = _top_imports(module, env)
        except subprocess.CalledProcessError as exc:
            entry["error"] = (exc.stderr or "").strip().splitlines()[-1:]
        event = SAMPLE_EVENTS.get(name)
        if event is None and name == "api":
            api_event = ROOT / "events" / "api" / "get_card_status_unknown_card.json"
            event = api_event.read_text() if api_event.exists() else None
        if event is not None and "error" not in entry:
            try:
                first = json.loads(
                    _run(_FIRST_CALL_SNIPPET.format(module=module, event=event), env)
                )
                entry["first_invocation_ms"] = round(first["seconds"] * 1000, 1)
                entry["first_invocation_result"] = first["result"]
            except subprocess.CalledProcessError as exc:
                entry["first_invocation_error"] = (exc.stderr or "").strip().splitlines()[-1:]
        handlers[name] = entry

    sizes: dict[str, Any] = {}
    code_layer = BUILD / "code" / "python"
    deps_layer = BUILD / "deps" / "python"
    layers = {
        "code_layer": _tree_bytes(code_layer) if code_layer.exists() else None,
        "deps_layer": _tree_bytes(deps_layer) if deps_layer.exists() else None,
    }
    for name in HANDLERS:
        fn_dir = ROOT / "functions" / name
        fn_bytes = (
            _tree_bytes(fn_dir)
            + _tree_bytes(ROOT / "functions")
            - sum(_tree_bytes(ROOT / "functions" / other) for other in HANDLERS)
        )
        total = fn_bytes + (layers["code_layer"] or 0) + (layers["deps_layer"] or 0)
        sizes[name] = {"function_bytes": fn_bytes, "total_unzipped_bytes": total}
    zips = {p.name: p.stat().st_size for p in sorted(BUILD.glob("*.zip"))} if BUILD.exists() else {}
    note = (
        None
        if layers["deps_layer"] is not None
        else "layers/build/ not built (python layers/build.py): deps layer size not measured"
    )
    return {
        "handlers": handlers,
        "sizes": {"layers_unzipped_bytes": layers, "layer_zips_bytes": zips, **sizes},
        "note": note,
        "python": sys.version.split()[0],
    }


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1] if len(sys.argv) > 1 else None), indent=2))
