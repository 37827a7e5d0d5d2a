"""Cold start and size of each Lambda function (targets: README "Domain rules").

* import time of each handler module in a fresh interpreter (median of ``runs`` runs), with
  the environment the stack gives the function (``STACK_ENV``);
* the same without any third-party or own bytecode cached (``.pyc``): what Lambda would do
  if the layers and the function code shipped sources only (/opt, /var/task are read-only).
  They ship CPython 3.12 bytecode (layers/build.py ``compile_tree``) unless the build found
  no 3.12 interpreter (then synth warns), so in Lambda the first column is what applies;
* first call: the handler's first call with a sample event after the import, in a fresh
  interpreter (median), for every function; and import + first call together;
* api with SnapStart: its first call after the before-snapshot warm-up
  (``functions/api/snapstart.py``), i.e. what a restored environment still does once;
* unzipped size of each function's code + layers (``layers/build/`` from ``layers/build.py``).

The machine is usually shared: compare numbers of one run (ratios), not across runs.

Run by ``python -m bench``; ``python -m bench.coldstart [DATABASE_URL]`` alone prints JSON.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LAYER_SRC = ROOT / "layers" / "cardstatus" / "python"
BUILD = ROOT / "layers" / "build"
HANDLERS = ("ingest", "api", "audit", "migrate", "sweeper", "void")

# Imports a handler module and times it; the interpreter's own start is not included.
_IMPORT_SNIPPET = """
import time, importlib
t = time.perf_counter()
importlib.import_module({module!r})
print(time.perf_counter() - t)
"""

# Import, (optionally) the SnapStart warm-up, then the first call of the handler with a
# sample event (no AWS calls needed for these).
_FIRST_CALL_SNIPPET = """
import json, time, importlib
t = time.perf_counter()
mod = importlib.import_module({module!r})
imported = time.perf_counter()
if {warm!r}:
    from functions.api import snapstart
    snapstart.warm(mod.app, mod.DB)
class Ctx:
    function_name = "bench"; memory_limit_in_mb = 512; aws_request_id = "bench-1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:bench"
    log_group_name = "/aws/lambda/bench"; log_stream_name = "bench"; function_version = "$LATEST"
    def get_remaining_time_in_millis(self): return 60000
c = time.perf_counter()
result = mod.handler(json.loads({event!r}), Ctx())
done = time.perf_counter()
print(json.dumps({{"import": imported - t, "call": done - c, "result": str(result)[:120]}}))
"""

# The api's first connection in Lambda needs an IAM token (RDS Proxy): botocore's import,
# a client and a presigned URL (cardstatus.db._iam_token). Local runs connect with
# DATABASE_URL instead, so this part of the first call is timed on its own (dummy
# credentials: no network), cold and after the SnapStart warm-up.
_IAM_TOKEN_SNIPPET = """
import importlib, json, time
mod = importlib.import_module("functions.api.app")
if {warm!r}:
    from functions.api import snapstart
    snapstart.warm(mod.app, mod.DB)
t = time.perf_counter()
import botocore.session
client = botocore.session.get_session().create_client(
    "rds", region_name="us-east-1", aws_access_key_id="b", aws_secret_access_key="b")
client.generate_db_auth_token(DBHostname="proxy.invalid", Port=5432, DBUsername="api")
print(time.perf_counter() - t)
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


# What infra/functions.py gives each function (the parts that change what is imported or
# done at import: Powertools settings, tracing off for the api).
STACK_ENV: dict[str, dict[str, str]] = {
    "common": {
        "POWERTOOLS_METRICS_NAMESPACE": "cardstatus-bench",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "POWERTOOLS_LOGGER_LOG_EVENT": "false",
        "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
        "PYDANTIC_DISABLE_PLUGINS": "__all__",
    },
    "api": {"POWERTOOLS_SERVICE_NAME": "cardstatus-api", "POWERTOOLS_TRACE_DISABLED": "true"},
    "audit": {"POWERTOOLS_SERVICE_NAME": "cardstatus-audit"},
    "ingest": {"POWERTOOLS_SERVICE_NAME": "cardstatus-ingest"},
    "migrate": {"POWERTOOLS_SERVICE_NAME": "cardstatus-migrate"},
    # Import only: their first call needs an EventBridge endpoint (sweeper) or a file to void.
    "sweeper": {"POWERTOOLS_SERVICE_NAME": "cardstatus-sweeper"},
    "void": {"POWERTOOLS_SERVICE_NAME": "cardstatus-void"},
}


def _env(database_url: str | None, name: str = "api") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_", "PYTHON"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(LAYER_SRC)])
    env.update(STACK_ENV["common"])
    env.update(STACK_ENV[name])
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    env.setdefault("AWS_ACCESS_KEY_ID", "bench")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def _no_bytecode_env(module: str, env: dict[str, str], prefix: Path) -> dict[str, str]:
    """An environment in which only the standard library has bytecode (as in Lambda, whose
    runtime ships it): one import writes every module's .pyc under `prefix`, then all but
    the standard library's are removed and no more are written."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        cwd=ROOT,
        env={**env, "PYTHONPYCACHEPREFIX": str(prefix)},
        capture_output=True,
        timeout=120,
        check=True,
    )
    for pyc in list(prefix.rglob("*.pyc")):
        source_dir = Path("/") / pyc.parent.relative_to(prefix)
        if not source_dir.is_relative_to(stdlib):
            pyc.unlink()
    return {**env, "PYTHONPYCACHEPREFIX": str(prefix), "PYTHONDONTWRITEBYTECODE": "1"}


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


def _tree_bytes(path: Path, with_bytecode: bool = False) -> int:
    """Bytes under path; local __pycache__ (this interpreter's) not counted unless asked for
    (the built layers' __pycache__ is the shipped CPython 3.12 bytecode)."""
    total = 0
    for p in path.rglob("*"):
        if p.is_file() and (with_bytecode or "__pycache__" not in p.parts):
            total += p.stat().st_size
    return total


def _sample_event(name: str, database_url: str | None) -> str | None:
    if name in SAMPLE_EVENTS:
        return SAMPLE_EVENTS[name]
    if name == "api":
        api_event = ROOT / "events" / "api" / "get_card_status_unknown_card.json"
        return api_event.read_text() if api_event.exists() else None
    if name == "migrate":
        # With a database: Create applies pending migrations (none left after the first);
        # without one: Delete (logs and answers, no database work).
        request = "Create" if database_url else "Delete"
        return json.dumps({"RequestType": request, "ResourceProperties": {}})
    return None


def _ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000, 1)


def _first_calls(
    module: str, event: str, env: dict[str, str], runs: int, warm: bool = False
) -> dict[str, Any]:
    results = [
        json.loads(_run(_FIRST_CALL_SNIPPET.format(module=module, event=event, warm=warm), env))
        for _ in range(runs)
    ]
    out = {
        "first_call_ms_median": _ms([r["call"] for r in results]),
        "import_and_first_call_ms_median": _ms([r["import"] + r["call"] for r in results]),
        "first_call_result": results[-1]["result"],
    }
    return out


def _measure_handler(
    name: str, database_url: str | None, runs: int, no_bytecode_runs: int
) -> dict[str, Any]:
    module = f"functions.{name}.app"
    env = _env(database_url, name)
    entry: dict[str, Any] = {}
    try:
        times = [float(_run(_IMPORT_SNIPPET.format(module=module), env)) for _ in range(runs)]
        entry["import_ms_median"] = _ms(times)
        entry["import_ms_min"] = round(min(times) * 1000, 1)
        entry["top_imports_ms"] = _top_imports(module, env)
        if no_bytecode_runs:
            with tempfile.TemporaryDirectory(prefix="cardstatus-bench-pyc-") as prefix:
                bare = _no_bytecode_env(module, env, Path(prefix))
                cold = [
                    float(_run(_IMPORT_SNIPPET.format(module=module), bare))
                    for _ in range(no_bytecode_runs)
                ]
            entry["import_no_bytecode_ms_median"] = _ms(cold)
    except subprocess.CalledProcessError as exc:
        entry["error"] = (exc.stderr or "").strip().splitlines()[-1:]
        return entry
    event = _sample_event(name, database_url)
    if event is None:
        return entry
    try:
        entry.update(_first_calls(module, event, env, runs))
        if name == "api":
            warm = _first_calls(module, event, env, runs, warm=True)
            entry["first_call_after_snapstart_warmup_ms_median"] = warm["first_call_ms_median"]
            for key, warmed in (
                ("iam_token_first_ms_median", False),
                ("iam_token_after_warmup_ms_median", True),
            ):
                snippet = _IAM_TOKEN_SNIPPET.format(warm=warmed)
                entry[key] = _ms([float(_run(snippet, env)) for _ in range(runs)])
    except subprocess.CalledProcessError as exc:
        entry["first_call_error"] = (exc.stderr or "").strip().splitlines()[-1:]
    return entry


def measure(
    database_url: str | None = None, runs: int = 15, no_bytecode_runs: int = 5
) -> dict[str, Any]:
    handlers: dict[str, Any] = {}
    for name in HANDLERS:
        if not (ROOT / "functions" / name / "app.py").exists():
            handlers[name] = {"missing": f"functions/{name}/app.py does not exist yet"}
            continue
        handlers[name] = _measure_handler(name, database_url, runs, no_bytecode_runs)

    sizes: dict[str, Any] = {}
    code_layer = BUILD / "code" / "python"
    deps_layer = BUILD / "deps" / "python"
    layers = {
        "code_layer": _tree_bytes(code_layer, True) if code_layer.exists() else None,
        "deps_layer": _tree_bytes(deps_layer, True) if deps_layer.exists() else None,
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
        "runs": runs,
        "no_bytecode_runs": no_bytecode_runs,
    }


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1] if len(sys.argv) > 1 else None), indent=2))
