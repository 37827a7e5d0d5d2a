"""`cardstatus local` end to end as a subprocess: upload → API shows it; bad file → report; clean stop."""

from __future__ import annotations

import gzip
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import psutil
import pytest

from cardstatus_dev.local import LOCAL_BUCKET

# The subprocess starts its own embedded PostgreSQL.
pytestmark = pytest.mark.db


def free_ports(n: int) -> list[int]:
    """n distinct free loopback ports (sockets held until all are chosen, so no repeats)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


def get_json(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def postgres_processes(pgdata: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(proc.info.get("cmdline") or [])
        if "postgres" in (proc.info.get("name") or "") and str(pgdata) in cmdline:
            found.append(proc)
    return found


def xlsx_bytes(rows: list[list[str]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def any_upload_files() -> dict[str, bytes]:
    """Issue 12 Done-when: every object under incoming/ gets a report in `make run`, not only
    the .csv ones (the notification has no suffix filter)."""
    header = "Card ID,User contact,Timestamp\n"
    return {
        "incoming/speedy/x Delivered.xlsx": xlsx_bytes(
            [["Card ID", "User contact", "Timestamp"], ["XLS0001", "", "2024-03-10T08:00:00Z"]]
        ),
        "incoming/speedy/x Delivered.csv.gz": gzip.compress(
            (header + "GZP0001,,2024-03-10T08:00:00Z\n").encode()
        ),
        "incoming/speedy/x Delivered.txt": (header + "TXT0001,,2024-03-10T08:00:00Z\n").encode(),
        "incoming/speedy/x.xls": b"\xd0\xcf\x11\xe0 old excel",
        "incoming/speedy/x.zip": b"PK\x03\x04 an archive",
    }


def s3_client(port: int) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def bucket_state(s3: Any) -> dict[str, Any]:
    """Every version and delete marker of the local bucket, and every report's bytes."""
    listed = s3.list_object_versions(Bucket=LOCAL_BUCKET)
    reports = {
        v["Key"]: s3.get_object(Bucket=LOCAL_BUCKET, Key=v["Key"])["Body"].read()
        for v in listed.get("Versions", [])
        if v["Key"].startswith("reports/") and v["IsLatest"]
    }
    return {
        "versions": [
            (v["Key"], v["VersionId"], v["ETag"], v["LastModified"])
            for v in listed.get("Versions", [])
        ],
        "markers": [(m["Key"], m["VersionId"]) for m in listed.get("DeleteMarkers", [])],
        "reports": reports,
    }


def every_upload_gets_a_report(s3: Any, api: str) -> None:
    """Issue 12 Done-when: .xlsx, .csv.gz, .txt applied; .xls, .zip rejected saying what to
    upload instead; each with reports/<key>.json."""
    uploads = any_upload_files()
    for key, data in uploads.items():
        s3.put_object(Bucket=LOCAL_BUCKET, Key=key, Body=data)

    def report_of(key: str) -> dict[str, Any]:
        obj = s3.get_object(Bucket=LOCAL_BUCKET, Key=f"reports/{key}.json")
        return dict(json.loads(obj["Body"].read()))

    reports = {
        key: wait_for(lambda k=key: report_of(k), 30, f"a report for {key}") for key in uploads
    }
    outcomes = {key.rsplit("/", 1)[1]: r["outcome"] for key, r in reports.items()}
    assert outcomes == {
        "x Delivered.xlsx": "applied",
        "x Delivered.csv.gz": "applied",
        "x Delivered.txt": "applied",
        "x.xls": "rejected_file",
        "x.zip": "rejected_file",
    }, reports
    for card in ("XLS0001", "GZP0001", "TXT0001"):
        assert get_json(f"{api}/get_card_status?card_id={card}")[1]["status"] == "DELIVERED"
    for name in ("x.xls", "x.zip"):
        reason = reports[f"incoming/speedy/{name}"]["reason"]
        assert "upload" in reason and ".xlsx" in reason, reason  # says what to upload instead


def add_unread_upload(saved: Path, key: str, cut_report: str) -> None:
    """In the saved bucket of a stopped service: an upload never read (as when the service
    stops before the poller gets to its message), and a report that was never written (the
    stop came between the file's commit and its report)."""
    from moto import mock_aws

    from cardstatus_dev.local import BucketMirror

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=LOCAL_BUCKET)
        s3.put_bucket_versioning(Bucket=LOCAL_BUCKET, VersioningConfiguration={"Status": "Enabled"})
        mirror = BucketMirror(saved)
        assert mirror.restore()
        body = b"Card ID,User contact,Timestamp\nUNREAD1,,2024-03-10T08:00:00Z\n"
        s3.put_object(Bucket=LOCAL_BUCKET, Key=key, Body=body)
        versions = s3.list_object_versions(Bucket=LOCAL_BUCKET, Prefix=cut_report)["Versions"]
        for version in versions:
            s3.delete_object(Bucket=LOCAL_BUCKET, Key=cut_report, VersionId=version["VersionId"])
        assert mirror.save() == 1


def assert_restart_kept_the_bucket(
    kept: dict[str, Any], after: dict[str, Any], first_run: str, restart: str, unread: str
) -> None:
    """Same versions, delete markers and reports as before the stop; nothing ingested twice;
    the upload the database had no file for, and the one sent right before the stop unless it
    went in before, ingested at start."""
    late = "incoming/acme/late Delivered.csv"
    for key in ("versions", "markers"):
        assert set(kept[key]) <= set(after[key]), key
    new_reports = {f"reports/{late}.json", f"reports/{unread}.json"}
    assert {k: v for k, v in after["reports"].items() if k not in new_reports} == kept["reports"]
    assert "restored " in restart
    assert "ingesting again 1 upload(s) the database has no file for" in restart or (
        "ingesting again 2 upload(s)" in restart and late in restart
    )
    assert f"ingested {unread}: applied" in restart
    ingested = [line for line in restart.splitlines() if line.startswith("ingested ")]
    assert all(late in line or unread in line for line in ingested), ingested
    times = first_run.count(f"ingested {late}:") + restart.count(f"ingested {late}:")
    assert times == 1, (first_run, restart)


def start_local(
    cwd: Path, env: dict[str, str], api_port: int, s3_port: int
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cardstatus_dev",
            "local",
            "--port",
            str(api_port),
            "--s3-port",
            str(s3_port),
        ],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def all_gone(children: list[psutil.Process], pgdata: Path, timeout: float = 30) -> bool:
    """True once every child and PostgreSQL server of the run has exited (an orphan may take a
    moment to be reaped: polled against a deadline rather than a fixed sleep)."""

    def running(child: psutil.Process) -> bool:
        try:
            return child.is_running() and child.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    def alive() -> list[psutil.Process]:
        return [c for c in children if running(c)] + postgres_processes(pgdata)

    deadline = time.monotonic() + timeout
    while alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    left = alive()
    assert left == [], left
    return True


def stop_local(proc: subprocess.Popen[str]) -> str:
    """Ctrl-C, as a user would; returns everything it printed."""
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    print(out)  # shown by pytest when the test fails
    return out


@pytest.mark.slow
def test_local_service_end_to_end(tmp_path: Path) -> None:
    api_port, s3_port = free_ports(2)
    # No XDG_RUNTIME_DIR, as in containers and CI: no platformdirs warning on the console.
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "XDG_RUNTIME_DIR")}
    env["CARDSTATUS_HOME"] = str(tmp_path / "home")
    proc = start_local(tmp_path, env, api_port, s3_port)
    api = f"http://127.0.0.1:{api_port}"
    output: list[str] = []
    try:
        # Sample data is uploaded on first start: the API answers for a sample card.
        wait_for(
            lambda: (
                get_json(f"{api}/get_card_status?card_id=ZYW8890")[1].get("status") == "RETURNED"
            ),
            90,
            "the sample files to be ingested",
        )
        s3 = s3_client(s3_port)
        s3.put_object(
            Bucket=LOCAL_BUCKET,
            Key="incoming/acme/e2e 2024-03-10 - Delivered.csv",
            Body=b"Card ID,User contact,Timestamp\nE2E0001,0585949099,2024-03-10T08:00:00Z\n",
        )
        wait_for(
            lambda: (
                get_json(f"{api}/get_card_status?card_id=E2E0001")[1].get("status") == "DELIVERED"
            ),
            30,
            "the uploaded file to change the card's status",
        )
        status, body = get_json(f"{api}/get_card_status?user_phone=585949099")
        assert status == 200 and body["card_id"] == "E2E0001"

        s3.put_object(Bucket=LOCAL_BUCKET, Key="incoming/acme/broken.csv", Body=b"\x00\x01garbage")

        def rejected_report() -> bool:
            obj = s3.get_object(Bucket=LOCAL_BUCKET, Key="reports/incoming/acme/broken.csv.json")
            return json.loads(obj["Body"].read())["outcome"] == "rejected_file"

        wait_for(rejected_report, 30, "the broken file's rejected_file report")

        every_upload_gets_a_report(s3, api)
        s3.delete_object(Bucket=LOCAL_BUCKET, Key="incoming/speedy/x.zip")  # a delete marker
        kept = bucket_state(s3)
        # Uploaded right before Ctrl-C: ingested now, or (not read yet, or stopped while it
        # was being ingested) at the next start. Either way it is never lost.
        s3.put_object(
            Bucket=LOCAL_BUCKET,
            Key="incoming/acme/late Delivered.csv",
            Body=b"Card ID,User contact,Timestamp\nLATE001,,2024-03-10T08:00:00Z\n",
        )
        children = psutil.Process(proc.pid).children(recursive=True)
    finally:
        output.append(stop_local(proc))
    text = "".join(output)
    assert proc.returncode == 0, text
    assert "cardstatus is running" in text
    assert "e2e 2024-03-10 - Delivered.csv: applied" in text
    assert "broken.csv: rejected_file" in text
    assert '{"_aws"' not in text  # metrics go to .local/metrics.log, not the console
    assert '{"_aws"' in (tmp_path / "home" / "metrics.log").read_text()
    assert "(invalid phones)" in text  # the sample with a bad phone says what its warning is
    assert "0585949099" not in text and "585949099" not in text
    assert "Warning" not in text  # e.g. platformdirs' RuntimeDirWarning
    assert all_gone(children, tmp_path / "home" / "pgdata")

    # The database survives a restart, and so does the bucket (saved under .local/s3/): the
    # same versions, delete markers and reports; nothing ingested twice; the samples are not
    # uploaded again.
    unread = "incoming/acme/unread Delivered.csv"
    cut = "reports/incoming/acme/e2e 2024-03-10 - Delivered.csv.json"
    add_unread_upload(tmp_path / "home" / "s3", unread, cut)
    api_port, s3_port = free_ports(2)
    again = start_local(tmp_path, env, api_port, s3_port)
    api = f"http://127.0.0.1:{api_port}"
    try:

        def kept_card() -> dict[str, Any] | None:
            status, body = get_json(f"{api}/get_card_status?card_id=E2E0001")
            return body if status == 200 else None

        body = wait_for(kept_card, 60, "the restarted service to answer from the kept database")
        wait_for(
            lambda: get_json(f"{api}/get_card_status?card_id=LATE001")[1].get("status"),
            30,
            "the file uploaded right before the stop",
        )
        wait_for(
            lambda: get_json(f"{api}/get_card_status?card_id=UNREAD1")[1].get("status"),
            30,
            "the upload the database had no file for",
        )
        s3 = s3_client(s3_port)
        wait_for(
            lambda: s3.head_object(
                Bucket=LOCAL_BUCKET, Key="reports/incoming/acme/late Delivered.csv.json"
            ),
            30,
            "the report of the file uploaded right before the stop",
        )
        after = bucket_state(s3)
    finally:
        out = stop_local(again)
    assert body["status"] == "DELIVERED"
    assert again.returncode == 0, out
    assert "uploaded" not in out  # no second seeding
    assert f"wrote 1 report(s) from the database that the last stop cut off: {cut[8:-5]}" in out
    assert json.loads(after["reports"].pop(cut)) == json.loads(kept["reports"].pop(cut))
    kept["versions"] = [v for v in kept["versions"] if v[0] != cut]
    assert_restart_kept_the_bucket(kept, after, first_run=text, restart=out, unread=unread)
    assert "Warning" not in out
    assert all_gone([], tmp_path / "home" / "pgdata")
