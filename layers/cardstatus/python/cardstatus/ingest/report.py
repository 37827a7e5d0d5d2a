"""A file's report: typed while the pipeline builds it, JSON (`to_json()`) where it is stored
(ingested_file.report), written to S3 (reports/<key>.json) and printed by the CLI."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Any


class FileOutcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE_FILE = "duplicate_file"
    REJECTED_FILE = "rejected_file"
    IN_PROGRESS = "in_progress"  # stored while the file is read; never a final report


@dataclass(frozen=True)
class SourceInfo:
    """Where a file came from. bucket/version_id/etag are None for local files."""

    key: str
    partner: str
    bucket: str | None = None
    version_id: str | None = None
    etag: str | None = None
    size_bytes: int | None = None

    @property
    def name(self) -> str:
        return PurePosixPath(self.key).name

    def identity(self) -> dict[str, Any]:
        """The object's identity: a redelivery has the same."""
        return {
            "bucket": self.bucket,
            "key": self.key,
            "version_id": self.version_id,
            "etag": self.etag,
        }


@dataclass
class Counts:
    """rows = accepted + duplicate + rejected, always."""

    rows: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    warnings: int = 0

    def to_json(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "accepted": self.accepted,
            "duplicate": self.duplicate,
            "rejected": self.rejected,
            "warnings": self.warnings,
        }


class Timer:
    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.marks: dict[str, float] = {}
        self._last = self.started

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.marks[name] = round((now - self._last) * 1000, 1)
        self._last = now

    def total_ms(self) -> int:
        return int((time.perf_counter() - self.started) * 1000)

    def timings(self) -> dict[str, float]:
        return {**self.marks, "total_ms": self.total_ms()}


@dataclass
class FileReport:
    """Everything a file's report says. Optional fields are left out of the JSON when unset."""

    source: SourceInfo
    started_at: datetime
    outcome: FileOutcome = FileOutcome.APPLIED
    reason: str | None = None
    container: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    event_type: str | None = None
    sha256: str | None = None
    meaning_key: str | None = None
    size_bytes: int | None = None
    file_id: int | None = None
    duplicate_of: dict[str, Any] | None = None
    counts: Counts = field(default_factory=Counts)
    cards_touched: int | None = None
    conflicts: int | None = None
    status_changes: int | None = None
    outbox: dict[str, int | None] | None = None
    rejects: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    warning_groups: list[dict[str, Any]] = field(default_factory=list)
    finished_at: datetime | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "file": {
                "bucket": self.source.bucket,
                "key": self.source.key,
                "version_id": self.source.version_id,
                "etag": self.source.etag,
                "partner": self.source.partner,
            },
            "started_at": self.started_at.isoformat(),
            "outcome": self.outcome.value,
        }
        optional = {
            "reason": self.reason,
            "container": self.container,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "event_type": self.event_type,
            "sha256": self.sha256,
            "meaning_key": self.meaning_key,
            "size_bytes": self.size_bytes,
            "file_id": self.file_id,
            "duplicate_of": self.duplicate_of,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        out["counts"] = self.counts.to_json()
        applied = {
            "cards_touched": self.cards_touched,
            "conflicts": self.conflicts,
            "status_changes": self.status_changes,
            "outbox": self.outbox,
        }
        out.update({k: v for k, v in applied.items() if v is not None})
        out["rejects"] = self.rejects
        out["rejects_listed"] = len(self.rejects)
        out["warnings"] = self.warnings
        out["warning_groups"] = self.warning_groups
        out["finished_at"] = (self.finished_at or datetime.now(UTC)).isoformat()
        out["timings"] = self.timings
        return out
