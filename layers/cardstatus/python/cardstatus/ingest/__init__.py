"""Ingestion of partner files: rows (pure normaliser), copy (COPY plumbing), report (typed
report), identity (bytes + meaning), limits, pipeline (the phases)."""

from cardstatus.ingest.pipeline import (
    CONFLICT_ERRORS,
    ingest,
    ingest_path,
    ingest_retrying,
    record_rejected,
)
from cardstatus.ingest.report import FileOutcome, FileReport, SourceInfo

__all__ = [
    "CONFLICT_ERRORS",
    "FileOutcome",
    "FileReport",
    "SourceInfo",
    "ingest",
    "ingest_path",
    "ingest_retrying",
    "record_rejected",
]
