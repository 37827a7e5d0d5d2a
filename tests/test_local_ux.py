"""Local run UX (issue 11 item 5): one human line per file, metrics off the console, a clear
error for a busy port, the DLQ line, stale embedded-PostgreSQL users pruned, SIGHUP stops."""

from __future__ import annotations

import io
import json
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cardstatus_dev.cli import main
from cardstatus_dev.database import prune_dead_users
from cardstatus_dev.local import LOCAL_DLQ, MetricsToFile, file_line, retry_line


def test_file_line_counts_and_names_the_warnings() -> None:
    report = {
        "outcome": "applied",
        "file_id": 7,
        "counts": {
            "rows": 400000,
            "accepted": 280000,
            "duplicate": 0,
            "rejected": 0,
            "warnings": 120000,
        },
        "warnings": [
            {"line": 2, "warning": "phone *2345 is not a valid number for region AE; left unset"}
        ],
    }
    assert file_line("incoming/acme/big.csv", report) == (
        "ingested incoming/acme/big.csv: applied rows=400000 accepted=280000 duplicate=0 "
        "rejected=0 warnings=120000 (invalid phones) [file 7]"
    )
    rejected = {"outcome": "rejected_file", "reason": "file is empty: no header row", "counts": {}}
    assert file_line("k.csv", rejected).endswith("warnings=0 — file is empty: no header row")


def test_retry_line_says_when_the_file_went_to_the_dlq() -> None:
    assert "attempt 2 of 5" in retry_line("incoming/a/x.csv", 2, 5, "http://127.0.0.1:5000")
    last = retry_line("incoming/a/x.csv", 5, 5, "http://127.0.0.1:5000")
    assert f"moved to the dead-letter queue {LOCAL_DLQ}" in last
    assert "--metadata-directive REPLACE" in last and "s3://" in last


def test_metric_lines_go_to_the_metrics_file(tmp_path: Path) -> None:
    console = io.StringIO()
    out = MetricsToFile(console, tmp_path / "metrics.log")
    print('{"_aws":{"Timestamp":1},"Files_applied":[1.0]}', file=out)
    print("ingested k.csv: applied rows=1", file=out)
    out.write("partial ")
    out.write("line\n")
    out.close()
    assert console.getvalue() == "ingested k.csv: applied rows=1\npartial line\n"
    assert (tmp_path / "metrics.log").read_text().startswith('{"_aws":')


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


def test_busy_ports_are_one_line_and_exit_1(
    busy_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--port", str(busy_port)]) == 1
    assert capsys.readouterr().err == (
        f"cardstatus serve: port {busy_port} is already in use; stop the other program or pass --port N\n"
    )
    assert main(["local", "--s3-port", str(busy_port), "--port", "0"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"port {busy_port} (S3/SQS) is already in use" in err
    assert "--s3-port N" in err
    assert main(["console", "--api-url", "https://x.example/v1", "--port", str(busy_port)]) == 1


def test_dead_users_of_the_embedded_server_are_pruned(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    listed = tmp_path / ".handle_pids.json"
    import os

    listed.write_text(json.dumps([os.getpid(), dead.pid]))
    assert prune_dead_users(tmp_path) == [dead.pid]
    assert json.loads(listed.read_text()) == [os.getpid()]
    assert prune_dead_users(tmp_path / "missing") == []


def test_sighup_stops_serve_cleanly(tmp_path: Path) -> None:
    """Closing the terminal (SIGHUP) stops like Ctrl-C (it used to kill the process at once,
    leaving the embedded PostgreSQL of `local` running)."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cardstatus_dev",
            "serve",
            "--port",
            "0",
            "--database-url",
            "postgresql://nobody@127.0.0.1:1/none",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    line = process.stderr.readline()
    assert "cardstatus API on" in line, line
    process.send_signal(signal.SIGHUP)
    _, err = process.communicate(timeout=20)
    assert process.returncode in (0, 130), err  # 130: interrupted before serving began
    assert "Traceback" not in err


def test_local_events_carry_the_version_they_were_sent_for() -> None:
    """F5: an object overwritten before the poller reads its first event still has its first
    version ingested, as in AWS (the event names the version)."""
    import boto3
    from moto import mock_aws

    from cardstatus_dev.local import LOCAL_BUCKET, with_version_ids

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=LOCAL_BUCKET)
        s3.put_bucket_versioning(Bucket=LOCAL_BUCKET, VersioningConfiguration={"Status": "Enabled"})
        key = "incoming/speedy/race Delivered.csv"
        first = s3.put_object(Bucket=LOCAL_BUCKET, Key=key, Body=b"v1")
        s3.put_object(Bucket=LOCAL_BUCKET, Key=key, Body=b"v2")
        body = json.dumps(
            {
                "Records": [
                    {
                        "s3": {
                            "object": {
                                "key": "incoming/speedy/race+Delivered.csv",
                                "eTag": first["ETag"].strip('"'),
                            }
                        }
                    }
                ]
            }
        )
        record = json.loads(with_version_ids(s3, body))["Records"][0]
        assert record["s3"]["object"]["versionId"] == first["VersionId"]
        assert with_version_ids(s3, "not json") == "not json"


def _versions(s3: Any) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    from cardstatus_dev.local import LOCAL_BUCKET

    listed = s3.list_object_versions(Bucket=LOCAL_BUCKET)
    versions = [
        (v["Key"], v["VersionId"], v["ETag"], v["LastModified"], v["IsLatest"], v["Size"])
        for v in listed.get("Versions", [])
    ]
    markers = [
        (m["Key"], m["VersionId"], m["LastModified"], m["IsLatest"])
        for m in listed.get("DeleteMarkers", [])
    ]
    return versions, markers


def test_local_bucket_survives_a_restart_with_its_version_ids(tmp_path: Path) -> None:
    """F4: uploads, overwrites, delete markers and reports come back after a restart with
    their version ids, ETags, times and metadata (the database and the reports name those
    version ids), and the uploads the database has no file for are named for a new ingest."""
    import boto3
    from moto import mock_aws

    from cardstatus.s3ingest import s3_key_from_event
    from cardstatus_dev.local import (
        LOCAL_BUCKET,
        BucketMirror,
        not_ingested,
        s3_event_body,
        with_version_ids,
    )

    def bucket() -> Any:
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=LOCAL_BUCKET)
        s3.put_bucket_versioning(Bucket=LOCAL_BUCKET, VersioningConfiguration={"Status": "Enabled"})
        return s3

    key = "incoming/acme/x Delivered.csv"
    with mock_aws():
        s3 = bucket()
        first = s3.put_object(Bucket=LOCAL_BUCKET, Key=key, Body=b"v1")
        s3.put_object(
            Bucket=LOCAL_BUCKET,
            Key=key,
            Body=b"v2",
            Metadata={"retry": "1"},
            ContentType="text/csv",
        )
        s3.delete_object(Bucket=LOCAL_BUCKET, Key=key)
        s3.put_object(Bucket=LOCAL_BUCKET, Key=f"reports/{key}.json", Body=b"{}")
        gone = s3.put_object(Bucket=LOCAL_BUCKET, Key="incoming/acme/gone.csv", Body=b"x")
        mirror = BucketMirror(tmp_path)
        assert mirror.save() == 4
        s3.delete_object(
            Bucket=LOCAL_BUCKET, Key="incoming/acme/gone.csv", VersionId=gone["VersionId"]
        )
        assert mirror.save() == 0  # nothing new; the version deleted for good is dropped
        assert len(list((tmp_path / LOCAL_BUCKET / "objects").iterdir())) == 3
        before = _versions(s3)

    with mock_aws():  # a new moto: empty
        s3 = bucket()
        restored = BucketMirror(tmp_path).restore()
        assert _versions(s3) == before
        assert next(v["version_id"] for v in restored if v["key"] == key) == first["VersionId"]
        v2 = s3.get_object(Bucket=LOCAL_BUCKET, Key=key, VersionId=before[0][0][1])
        assert v2["Body"].read() == b"v2" and v2["Metadata"] == {"retry": "1"}
        assert v2["ContentType"] == "text/csv"
        assert BucketMirror(tmp_path).save() == 0  # restoring wrote nothing new

    pending = not_ingested(restored, {(key, first["VersionId"])}, "incoming/")
    assert [(v["key"], v["version_id"]) for v in pending] == [(key, before[0][0][1])]
    body = s3_event_body(pending[0])
    obj = json.loads(body)["Records"][0]["s3"]["object"]
    assert s3_key_from_event(obj["key"]) == key and obj["versionId"] == pending[0]["version_id"]
    assert with_version_ids(None, body) == body  # it names its version already


def test_a_damaged_local_bucket_folder_is_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cardstatus_dev.local import LOCAL_BUCKET, BucketMirror

    (tmp_path / LOCAL_BUCKET).mkdir()
    (tmp_path / LOCAL_BUCKET / "manifest.json").write_text("{not json")
    mirror = BucketMirror(tmp_path)
    assert mirror.restore() == [] and mirror.broken
    assert mirror.save() == 0
    assert (tmp_path / LOCAL_BUCKET / "manifest.json").read_text() == "{not json"
    assert "leaving that folder untouched" in capsys.readouterr().err


def test_a_report_cut_off_by_the_stop_is_found(tmp_path: Path) -> None:
    """The stop came between a file's commit and its report: its report under reports/ is
    missing, or still the one of the key's previous file."""
    from datetime import datetime

    from cardstatus_dev.local import stale_reports

    def version(key: str, vid: str, second: int, body: bytes = b"") -> dict[str, Any]:
        path = tmp_path / vid
        path.write_bytes(body)
        return {
            "key": key,
            "version_id": vid,
            "last_modified": datetime(2026, 1, 1, 0, 0, second),
            "path": path,
        }

    a, b, c = "incoming/acme/a.csv", "incoming/acme/b.csv", "incoming/acme/c.csv"
    restored = [
        version(a, "a1", 1),
        version(f"reports/{a}.json", "ra1", 2, b'{"file_id": 1}'),
        version(a, "a2", 3),  # committed as file 3, its report never written
        version(b, "b1", 4),
        version(f"reports/{b}.json", "rb1", 5, b'{"file_id": 2}'),
        version(c, "c1", 6),  # file 4, no report at all
        version("incoming/acme/d.csv", "d1", 7),  # not ingested: not a report question
    ]
    ingested = {(a, "a1"): 1, (b, "b1"): 2, (a, "a2"): 3, (c, "c1"): 4}
    assert stale_reports(restored, ingested, "incoming/", "reports/") == {a: 3, c: 4}


@pytest.mark.parametrize("suffixes", [None, [".csv", ".CSV"]])
def test_cdk_json_with_or_without_csv_suffixes(tmp_path: Path, suffixes: list[str] | None) -> None:
    """The local notification is on the incoming prefix only, whether or not cdk.json still
    lists csvSuffixes (the stack dropped them: every object under incoming/ gets a report)."""
    from cardstatus_dev.local import shared_settings

    bucket: dict[str, Any] = {"incomingPrefix": "in/", "reportsPrefix": "out/"}
    if suffixes:
        bucket["csvSuffixes"] = suffixes
    shared = {"bucket": bucket, "queue": {"maxReceiveCount": 3, "batchSize": 2}}
    (tmp_path / "cdk.json").write_text(json.dumps({"context": {"cardstatus:shared": shared}}))
    qs = shared_settings(tmp_path)
    assert (qs.incoming_prefix, qs.reports_prefix, qs.max_receive_count, qs.batch_size) == (
        "in/",
        "out/",
        3,
        2,
    )


def test_each_upload_of_the_same_bytes_is_its_own_version_in_the_notification() -> None:
    """B3: moto's S3 notifications name their object version, as AWS's do, so a re-upload of
    voided bytes is a new version (applied at once), not a redelivery of the voided one."""
    import boto3
    from moto import mock_aws

    from cardstatus_dev.local import (
        LOCAL_BUCKET,
        notifications_name_their_version,
        with_version_ids,
    )

    assert notifications_name_their_version()
    assert notifications_name_their_version()  # once is enough: not wrapped twice
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue = sqs.create_queue(QueueName="q")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
        s3.create_bucket(Bucket=LOCAL_BUCKET)
        s3.put_bucket_versioning(Bucket=LOCAL_BUCKET, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_notification_configuration(
            Bucket=LOCAL_BUCKET,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {"QueueArn": arn["Attributes"]["QueueArn"], "Events": ["s3:ObjectCreated:*"]}
                ]
            },
        )
        key = "incoming/speedy/voidtest Returned.csv"
        body = b"Card ID,Phone,Timestamp\nVDT001,0501116601,06-12-2026 08:40\n"
        puts = [s3.put_object(Bucket=LOCAL_BUCKET, Key=key, Body=body) for _ in range(2)]
        messages: list[dict[str, Any]] = []
        while len(messages) < 2:
            got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
            messages += [m for m in got if "Records" in json.loads(m["Body"])]  # not TestEvent
        sent = [json.loads(m["Body"])["Records"][0]["s3"]["object"] for m in messages]
        assert sorted(o["versionId"] for o in sent) == sorted(p["VersionId"] for p in puts)
        assert len({o["eTag"] for o in sent}) == 1  # same bytes, two versions
        # the fallback leaves a named version alone
        for message in messages:
            assert with_version_ids(s3, message["Body"]) == message["Body"]
