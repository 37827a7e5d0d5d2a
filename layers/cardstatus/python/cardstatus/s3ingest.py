"""One S3 object through the pipeline: fetch (streamed), ingest, publish the report."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from botocore.exceptions import ClientError
from psycopg2.extensions import connection as Connection

from cardstatus.config import Settings
from cardstatus.ingest import SourceInfo, ingest_retrying, record_rejected

logger = logging.getLogger(__name__)


def s3_key_from_event(raw_key: str) -> str:
    """S3 notifications URL-encode keys, with '+' for spaces."""
    return unquote_plus(raw_key)


def partner_from_key(key: str, incoming_prefix: str = "incoming/") -> str:
    """incoming/<partner>/… → partner; 'default' when the key has no partner segment."""
    if key.startswith(incoming_prefix):
        parts = key[len(incoming_prefix) :].split("/")
        if len(parts) > 1 and parts[0].strip():
            return parts[0].strip()
    return "default"


@dataclass(frozen=True)
class S3ObjectRef:
    """An object named by an S3 event notification (key already URL-decoded)."""

    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None


def report_key(key: str, reports_prefix: str = "reports/") -> str:
    return f"{reports_prefix}{key}.json"


def put_report(s3: Any, bucket: str, key: str, report: dict[str, Any], cfg: Settings) -> str:
    target = report_key(key, cfg.reports_prefix)
    s3.put_object(
        Bucket=bucket,
        Key=target,
        Body=json.dumps(report, indent=2, default=str).encode(),
        ContentType="application/json",
    )
    return target


def ingest_s3_object(
    conn: Connection,
    s3: Any,
    ref: S3ObjectRef,
    cfg: Settings,
    progress_conn: Callable[[], Connection] | None = None,
) -> dict[str, Any]:
    """Ingest one object and write its report to reports/<key>.json in the same bucket.
    `progress_conn` opens the second connection that writes the rows read so far (pipeline).

    A redelivery (report["redelivery"] is True) answers the stored report and writes nothing:
    its S3 report is already there.
    """
    partner = partner_from_key(ref.key, cfg.incoming_prefix)
    get_args: dict[str, Any] = {"Bucket": ref.bucket, "Key": ref.key}
    if ref.version_id:
        get_args["VersionId"] = ref.version_id
    try:
        obj = s3.get_object(**get_args)
    except ClientError as exc:
        # Deleted before it was read: NoSuchKey (delete marker, unversioned bucket), or
        # NoSuchVersion when the event's version itself was deleted. Anything else is retried.
        if exc.response.get("Error", {}).get("Code") not in {"NoSuchKey", "NoSuchVersion"}:
            raise
        source = SourceInfo(
            key=ref.key,
            partner=partner,
            bucket=ref.bucket,
            version_id=ref.version_id,
            etag=ref.etag,
            size_bytes=ref.size,
        )
        report = record_rejected(
            conn, source, "object no longer exists (deleted before it was read)"
        )
        if not report.get("redelivery"):
            put_report(s3, ref.bucket, ref.key, report, cfg)
        return report
    source = SourceInfo(
        key=ref.key,
        partner=partner,
        bucket=ref.bucket,
        version_id=obj.get("VersionId") or ref.version_id,
        etag=(obj.get("ETag") or ref.etag or "").strip('"') or None,
        size_bytes=obj.get("ContentLength", ref.size),
    )
    bodies = [obj["Body"]]  # the first read reuses the response that gave the metadata

    def open_body() -> Any:
        body = (
            bodies.pop()
            if bodies
            else s3.get_object(**{**get_args, **_same_version(source)})["Body"]
        )
        return closing(body)

    report = ingest_retrying(conn, open_body, source, cfg, progress_conn=progress_conn)
    if not report.get("redelivery"):
        put_report(s3, ref.bucket, ref.key, report, cfg)
    return report


def _same_version(source: SourceInfo) -> dict[str, str]:
    """A re-read must see the very bytes of the first read."""
    if source.version_id:
        return {"VersionId": source.version_id}
    return {"IfMatch": f'"{source.etag}"'} if source.etag else {}


def failure_report(ref: S3ObjectRef, reason: str, attempt: int | None) -> dict[str, Any]:
    """Report for a file whose processing failed (it will be retried, then land in the DLQ)."""
    return {
        "file": {"bucket": ref.bucket, "key": ref.key, "version_id": ref.version_id},
        "outcome": "error",
        "reason": reason,
        "attempt": attempt,
        "note": "processing failed and will be retried; after the last attempt the message "
        "moves to the dead-letter queue",
    }
