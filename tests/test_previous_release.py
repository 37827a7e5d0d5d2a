"""The previous release's code runs against the new schema (docs/DEPLOY.md "Migrations that
never lock"): a deploy migrates first and replaces the functions after, so for a while the
old ingest, api and void code works on the newly migrated database, each as its own role.

The old code is taken from git (`git archive PREVIOUS_RELEASE`) into a temporary folder and
run in a subprocess whose `cardstatus` and `functions` packages are the old ones: it ingests
the sample files, answers lookups through its api handler, voids a file and publishes its
events, on a database migrated by this checkout's migrations (every file, 0010+ included).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from fixture_paths import ROOT

# The code in production before this checkout: main when round 3 began (no release tags in
# this repository). Move it forward when a release reaches prod (docs/DEPLOY.md).
PREVIOUS_RELEASE = "8ceae6bc8d8f081b1ceecc7c6bd4907a948f28bd"
OLD_PATHS = ("layers/cardstatus/python", "functions", "events/partner_samples", "events/api")

OLD_RELEASE_SCRIPT = r"""
import json, os, sys, uuid
from pathlib import Path

root, url = Path(sys.argv[1]), sys.argv[2]
from psycopg2.extensions import make_dsn

os.environ["DATABASE_URL"] = make_dsn(url, user="cardstatus_api")
import psycopg2
import cardstatus
import functions

assert Path(cardstatus.__file__).resolve().is_relative_to(root), cardstatus.__file__
assert Path(functions.__file__).resolve().is_relative_to(root), functions.__file__

from cardstatus.config import load_settings
from cardstatus.ingest import ingest_path
from cardstatus.void import void_retrying

out = {}
ingest = psycopg2.connect(make_dsn(url, user="cardstatus_ingest"))
samples = sorted((root / "events" / "partner_samples").glob("*.csv"))
reports = {p.name: ingest_path(ingest, p, load_settings(), partner="acme") for p in samples}
out["outcomes"] = sorted(r["outcome"] for r in reports.values())
again = ingest_path(ingest, samples[0], load_settings(), partner="acme")
out["again"] = again["outcome"]


class Context:
    function_name = "cardstatus-api-old"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:old"
    aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self):
        return 10_000


from functions.api import app as api

def call(name, query=None):
    event = json.loads((root / "events" / "api" / f"{name}.json").read_text())
    if query is not None:
        event["queryStringParameters"] = query
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()}
    answer = api.handler(event, Context())
    return answer["statusCode"], json.loads(answer["body"] or "null")

status, body = call("get_card_status_by_card_id", {"card_id": "ZYW8890"})
out["by_id"] = [status, body.get("status")]
status, body = call("get_card_status_by_phone", {"user_phone": "0545576586"})
out["by_phone"] = [status, body.get("card_id")]
status, body = call("list_files")
out["files"] = [status, len(body.get("files", []))]

void = psycopg2.connect(make_dsn(url, user="cardstatus_void"))
returned = reports["Sample Card Status Info - Returned.csv"]["file_id"]
result = void_retrying(void, returned, "previous release check", "test")
out["void"] = [result.events_removed, result.status_changes]
status, body = call("get_card_status_by_card_id", {"card_id": "ZYW8890"})
out["after_void"] = [status, body.get("status")]


class Bus:
    def put_events(self, Entries):
        return {"FailedEntryCount": 0,
                "Entries": [{"EventId": str(uuid.uuid4())} for _ in Entries]}

from dataclasses import replace
from cardstatus import events
from cardstatus.config import event_settings

cfg = replace(event_settings(), bus_name="cardstatus-old")
published = events.publish_pending(ingest, Bus(), cfg=cfg, min_age_s=0)
out["published"] = published.published
out["pending_after"] = events.outbox_stats(ingest)[0]
print(json.dumps(out))
"""


def _git(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, check=False)


def previous_release_tree(into: Path) -> Path:
    """The previous release's code, from git, under `into`."""
    if shutil.which("git") is None or _git("rev-parse", "--git-dir").returncode != 0:
        pytest.skip("not a git checkout: the previous release cannot be read from history")
    if _git("cat-file", "-e", f"{PREVIOUS_RELEASE}^{{commit}}").returncode != 0:
        raise AssertionError(
            f"commit {PREVIOUS_RELEASE} (the previous release) is not in this clone's history: "
            "fetch it (a shallow clone needs `git fetch --unshallow`)"
        )
    archive = _git("archive", "--format=tar", PREVIOUS_RELEASE, *OLD_PATHS)
    assert archive.returncode == 0, archive.stderr.decode()
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into


def test_previous_release_runs_against_the_new_schema(db_url: str, tmp_path: Path) -> None:
    old = previous_release_tree(tmp_path / "old")
    script = tmp_path / "old_release_check.py"
    script.write_text(OLD_RELEASE_SCRIPT)
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DATABASE_URL")},
        # only the old code: its runtime package and its handlers, nothing of this checkout
        "PYTHONPATH": os.pathsep.join([str(old / "layers" / "cardstatus" / "python"), str(old)]),
        "POWERTOOLS_METRICS_NAMESPACE": "cardstatus-test",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
    }
    run = subprocess.run(
        [sys.executable, "-s", str(script), str(old.resolve()), db_url],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out == {
        "outcomes": ["applied"] * 4,
        "again": "duplicate_file",
        "by_id": [200, "RETURNED"],
        "by_phone": [200, "ZYW7631"],
        "files": [200, 5],  # the duplicate_file has its row too
        "void": [1, 1],
        "after_void": [200, "DELIVERY_EXCEPTION"],
        "published": out["published"],
        "pending_after": 0,
    }, run.stderr[-4000:]
    assert out["published"] > 0
