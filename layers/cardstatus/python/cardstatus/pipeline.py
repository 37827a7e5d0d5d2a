"""Compatibility: the ingestion pipeline lives in the `cardstatus.ingest` package now."""

from cardstatus.ingest.pipeline import (
    CONFLICT_ERRORS,
    ingest,
    ingest_path,
    ingest_retrying,
    record_rejected,
)
from cardstatus.ingest.report import SourceInfo
from cardstatus.s3ingest import partner_from_key, s3_key_from_event

__all__ = [
    "CONFLICT_ERRORS",
    "SourceInfo",
    "ingest",
    "ingest_path",
    "ingest_retrying",
    "partner_from_key",
    "record_rejected",
    "s3_key_from_event",
]
