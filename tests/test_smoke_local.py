"""`cardstatus smoke` against `cardstatus local` (what `make run` starts), on every change; and
the local stack behaving like AWS for re-uploads (B3): a re-upload of voided bytes is a new
S3 version, applied at once, and a restart changes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from test_local_e2e import free_ports, get_json, s3_client, start_local, stop_local, wait_for

from cardstatus_dev.local import LOCAL_BUCKET

pytestmark = [pytest.mark.db, pytest.mark.slow]

STEPS = ("health", "upload", "report", "by-id", "by-phone", "void", "gone")


def smoke(
    env: dict[str, str], api: str, s3_port: int, *extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "cardstatus_dev",
            "smoke",
            "--api-url",
            api,
            "--s3-endpoint-url",
            f"http://127.0.0.1:{s3_port}",
            "--timeout",
            "60",
            *extra,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def post_json(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def report_of(s3: Any, key: str) -> dict[str, Any]:
    obj = s3.get_object(Bucket=LOCAL_BUCKET, Key=f"reports/{key}.json")
    return dict(json.loads(obj["Body"].read()))


def reupload_after_void(s3: Any, api: str) -> tuple[int, int]:
    """B3's steps: upload, void, upload the same bytes again. Returns both file ids."""
    key = "incoming/speedy/voidtest Returned.csv"
    body = b"Card ID,Phone,Timestamp\nVDT001,0501116601,06-12-2026 08:40\n"
    s3.put_object(Bucket=LOCAL_BUCKET, Key=key, Body=body)
    first = wait_for(lambda: report_of(s3, key), 60, "the first upload's report")
    assert first["outcome"] == "applied", first
    status, voided = post_json(f"{api}/files/{first['file_id']}/void", {"reason": "test"})
    assert status == 200 and voided["cards_deleted"] == 1, voided
    assert get_json(f"{api}/cards/VDT001")[0] == 404
    s3.put_object(Bucket=LOCAL_BUCKET, Key=key, Body=body)  # the partner sends it again

    def new_report() -> dict[str, Any] | None:
        report = report_of(s3, key)
        return report if report.get("file_id") != first["file_id"] else None

    second = wait_for(new_report, 60, "the re-upload's own report")
    assert second["outcome"] == "applied", second  # applied at once, not a replayed report
    assert get_json(f"{api}/cards/VDT001")[1]["status"] == "RETURNED"
    return first["file_id"], second["file_id"]


def test_smoke_passes_against_the_local_stack(tmp_path: Path) -> None:
    api_port, s3_port = free_ports(2)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "XDG_RUNTIME_DIR")}
    env.update(
        CARDSTATUS_HOME=str(tmp_path / "home"),
        AWS_ACCESS_KEY_ID="local",  # the dummy credentials README "Quick start" explains
        AWS_SECRET_ACCESS_KEY="local",
    )
    env.pop("AWS_PROFILE", None)
    api = f"http://127.0.0.1:{api_port}"
    proc = start_local(tmp_path, env, api_port, s3_port)
    try:
        wait_for(lambda: get_json(f"{api}/health")[0] == 200, 90, "the local stack")
        runs = [smoke(env, api, s3_port) for _ in range(2)]  # a fresh card each time
        missing = smoke(env, api, s3_port, "--bucket", "no-such-bucket")
        s3 = s3_client(s3_port)
        first_file, second_file = reupload_after_void(s3, api)
        _, files_before = get_json(f"{api}/files?partner=speedy&limit=100")
    finally:
        first_out = stop_local(proc)
    for run in runs:
        assert run.returncode == 0, run.stdout + run.stderr
        lines = run.stdout.splitlines()
        for step in STEPS:
            assert any(line.startswith(f"ok   {step} ") for line in lines), run.stdout
        assert lines[-1].startswith("smoke passed in ")
        assert "0505550" not in run.stdout.replace("…", "")  # the phone is shown as …1234 only
    card_ids = {line.split()[-3] for r in runs for line in r.stdout.splitlines() if "by-id" in line}
    assert len(card_ids) == 2, card_ids
    assert missing.returncode == 1, missing.stdout + missing.stderr
    assert "FAIL upload" in missing.stdout and "smoke FAILED at upload" in missing.stdout
    assert second_file != first_file

    # A restart changes nothing: no upload is ingested again, the card stays back.
    again_port, again_s3 = free_ports(2)
    again = start_local(tmp_path, env, again_port, again_s3)
    api = f"http://127.0.0.1:{again_port}"
    try:
        wait_for(lambda: get_json(f"{api}/health")[0] == 200, 90, "the restarted stack")
        status, card = get_json(f"{api}/cards/VDT001")
        _, files_after = get_json(f"{api}/files?partner=speedy&limit=100")
    finally:
        out = stop_local(again)
    assert status == 200 and card["status"] == "RETURNED"
    assert files_after == files_before
    # what is re-queued is decided at start, before this line: nothing
    assert "restored " in out and "ingesting again" not in out, out
    assert "ingested incoming/smoke/" in first_out  # the terminal line of each smoke file
