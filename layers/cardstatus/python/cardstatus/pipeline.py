"""Ingestion pipeline for one partner file, top to bottom:

    already seen? → decode → dialect → header map → row normalise → COPY to staging, chunk by
    chunk, each chunk's new events inserted → same bytes applied before? → card projection
    → report

One database transaction per file: either every accepted row of the file is applied together
with its report, or nothing is. Memory stays flat: rows stream from the source into COPY, one
chunk at a time. A reader thread decodes and normalises the next chunk while the database
inserts the previous one (the connection is used by the calling thread only).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import random
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote_plus

import psycopg2.errors
from psycopg2.extensions import connection as Connection

from cardstatus.config import PartnerSettings, Settings
from cardstatus.containers import RecordSource, open_records
from cardstatus.decode import BrokenRecord, Readable
from cardstatus.model import CardStatus, FileRejected, RowError, redact_phones
from cardstatus.normalise import (
    HeaderMap,
    TimestampParser,
    classify_reason,
    clean_comment,
    find_header,
    normalise_card_id,
    normalise_phone,
    vocabulary,
)
from cardstatus.sql import ingest as sql

logger = logging.getLogger(__name__)

REPORT_DETAIL_LIMIT = 500  # rejects/warnings listed in the report; all rejects go to rejected_row
COPY_BATCH_ROWS = 2000  # rows per COPY text block
CHUNK_BLOCKS = 10  # blocks per chunk: staged and inserted into card_event together
PROGRESS_EVERY_ROWS = 50_000
MEMO_MAX = 4096  # distinct status / comment cells remembered per file


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


@dataclass
class RowOutcomes:
    """Counts and details gathered while rows stream into COPY."""

    rows: int = 0
    valid: int = 0
    rejected: int = 0
    warnings: int = 0
    reject_details: list[dict[str, Any]] = field(default_factory=list)
    warning_details: list[dict[str, Any]] = field(default_factory=list)
    rejects_file: Any = None  # spooled TSV of every reject, COPYed into rejected_row

    def reject(self, line: int, reason: str) -> None:
        reason = redact_phones(reason)
        self.rejected += 1
        if len(self.reject_details) < REPORT_DETAIL_LIMIT:
            self.reject_details.append({"line": line, "reason": reason})
        if self.rejects_file is None:
            # Closed by ingest() in its finally block.
            self.rejects_file = tempfile.SpooledTemporaryFile(max_size=1 << 20, mode="w+b")  # noqa: SIM115
        self.rejects_file.write(f"{line}\t{_copy_escape(reason)}\n".encode())

    def reject_broken(self, line: int, reason: str) -> None:
        """A row whose quoted field ran into the following rows (decode.BrokenRecord)."""
        self.rows += 1
        self.reject(line, reason)

    def warn(self, line: int, warning: str) -> None:
        self.warnings += 1
        if len(self.warning_details) < REPORT_DETAIL_LIMIT:
            self.warning_details.append({"line": line, "warning": redact_phones(warning)})


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_escape(value: str) -> str:
    return value.translate(_COPY_ESCAPES)


def _copy_text(value: str | None) -> str:
    return "\\N" if value is None else _copy_escape(value)


class _ChunkStream:
    """File-like view of an iterator of byte chunks, for psycopg2's copy_expert."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""
        # psycopg2 turns an exception raised in read() into QueryCanceled; keep the original
        # (FileRejected from the decoder, an S3 read error) so ingest() can re-raise it.
        self.error: BaseException | None = None

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            try:
                chunk = next(self._chunks, None)
            except BaseException as exc:
                self.error = exc
                raise
            if chunk is None:
                break
            self._buffer += chunk
        if size < 0:
            out, self._buffer = self._buffer, b""
        else:
            out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out

    readline = read


# Complexity gate exemption: the per-row hot loop stays one function (local-variable binding
# and memos are the measured fast path, see bench/); splitting it costs speed. The rest of
# pipeline.py is being split into phases separately (issue 13, pipeline step).
def normalised_rows(  # noqa: C901, PLR0912
    records: Iterator[tuple[int, list[str]]],
    headers: HeaderMap,
    file_status: CardStatus | None,
    partner: PartnerSettings,
    reason_keywords: dict[str, str],
    outcomes: RowOutcomes,
    progress: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """Normalise each data record; yield COPY text-format lines in batches; record rejects.

    The per-row loop is the hot path: helpers are bound to locals, and the few distinct
    status and comment cells of a file are normalised once each (memo dicts, bounded).
    """
    parse_time = TimestampParser(partner.timezone, partner.day_first).parse
    status_of = vocabulary(partner.status_words).from_value
    region = partner.phone_region
    card_col, ts_col = headers.card_id, headers.timestamp
    phone_col, comment_col = headers.phone, headers.comment
    row_id_col, status_col = headers.row_id, headers.status
    needed = max(card_col, ts_col)
    exception = CardStatus.DELIVERY_EXCEPTION
    statuses: dict[str, CardStatus | str | None] = {}  # status cell → event type or reason
    comments: dict[tuple[str, bool], tuple[str, str]] = {}  # (cell, is exception) → COPY text
    escape = _COPY_ESCAPES
    batch: list[str] = []
    append = batch.append
    for line, record in records:
        if not record:
            if record.__class__ is BrokenRecord:  # a quote that ran into the next rows
                outcomes.reject_broken(line, record.reason)
            continue  # blank line
        # Blank (or only delimiters and spaces)? A non-blank card id cell answers it cheaply.
        first = record[card_col] if len(record) > needed else ""
        if (not first or first.isspace()) and not any(cell.strip() for cell in record):
            continue
        outcomes.rows += 1
        if progress is not None and outcomes.rows % PROGRESS_EVERY_ROWS == 0:
            progress(outcomes.rows)
        try:
            if len(record) <= needed:
                raise RowError(
                    f"row has {len(record)} field(s); card id and timestamp columns are missing"
                )
            card_id = normalise_card_id(record[card_col])
            occurred_at = parse_time(record[ts_col])
            status = file_status
            if status_col is not None and status_col < len(record):
                cell = record[status_col]
                if cell in statuses:
                    named = statuses[cell]
                else:
                    named = _status_memo(statuses, cell, status_of)
                if named.__class__ is str:
                    raise RowError(named)
                status = named or file_status  # type: ignore[assignment]
            if status is None:
                raise RowError("status is missing or not one of pickup/exception/delivered/return")
            phone = "\\N"
            if phone_col is not None and phone_col < len(record):
                result = normalise_phone(record[phone_col], region)
                if result.e164 is not None:
                    phone = result.e164  # '+' and digits: nothing to escape
                if result.warning:
                    outcomes.warn(line, result.warning)
            comment_reason = _NO_COMMENT_OTHER if status is exception else _NO_COMMENT
            if comment_col is not None and comment_col < len(record):
                key = (record[comment_col], status is exception)
                memo = comments.get(key)
                if memo is None:
                    memo = _comment_reason_text(key[0], key[1], reason_keywords)
                    if len(comments) < MEMO_MAX:
                        comments[key] = memo
                comment_reason = memo
            row_id = "\\N"
            if row_id_col is not None and row_id_col < len(record):
                row_id = record[row_id_col].strip()[:64].translate(escape) or "\\N"
        except RowError as exc:
            outcomes.reject(line, str(exc))
            continue
        outcomes.valid += 1
        # card ids are [A-Za-z0-9_-] and statuses/reasons fixed words: nothing to escape.
        # (_value_ is the enum's plain attribute; .value goes through a slower descriptor.)
        append(
            f"{line}\t{card_id}\t{status._value_}\t{occurred_at.isoformat()}\t{phone}\t"
            f"{comment_reason[0]}\t{comment_reason[1]}\t{row_id}\n"
        )
        if len(batch) >= COPY_BATCH_ROWS:
            yield "".join(batch).encode()
            batch.clear()
    if batch:
        yield "".join(batch).encode()


def _status_memo(
    statuses: dict[str, CardStatus | str | None],
    cell: str,
    status_of: Callable[[str | None], CardStatus | None],
) -> CardStatus | str | None:
    """The event type a status cell names, or the reason it is rejected; remembered (bounded)."""
    try:
        named: CardStatus | str | None = status_of(cell)
    except RowError as exc:  # not tracked, or ambiguous
        named = str(exc)
    if len(statuses) < MEMO_MAX:
        statuses[cell] = named
    return named


_NO_COMMENT = ("\\N", "\\N")
_NO_COMMENT_OTHER = ("\\N", "other")


def _comment_reason_text(
    cell: str, is_exception: bool, reason_keywords: dict[str, str]
) -> tuple[str, str]:
    """COPY text of (comment, reason) for a comment cell: reasons only for exceptions."""
    comment = clean_comment(cell)
    reason = classify_reason(comment, reason_keywords) if is_exception else None
    return _copy_text(comment), _copy_text(reason)


class _ChunkReader(threading.Thread):
    """Decodes and normalises the file in a thread, handing over chunks of COPY text.

    The queue holds at most two chunks, so memory stays bounded; while the calling thread
    waits on the database (psycopg2 releases the GIL), this one parses the next chunk.
    An exception here (FileRejected, an S3 read error) is re-raised by chunks().
    """

    _END = object()

    def __init__(self, rows: Iterator[bytes], finish: Callable[[], None]) -> None:
        super().__init__(name="cardstatus-reader", daemon=True)
        self._rows = rows
        self._finish = finish
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=2)
        self._stopped = threading.Event()

    def run(self) -> None:
        try:
            chunk: list[bytes] = []
            for block in self._rows:
                if self._stopped.is_set():
                    return
                chunk.append(block)
                if len(chunk) >= CHUNK_BLOCKS:
                    self._put(chunk)
                    chunk = []
            if chunk:
                self._put(chunk)
            self._finish()
            self._put(self._END)
        except BaseException as exc:
            self._put(exc)

    def _put(self, item: Any) -> None:
        while not self._stopped.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def chunks(self) -> Iterator[list[bytes]]:
        while True:
            item = self._queue.get()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def stop(self) -> None:
        """Make the thread finish (it checks between blocks) and wait for it."""
        self._stopped.set()
        self.join()


def _warn_skipped_lines(outcomes: RowOutcomes, lines: list[int]) -> None:
    """Title lines above the header (find_header) are a warning."""
    if lines:
        shown = ", ".join(map(str, lines[:5])) + (", …" if len(lines) > 5 else "")
        outcomes.warn(
            lines[0],
            f"{len(lines)} line(s) before the header skipped (title lines?): line(s) {shown}",
        )


def _warn_source(outcomes: RowOutcomes, source: RecordSource) -> None:
    """What the decoder or the container noticed (NUL bytes, extra sheets, hidden gzip)."""
    if source.nul_bytes_removed:
        outcomes.warn(0, f"{source.nul_bytes_removed} NUL byte(s) removed")
    for warning in source.warnings:
        outcomes.warn(0, warning)


class _Timer:
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


def _base_report(source: SourceInfo, started_at: datetime) -> dict[str, Any]:
    return {
        "file": {
            "bucket": source.bucket,
            "key": source.key,
            "version_id": source.version_id,
            "etag": source.etag,
            "partner": source.partner,
        },
        "started_at": started_at.isoformat(),
    }


def _file_params(
    source: SourceInfo,
    report: dict[str, Any],
    sha256: str | None,
    size: int | None,
    event_type: str | None,
    started_at: datetime,
    duration_ms: int,
) -> dict[str, Any]:
    counts = report.get("counts", {})
    return {
        "bucket": source.bucket,
        "key": source.key,
        "version_id": source.version_id,
        "etag": source.etag,
        "sha256": sha256,
        "size_bytes": size,
        "partner": source.partner,
        "event_type": event_type,
        "outcome": report["outcome"],
        "rows_total": counts.get("rows", 0),
        "rows_accepted": counts.get("accepted", 0),
        "rows_duplicate": counts.get("duplicate", 0),
        "rows_rejected": counts.get("rejected", 0),
        "warnings": counts.get("warnings", 0),
        "report": json.dumps(report),
        "started_at": started_at,
        "duration_ms": duration_ms,
    }


# Complexity gate exemption, temporary: ingest() is being split into named phases with a
# typed report separately (issue 13, pipeline step); until then it is one long function.
def ingest(  # noqa: PLR0915
    conn: Connection,
    body: Readable,
    source: SourceInfo,
    cfg: Settings,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Ingest one file; returns its report (also stored in ingested_file).

    Raises only for infrastructure failures (database, I/O); the caller retries those.
    A bad file is not an exception: it returns a `rejected_file` report.
    """
    started_at = datetime.now(UTC)
    timer = _Timer()
    report = _base_report(source, started_at)

    if source.version_id or source.etag:
        with conn.cursor() as cur:
            cur.execute(sql.FIND_SAME_OBJECT, _identity(source))
            seen = cur.fetchone()
        conn.commit()
        if seen is not None:
            logger.info("object already ingested; returning its report", extra={"file_id": seen[0]})
            return dict(seen[2])

    partner = cfg.partner(source.partner)
    outcomes = RowOutcomes()
    csv_source: RecordSource | None = None
    event_type: str | None = None
    try:
        with conn.cursor() as cur:
            if source.size_bytes is not None and source.size_bytes > cfg.max_object_bytes:
                raise FileRejected(f"file is larger than the limit of {cfg.max_object_bytes} bytes")
            cur.execute(sql.TUNE_TRANSACTION)
            cur.execute(sql.CREATE_STAGING)
            csv_source = open_records(body, source.name, cfg.max_object_bytes)
            records = csv_source.records(cfg.max_field_chars)
            headers, skipped = find_header(records)
            csv_source.watch_rows(headers.card_id, headers.timestamp)
            _warn_skipped_lines(outcomes, skipped)
            file_status, why = vocabulary(partner.status_words).file_event_type(source.name)
            if headers.status is None and file_status is None:
                raise FileRejected(f"cannot tell the event type: no Status/Event column, and {why}")
            event_type = file_status.value if headers.status is None and file_status else None
            report.update(
                container=csv_source.container,
                encoding=csv_source.encoding,
                delimiter=csv_source.delimiter,
                event_type=event_type or "from_status_column",
            )
            # The file row comes first: every event references it. Its content fields (sha256,
            # size, counts, report) are filled in at the end.
            cur.execute(
                sql.INSERT_FILE,
                _file_params(
                    source, {**report, "outcome": "applied"}, None, None, event_type, started_at, 0
                ),
            )
            file_id = cur.fetchone()[0]  # type: ignore[index]
            rows = normalised_rows(
                records,
                headers,
                file_status,
                partner,
                dict(cfg.reason_keywords),
                outcomes,
                progress,
            )
            reader = _ChunkReader(rows, csv_source.reader.drain)
            reader.start()
            try:
                chunk_params = {"partner": source.partner, "file_id": file_id}
                for chunk in reader.chunks():
                    cur.copy_expert(sql.COPY_STAGING, _ChunkStream(iter(chunk)), size=1 << 16)
                    cur.execute(sql.APPLY_CHUNK, chunk_params)
            finally:
                reader.stop()
            timer.mark("read_parse_copy_ms")
            _warn_source(outcomes, csv_source)

            sha256 = csv_source.reader.sha256
            size = csv_source.reader.size
            cur.execute(sql.LOCK_CONTENT, {"sha256": sha256})
            cur.execute(sql.FIND_APPLIED_CONTENT, {"sha256": sha256})
            original = cur.fetchone()
            if (
                original is not None
                and source.bucket
                and (original[1], original[2])
                == (
                    source.bucket,
                    source.key,
                )
            ):
                conn.rollback()  # a redelivery of a file already applied under this very key
                return dict(original[3])
            counts = {
                "rows": outcomes.rows,
                "accepted": 0,
                "duplicate": 0,
                "rejected": outcomes.rejected,
                "warnings": outcomes.warnings,
            }
            if original is not None:
                conn.rollback()
                report.update(
                    outcome="duplicate_file",
                    reason="the same bytes were already applied",
                    duplicate_of={
                        "file_id": original[0],
                        "bucket": original[1],
                        "key": original[2],
                    },
                    counts={**counts, "duplicate": outcomes.valid},
                    sha256=sha256,
                    size_bytes=size,
                )
                return _record_final(
                    conn, source, report, sha256, size, event_type, started_at, timer
                )

            report.update(outcome="applied", sha256=sha256, size_bytes=size)
            cur.execute(sql.APPLY_PROJECTION)
            inserted, cards_touched = cur.fetchone()  # type: ignore[misc]
            if outcomes.rejects_file is not None:
                _copy_rejects(cur, file_id, outcomes.rejects_file)
            timer.mark("apply_ms")
            report.update(
                file_id=file_id,
                counts={**counts, "accepted": inserted, "duplicate": outcomes.valid - inserted},
                cards_touched=cards_touched,
                rejects=outcomes.reject_details,
                rejects_listed=len(outcomes.reject_details),
                warnings=outcomes.warning_details,
                finished_at=datetime.now(UTC).isoformat(),
                timings=_timings(timer),
            )
            cur.execute(
                sql.UPDATE_FILE_REPORT,
                {
                    **_file_params(
                        source, report, sha256, size, event_type, started_at, timer.total_ms()
                    ),
                    "id": file_id,
                },
            )
        conn.commit()
        return report
    except FileRejected as exc:
        conn.rollback()
        report.update(
            outcome="rejected_file",
            reason=redact_phones(str(exc)),
            counts={
                "rows": outcomes.rows,
                "accepted": 0,
                "duplicate": 0,
                "rejected": outcomes.rows,
                "warnings": outcomes.warnings,
            },
            rejects=outcomes.reject_details,
            warnings=outcomes.warning_details,
        )
        if csv_source is not None:
            report.update(encoding=csv_source.encoding, delimiter=csv_source.delimiter)
        return _record_final(conn, source, report, None, None, event_type, started_at, timer)
    except BaseException:
        conn.rollback()
        raise
    finally:
        if outcomes.rejects_file is not None:
            outcomes.rejects_file.close()


def record_rejected(conn: Connection, source: SourceInfo, reason: str) -> dict[str, Any]:
    """Report a file rejected before it could be read (missing object, over the size limit)."""
    started_at = datetime.now(UTC)
    report = _base_report(source, started_at)
    report.update(
        outcome="rejected_file",
        reason=redact_phones(reason),
        counts={"rows": 0, "accepted": 0, "duplicate": 0, "rejected": 0, "warnings": 0},
        rejects=[],
        warnings=[],
    )
    return _record_final(conn, source, report, None, source.size_bytes, None, started_at, _Timer())


def _identity(source: SourceInfo) -> dict[str, Any]:
    return {
        "bucket": source.bucket,
        "key": source.key,
        "version_id": source.version_id,
        "etag": source.etag,
    }


def _timings(timer: _Timer) -> dict[str, float]:
    return {**timer.marks, "total_ms": timer.total_ms()}


def _record_final(
    conn: Connection,
    source: SourceInfo,
    report: dict[str, Any],
    sha256: str | None,
    size: int | None,
    event_type: str | None,
    started_at: datetime,
    timer: _Timer,
) -> dict[str, Any]:
    """Store the report of a file that changed no card (duplicate or rejected)."""
    report.setdefault("finished_at", datetime.now(UTC).isoformat())
    report["timings"] = _timings(timer)
    with conn.cursor() as cur:
        if source.version_id or source.etag:
            # Deliveries of one object that ran concurrently: only the first records a report.
            cur.execute(sql.LOCK_OBJECT, {"identity": json.dumps(_identity(source))})
            cur.execute(sql.FIND_SAME_OBJECT, _identity(source))
            seen = cur.fetchone()
            if seen is not None:
                conn.rollback()
                return dict(seen[2])
        cur.execute(
            sql.INSERT_FILE,
            _file_params(source, report, sha256, size, event_type, started_at, timer.total_ms()),
        )
        report["file_id"] = cur.fetchone()[0]  # type: ignore[index]
        cur.execute(
            sql.UPDATE_FILE_REPORT,
            {
                **_file_params(
                    source, report, sha256, size, event_type, started_at, timer.total_ms()
                ),
                "id": report["file_id"],
            },
        )
    conn.commit()
    return report


def _copy_rejects(cur: Any, file_id: int, rejects_file: Any) -> None:
    rejects_file.seek(0)
    prefix = f"{file_id}\t".encode()
    lines = (prefix + line for line in rejects_file)
    cur.copy_expert(sql.COPY_REJECTS, _ChunkStream(lines), size=1 << 16)


# Two files that share events can lock the same event keys in different orders (rows are
# inserted chunk by chunk); PostgreSQL then aborts one. The file is simply read again.
CONFLICT_ERRORS = (psycopg2.errors.DeadlockDetected, psycopg2.errors.SerializationFailure)
CONFLICT_ATTEMPTS = 4


def ingest_retrying(
    conn: Connection,
    open_body: Callable[[], AbstractContextManager[Readable]],
    source: SourceInfo,
    cfg: Settings,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """ingest(), re-reading the file after a deadlock or serialization conflict."""
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        with open_body() as body:
            try:
                return ingest(conn, body, source, cfg, progress)
            except CONFLICT_ERRORS as exc:
                if attempt == CONFLICT_ATTEMPTS:
                    raise
                logger.warning(
                    "transaction conflict with a concurrent file; reading it again",
                    extra={"attempt": attempt, "error": type(exc).__name__},
                )
        time.sleep(random.uniform(0.05, 0.25) * attempt)
    raise AssertionError("unreachable")


def ingest_path(
    conn: Connection,
    path: str | os.PathLike[str],
    cfg: Settings,
    partner: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Ingest a local file through the same pipeline (no S3): identity is its content hash."""
    key = os.fspath(path)
    source = SourceInfo(
        key=key,
        partner=partner or "default",
        size_bytes=os.path.getsize(key),
    )
    return ingest_retrying(conn, lambda: open(key, "rb"), source, cfg, progress)
