"""(3, continued) Faults that need more of AWS: the database password rotated mid-run (moto
Secrets Manager + a real role whose password changes with ALTER ROLE), and poison messages
through moto SQS with a redrive policy, ending in the DLQ while good messages commit once."""

from __future__ import annotations

import contextlib
import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import psycopg2
import pytest
import rel_support as rs

from cardstatus import config
from cardstatus import db as dbmod

GOOD = b"Card ID,User contact,Timestamp\nZYW8827,0585949014,2024-03-05T06:00:00Z\n"


def _exec(url: str, sql: str, *args: Any) -> None:
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql, args or None)
    conn.close()


@pytest.fixture
def password_role(pg_admin_url: str, db_url: str) -> Any:
    """A LOGIN role that must authenticate with a password (a pg_hba line just for it)."""
    role = f"cs_rot_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(pg_admin_url)
    with admin.cursor() as cur:
        cur.execute("SHOW hba_file")
        hba = Path(cur.fetchone()[0])
    admin.close()
    if not hba.is_file() or not hba.stat().st_mode & 0o200:
        pytest.skip("needs the embedded server (pg_hba.conf writable)")
    original = hba.read_text()
    _exec(pg_admin_url, f"CREATE ROLE {role} LOGIN PASSWORD 'old-secret-1'")
    _exec(db_url, f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}")
    _exec(db_url, f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}")
    hba.write_text(f"local all {role} scram-sha-256\n{original}")
    _exec(pg_admin_url, "SELECT pg_reload_conf()")
    try:
        yield role
    finally:
        hba.write_text(original)
        _exec(pg_admin_url, "SELECT pg_reload_conf()")
        _exec(db_url, f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
        _exec(db_url, f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {role}")
        with contextlib.suppress(psycopg2.Error):
            _exec(pg_admin_url, f"DROP ROLE {role}")


def _notify(app: Any, key: str, receives: int = 1) -> list[dict[str, str]]:
    event = rs.sqs_event([("m-1", rs.s3_notification(rs.BUCKET, key), receives)])
    return app.handler(event, rs.FakeContext())["batchItemFailures"]


@pytest.mark.timeout(120)
def test_password_rotated_mid_run_rereads_the_secret_once(
    ingest_app: Any,
    s3: Any,
    db: Any,
    db_url: str,
    pg_admin_url: str,
    password_role: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    params = psycopg2.extensions.parse_dsn(db_url)
    sm = boto3.client("secretsmanager", region_name="us-east-1")

    def secret(password: str) -> str:
        return json.dumps(
            {
                "host": params["host"],
                "port": int(params.get("port", 5432)),
                "username": password_role,
                "password": password,
                "dbname": params["dbname"],
            }
        )

    arn = sm.create_secret(
        Name=f"cardstatus/db/{password_role}", SecretString=secret("old-secret-1")
    )["ARN"]
    monkeypatch.delenv("DATABASE_URL")
    monkeypatch.setenv("DB_SECRET_ARN", arn)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    config.reset_settings_cache()
    dbmod._secret_cache.clear()
    ingest_app.DB.reset_settings(None)
    reads: list[bool] = []
    real_read = dbmod._read_secret

    def counting_read(arn: str, region: str | None, refresh: bool = False) -> dict[str, Any]:
        reads.append(refresh)
        return real_read(arn, region, refresh)

    monkeypatch.setattr(dbmod, "_read_secret", counting_read)

    for i in range(3):
        s3.put_object(
            Bucket=rs.BUCKET,
            Key=f"incoming/acme/r{i} - pickup.csv",
            Body=GOOD + b"X%d,,2024-03-05T07:00:00Z\n" % i,
        )
    assert _notify(ingest_app, "incoming/acme/r0 - pickup.csv") == []
    assert reads == [False]
    with ingest_app.DB.get().cursor() as cur:
        cur.execute("SELECT current_user")
        assert cur.fetchone()[0] == password_role
    ingest_app.DB.get().commit()

    # Rotation: the database gets the new password and the secret follows; the warm container
    # still has the old password cached and its connection is recycled.
    _exec(pg_admin_url, f"ALTER ROLE {password_role} PASSWORD 'new-secret-2'")
    sm.put_secret_value(SecretId=arn, SecretString=secret("new-secret-2"))
    rs.terminate(db, ingest_app.DB.get().get_backend_pid())
    ingest_app.DB.discard()
    assert _notify(ingest_app, "incoming/acme/r1 - pickup.csv") == []
    assert reads == [False, False, True]  # cached (old) → rejected → re-read once

    # Rotation half-done: the database already has a newer password, the secret not yet.
    _exec(pg_admin_url, f"ALTER ROLE {password_role} PASSWORD 'newer-secret-3'")
    ingest_app.DB.discard()
    rs.count("faults_injected")
    failures = _notify(ingest_app, "incoming/acme/r2 - pickup.csv")
    assert failures == [{"itemIdentifier": "m-1"}]
    assert reads[-2:] == [False, True]  # one re-read, no loop
    report = json.loads(
        s3.get_object(Bucket=rs.BUCKET, Key="reports/incoming/acme/r2 - pickup.csv.json")[
            "Body"
        ].read()
    )
    assert report["outcome"] == "error"
    assert "password authentication failed" in report["reason"]
    sm.put_secret_value(SecretId=arn, SecretString=secret("newer-secret-3"))
    assert _notify(ingest_app, "incoming/acme/r2 - pickup.csv", receives=2) == []
    assert rs.table_count(db, "ingested_file") == 3
    out = capsys.readouterr()
    for password in ("old-secret-1", "new-secret-2", "newer-secret-3"):
        assert password not in out.out + out.err + json.dumps(report)


@pytest.mark.timeout(180)
def test_poison_messages_end_in_the_dlq_and_good_files_commit_once(
    ingest_app: Any, s3: Any, db: Any
) -> None:
    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq_url = sqs.create_queue(QueueName="cardstatus-ingest-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    max_receives = 3
    queue_url = sqs.create_queue(
        QueueName="cardstatus-ingest",
        Attributes={
            "VisibilityTimeout": "0",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)}
            ),
        },
    )["QueueUrl"]

    good = [f"incoming/acme/good{i} - delivered.csv" for i in range(6)]
    for i, key in enumerate(good):
        s3.put_object(
            Bucket=rs.BUCKET, Key=key, Body=b"Card ID,Timestamp\nG%d,2024-03-05T06:00:00Z\n" % i
        )
    broken_key = "incoming/acme/unreadable - delivered.csv"
    s3.put_object(Bucket=rs.BUCKET, Key=broken_key, Body=GOOD * 10)
    bodies = [rs.s3_notification(rs.BUCKET, k) for k in good]
    poison = [
        "this is not json",
        json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": {}}]}),
        rs.s3_notification(rs.BUCKET, broken_key),  # every read of it fails half-way
    ]
    for body in bodies[:3] + poison + bodies[3:] + bodies[:2]:  # two good ones sent twice
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)

    class AlwaysFailing:
        def __init__(self, real: Any) -> None:
            self._real = real
            self.exceptions = real.exceptions

        def __getattr__(self, name: str) -> Any:
            return getattr(self._real, name)

        def get_object(self, **kwargs: Any) -> Any:
            obj = self._real.get_object(**kwargs)
            if kwargs["Key"] == broken_key:
                data = obj["Body"].read()
                obj["Body"] = rs.RaisingBody(data, len(data) // 2)
            return obj

    ingest_app._s3 = AlwaysFailing(s3)
    invocations = 0
    for _ in range(40):
        got = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=4,
            AttributeNames=["All"],
            VisibilityTimeout=0,
        ).get("Messages", [])
        if not got:
            break
        event = rs.sqs_event(
            [
                (m["MessageId"], m["Body"], int(m["Attributes"]["ApproximateReceiveCount"]))
                for m in got
            ]
        )
        invocations += 1
        result = ingest_app.handler(event, rs.FakeContext())
        failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
        for m in got:
            if m["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
    rs.count("sqs_invocations", invocations)
    rs.count("faults_injected", len(poison))

    dead = []
    for _ in range(5):
        batch = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            break
        dead += [m["Body"] for m in batch]
        for m in batch:
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=m["ReceiptHandle"])
    assert sorted(dead) == sorted(poison)
    with db.cursor() as cur:
        cur.execute(
            "SELECT object_key, outcome::text, count(*) FROM ingested_file GROUP BY 1, 2 ORDER BY 1"
        )
        files = cur.fetchall()
    db.commit()
    assert files == [(k, "applied", 1) for k in sorted(good)]
    assert rs.table_count(db, "card_event") == len(good)
    report = json.loads(
        s3.get_object(Bucket=rs.BUCKET, Key=f"reports/{broken_key}.json")["Body"].read()
    )
    assert report["outcome"] == "error" and report["attempt"] == max_receives
    assert "ConnectionResetError" in report["reason"]
