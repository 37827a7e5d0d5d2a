"""`cardstatus local`: the whole service on this machine, on real parts.

PostgreSQL (embedded unless DATABASE_URL/--database-url), moto in server mode as S3 + SQS
(+ EventBridge for status-change events, see local_events),
a poller that hands SQS batches to the real ingest handler exactly as Lambda's event source
mapping would (batches, partial failures, visibility timeout, DLQ after maxReceiveCount), and
the real API handler on http://127.0.0.1:3000. Bucket, queue and notification settings come
from cdk.json, the same source the CDK stack reads.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


@dataclass
class _Context:
    """The parts of a Lambda context the handlers use."""

    deadline: float
    function_name: str = "cardstatus-ingest-local"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:local"
    aws_request_id: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


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

    def __init__(self, aws: LocalAws, qs: QueueSettings, timeout_s: int = 300) -> None:
        super().__init__(name="ingest-poller", daemon=True)
        self.aws = aws
        self.qs = qs
        self.timeout_s = timeout_s
        self.stopping = threading.Event()
        # Imported and created here, in the caller's thread: importing Powertools from two
        # threads at once (this handler and the API's) can fail on a partly initialised
        # module, and boto3's default session is not safe to share while creating clients.
        self.handler = import_function("ingest").handler
        self.sqs = aws.client("sqs")
        self.s3 = aws.client("s3")

    def run(self) -> None:
        sqs, s3 = self.sqs, self.s3
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
            for message in messages:
                message["Body"] = with_version_ids(s3, message["Body"])
            event = lambda_sqs_event(messages, self.aws.queue_arn)
            context = _Context(
                deadline=time.monotonic() + self.timeout_s, aws_request_id=str(uuid.uuid4())
            )
            result = self.handler(event, context)
            failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
            for message in messages:
                if message["MessageId"] not in failed:
                    sqs.delete_message(
                        QueueUrl=self.aws.queue_url, ReceiptHandle=message["ReceiptHandle"]
                    )
                self._announce(s3, message, message["MessageId"] in failed)

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


def with_version_ids(s3: Any, body: str) -> str:
    """The S3 event message body with each record's object `versionId` filled in, as AWS sends
    it: moto's events lack it, so the handler would read the latest version and an object
    overwritten before the poller got to its first event would never have that first version
    ingested. The version is the one whose ETag is the event's."""
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
    qs = shared_settings()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=args.s3_port, verbose=False)
    poller: IngestPoller | None = None
    events: LocalEvents | None = None
    api: Any = None
    moto_started = False
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
        notify_on_incoming(aws, qs)
        # Both handler modules are imported here, one after the other, before any thread runs.
        api = make_server(args.host, args.port)
        poller = IngestPoller(aws, qs)
        events = LocalEvents(aws.client, import_function("sweeper").handler)
        poller.start()
        events.start()
        threading.Thread(target=api.serve_forever, name="api", daemon=True).start()
        _print_banner(args, aws, qs, endpoint, db_url, time.monotonic() - started)
        if not args.no_samples and _database_is_empty(db_url):
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
        if moto_started:
            moto.stop()
        stop_embedded()
        if isinstance(sys.stdout, MetricsToFile):
            sys.stdout.close()
        sys.stdout = console
    return 0


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
  S3 + SQS     {endpoint}   (moto; credentials: any)
  bucket       s3://{LOCAL_BUCKET}/
               uploads under {qs.incoming_prefix}<partner>/, reports under {qs.reports_prefix}
  upload       aws --endpoint-url {endpoint} s3 cp file.csv s3://{LOCAL_BUCKET}/{qs.incoming_prefix}acme/
  reports      aws --endpoint-url {endpoint} s3 ls --recursive s3://{LOCAL_BUCKET}/{qs.reports_prefix}
  queue        {aws.queue_url} (DLQ after {qs.max_receive_count} receives: {aws.dlq_url})
  events       EventBridge bus {LOCAL_BUS} (moto): one `event …` line each below;
               `cardstatus events` lists them all
  database     {_describe_db(db_url)}
  console      {api_url}/console   (files, reports, stuck cards, card lookup)
  metrics      {qs_metrics_hint}
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
