"""Ingestion of one partner file, in phases:

    same object seen? → open (decode, dialect, header) → stream (normalise in a reader thread;
    per chunk: COPY to staging → rows of cards another partner owns rejected → event_copy →
    merge into card_event) → identity (bytes + meaning: duplicate?) → settle (merge rule,
    conflicting copies) → project (cards with their owner + status outbox) → report

One database transaction per file: either every accepted row of the file is applied together
with its report, or nothing is. Memory stays flat: rows stream from the source into COPY, one
chunk at a time, while the database applies the previous chunk. The SQL and the merge rule
are in cardstatus.sql.ingest.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg2.errors
from psycopg2.extensions import connection as Connection

from cardstatus.config import PartnerSettings, Settings
from cardstatus.containers import RecordSource, open_records
from cardstatus.decode import Readable
from cardstatus.ingest import limits
from cardstatus.ingest.copy import ChunkReader, ChunkStream, copy_chunk
from cardstatus.ingest.identity import meaning_key
from cardstatus.ingest.report import FileOutcome, FileReport, SourceInfo, Timer
from cardstatus.ingest.rows import (
    GAP_DAYS,
    REPORT_DETAIL_LIMIT,
    DateOrderFlip,
    RowOutcomes,
    count_data_rows,
    far_days,
    normalised_rows,
    order_name,
)
from cardstatus.model import CardStatus, FileRejected, redact_phones
from cardstatus.normalise import HeaderMap, find_header, vocabulary
from cardstatus.ownership import foreign_card_reason, owner_group
from cardstatus.partners import ingest_volume_warning
from cardstatus.sql import dates as dates_sql
from cardstatus.sql import erasure as erasure_sql
from cardstatus.sql import ingest as sql
from cardstatus.sql import ownership as owner_sql

logger = logging.getLogger(__name__)


class CardInsertRace(Exception):
    """A card this file changes was created by a concurrent file after this file locked its
    cards: its previous status is unknown here, so the file is read again (like a deadlock)."""


@dataclass
class _File:
    """The state of one file while it goes through the phases."""

    conn: Connection
    body: Readable
    source: SourceInfo
    cfg: Settings
    partner: PartnerSettings
    report: FileReport
    timer: Timer = field(default_factory=Timer)
    outcomes: RowOutcomes = field(default_factory=RowOutcomes)
    csv_source: RecordSource | None = None
    records: Iterator[tuple[int, list[str]]] | None = None
    headers: HeaderMap | None = None
    name_status: CardStatus | None = None
    file_id: int | None = None
    in_progress: bool = False  # file_id is this run's committed in-progress row
    streaming: bool = False
    date_order: DateOrderFlip | None = None  # the line that flipped the partner's date order
    # Rows of cards owned outside this partner's group (line, card id, owner), found per chunk
    # and counted as rejects once the reader thread is done (RowOutcomes is not thread-safe).
    foreign: list[tuple[int, str, str]] = field(default_factory=list)

    def params(self) -> dict[str, Any]:
        return {"partner": self.source.partner, "file_id": self.file_id}

    def group(self) -> list[str]:
        """The partners whose cards this file's partner may report (cardstatus.ownership)."""
        return sorted(owner_group(self.source.partner, self.cfg))


def ingest(
    conn: Connection,
    body: Readable,
    source: SourceInfo,
    cfg: Settings,
    progress: Callable[[int], None] | None = None,
    progress_conn: Callable[[], Connection] | None = None,
    date_order: DateOrderFlip | None = None,
) -> dict[str, Any]:
    """Ingest one file; returns its report (also stored in ingested_file).

    ``date_order``: set when a first reading found a date valid only in the other date order
    (DateOrderFlip); the file is then read in that order. A seekable body is read again here;
    otherwise DateOrderFlip is raised for the caller (ingest_retrying) to open it again.

    Raises only for infrastructure failures (database, I/O); the caller retries those.
    A bad file is not an exception: it returns a `rejected_file` report. A redelivery of an
    object already ingested returns the stored report with `"redelivery": True` (not stored):
    the caller must not count it or publish its report again.

    While the rows are read the file is listed with outcome `in_progress` (its row committed
    before the file's transaction starts); `progress_conn` opens a second connection on which
    the rows read so far are written every PROGRESS_EVERY_ROWS rows (none: only at the end).
    """
    seen = _stored_report_of_same_object(conn, source)
    if seen is not None:
        return seen
    run = _File(
        conn, body, source, cfg, cfg.partner(source.partner), FileReport(source, datetime.now(UTC))
    )
    writer = _ProgressWriter(progress_conn, progress)
    if date_order is not None:
        run.date_order = date_order
        run.partner = dataclasses.replace(run.partner, day_first=not run.partner.day_first)
    try:
        try:
            _open(run)
            _begin(run)
            writer.file_id = run.file_id
            _stream(run, writer)
            return _finish(run)
        except FileRejected as exc:
            conn.rollback()
            return _rejected(run, str(exc), exc.rows_read)
        except DateOrderFlip as flip:
            conn.rollback()
            seekable = getattr(body, "seekable", None)
            if date_order is not None or seekable is None or not seekable():
                raise
            _drop_in_progress(run)  # the second reading starts a row of its own
            again = flip
    except BaseException:
        conn.rollback()
        _drop_in_progress(run)  # the retry starts a row of its own
        raise
    finally:
        writer.close()
        run.outcomes.close()
    body.seek(0)  # type: ignore[attr-defined]
    return ingest(conn, body, source, cfg, progress, progress_conn, again)


class _ProgressWriter:
    """Rows read so far: the caller's callback, and the file's in-progress row updated on a
    second connection (autocommit) while the file's own transaction is open. Best effort:
    a failure here is logged and ends the updates, never the file."""

    def __init__(
        self,
        factory: Callable[[], Connection] | None,
        callback: Callable[[int], None] | None,
    ) -> None:
        self.factory = factory
        self.callback = callback
        self.file_id: int | None = None
        self.conn: Connection | None = None

    def __call__(self, rows: int) -> None:
        if self.factory is not None and self.file_id is not None:
            try:
                if self.conn is None:
                    self.conn = self.factory()
                    self.conn.autocommit = True
                with self.conn.cursor() as cur:
                    cur.execute(sql.SET_PROGRESS, {"rows": rows, "file_id": self.file_id})
            except Exception as exc:  # never fail a file for its progress line
                logger.warning("progress update failed", extra={"error": type(exc).__name__})
                self.factory = None
        if self.callback is not None:
            self.callback(rows)

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = None


def _begin(run: _File) -> None:
    """Commit the file's row as `in_progress` (GET /files lists it while it is read), holding
    a session lock on it; remove in-progress rows of the same object left by a crashed run."""
    params = _file_params(run)
    params["outcome"] = FileOutcome.IN_PROGRESS.value
    params["report"] = json.dumps({**run.report.to_json(), "outcome": "in_progress"})
    with run.conn.cursor() as cur:
        cur.execute(sql.DELETE_STALE_IN_PROGRESS, run.source.identity())
        cur.execute(sql.INSERT_FILE, params)
        run.file_id = cur.fetchone()[0]  # type: ignore[index]
        cur.execute(sql.IN_PROGRESS_LOCK, {"file_id": run.file_id})
    run.conn.commit()
    run.in_progress = True


def _drop_in_progress(run: _File) -> None:
    """Remove this run's in-progress row (it ends without a report of its own). Best effort:
    on a dead connection the next delivery of the object removes it (DELETE_STALE_IN_PROGRESS)."""
    if not run.in_progress or run.conn.closed:
        return
    with contextlib.suppress(psycopg2.Error):
        with run.conn.cursor() as cur:
            cur.execute(sql.DELETE_IN_PROGRESS, {"file_id": run.file_id})
            cur.execute(sql.IN_PROGRESS_UNLOCK, {"file_id": run.file_id})
        run.conn.commit()
    run.in_progress = False


def _stored_report_of_same_object(conn: Connection, source: SourceInfo) -> dict[str, Any] | None:
    if not (source.version_id or source.etag):
        return None
    with conn.cursor() as cur:
        cur.execute(sql.FIND_SAME_OBJECT, source.identity())
        seen = cur.fetchone()
    conn.commit()
    if seen is None:
        return None
    logger.info("object already ingested; returning its report", extra={"file_id": seen[0]})
    return _redelivery(seen[2])


def _redelivery(stored: dict[str, Any]) -> dict[str, Any]:
    return {**stored, "redelivery": True}


def _open(run: _File) -> None:
    """Size limit, decoding and dialect, header row, event type."""
    limit = limits.max_object_bytes(run.cfg)
    if run.source.size_bytes is not None and run.source.size_bytes > limit:
        raise FileRejected(limits.too_big_message(run.source.size_bytes, limit))
    _warn_unconfigured_partner(run)
    run.csv_source = open_records(run.body, run.source.name, limit)
    run.records = run.csv_source.records(run.cfg.max_field_chars)
    run.report.container = run.csv_source.container
    run.report.encoding = run.csv_source.encoding
    run.report.delimiter = run.csv_source.delimiter
    try:
        run.headers, skipped = find_header(run.records)
    except FileRejected as exc:
        raise _header_elsewhere(run, exc) from None
    h = run.headers
    run.csv_source.watch_rows(h.card_id, h.timestamp, h.width, h.time)
    _warn_skipped_lines(run.outcomes, skipped)
    _warn_date_order(run)
    run.name_status, why = vocabulary(run.partner.status_words).file_event_type(run.source.name)
    if run.headers.status is None and run.name_status is None:
        raise FileRejected(f"cannot tell the event type: no Status/Event column, and {why}")
    run.report.event_type = _file_event_type(run) or "from_status_column"


def _warn_unconfigured_partner(run: _File) -> None:
    """A partner missing from PARTNER_CONFIG is read with the defaults, and says so."""
    name = run.source.partner
    if name in run.cfg.partners:
        return
    used = "the 'default' partner's settings" if "default" in run.cfg.partners else "the defaults"
    p = run.partner
    run.outcomes.warn(
        0,
        f"partner {name!r} is not configured (PARTNER_CONFIG): its file was read with {used} "
        f"(timezone {p.timezone}, {'day' if p.day_first else 'month'}-first dates, phone "
        f"region {p.phone_region}, {len(p.status_words)} extra status word(s))",
    )


def _header_elsewhere(run: _File, exc: FileRejected) -> FileRejected:
    """A workbook whose first visible sheet has no header: name the sheet that has one."""
    source = run.csv_source
    others = getattr(source, "other_sheet_records", None)
    if others is None:
        return exc
    read = getattr(source, "sheet", None)
    for title, records in others(run.cfg.max_field_chars):
        try:
            find_header(records)
        except FileRejected:
            continue
        return FileRejected(
            f"sheet {read!r} has no card-id and timestamp header ({exc}); the data seems to be "
            f"on sheet {title!r}: move it first or upload that sheet alone",
            rows_read=exc.rows_read,
        )
    return exc


def _warn_date_order(run: _File) -> None:
    """The file is read in the other date order than the partner's: say which line decided."""
    flip = run.date_order
    if flip is not None:
        order = order_name(run.partner.day_first)
        run.outcomes.warn(
            flip.line,
            f"dates are read {order}: line {flip.line} ({flip.raw!r}) is a valid date only "
            f"{order}, and every other date of the file reads that way too; the partner's "
            f"setting is {order_name(not run.partner.day_first)} (set its date order if its "
            "files are always written this way)",
        )


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


def _file_event_type(run: _File) -> str | None:
    """ingested_file.event_type: the name's event type when the file has no status column."""
    assert run.headers is not None
    if run.headers.status is None and run.name_status is not None:
        return run.name_status.value
    return None


def _stream(run: _File, progress: Callable[[int], None] | None) -> None:
    """The rows, chunk by chunk, in the file's transaction (the file row, which every copy
    references, was committed as in progress by _begin)."""
    assert run.csv_source is not None and run.records is not None and run.headers is not None
    with run.conn.cursor() as cur:
        cur.execute(sql.TUNE_TRANSACTION, {"timeout_ms": limits.statement_timeout_ms(run.cfg)})
        cur.execute(sql.CREATE_STAGING)
        rows = normalised_rows(
            run.records,
            run.headers,
            run.name_status,
            run.partner,
            dict(run.cfg.reason_keywords),
            run.outcomes,
            progress,
            limits.max_rows(run.cfg),
            run.cfg.card_id_pattern,
            run.date_order,
        )
        run.streaming = True
        reader = ChunkReader(rows, run.csv_source.reader.drain)
        reader.start()
        try:
            group = run.group()
            for number, chunk in enumerate(reader.chunks()):
                copy_chunk(cur, sql.COPY_STAGING, chunk)
                _drop_foreign_rows(run, cur, group)
                _store_copies(run, cur)
                cur.execute(sql.APPLY_CHUNK, {**run.params(), "chunk": number})
        finally:
            reader.stop()
    run.timer.mark("read_parse_copy_ms")
    _warn_source(run.outcomes, run.csv_source)
    _reject_foreign(run)


def _drop_foreign_rows(run: _File, cur: Any, group: list[str]) -> None:
    """Rows of cards owned by a partner outside this partner's group leave the chunk."""
    cur.execute(owner_sql.FOREIGN_ROWS, {"group": group})
    rows = cur.fetchall()
    if rows:
        run.foreign.extend(rows)
        cur.execute(owner_sql.DROP_FOREIGN_ROWS, {"lines": [line for line, _c, _o in rows]})


def _reject_foreign(run: _File) -> None:
    """The rows _drop_foreign_rows took out are rejected rows naming the card's owner."""
    if not run.foreign:
        return
    outcomes = run.outcomes
    for line, card_id, owner in run.foreign:
        outcomes.reject(line, foreign_card_reason(card_id, owner))
        outcomes.valid -= 1
    outcomes.reject_details.sort(key=lambda r: int(r["line"]))


def _store_copies(run: _File, cur: Any) -> None:
    """The chunk's copies into event_copy; the rare chunk that repeats an event of the file
    (unique violation) is merged line by line instead, with a warning for conflicting lines."""
    cur.execute(sql.SAVEPOINT)
    try:
        cur.execute(sql.INSERT_COPIES, run.params())
    except psycopg2.errors.UniqueViolation:
        cur.execute(sql.ROLLBACK_TO)
        cur.execute(sql.IN_FILE_CONFLICTS, run.params())
        for line, card_id, status, first, fields in cur.fetchall():
            run.outcomes.warn(
                line,
                f"event {card_id} {status} is also on line {first} of this file with a "
                f"different {fields}; the copies are merged (the first line's value is kept, a "
                "later line's only where it is empty)",
            )
        cur.execute(sql.MERGE_FILE_COPIES, run.params())
    else:
        cur.execute(sql.RELEASE)


def _finish(run: _File) -> dict[str, Any]:
    """Identity, outcome, settle, project, report: the end of an applied (or duplicate) file."""
    assert run.csv_source is not None
    report, outcomes = run.report, run.outcomes
    report.sha256 = run.csv_source.reader.sha256
    report.size_bytes = run.csv_source.reader.size
    report.meaning_key = meaning_key(
        report.sha256, run.source.partner, run.partner, run.name_status
    )
    if outcomes.rows > 0 and outcomes.valid == 0:
        first = outcomes.reject_details[0]
        raise FileRejected(
            f"all {outcomes.rows} rows rejected: line {first['line']}: {first['reason']}"
        )
    with run.conn.cursor() as cur:
        original = _applied_same_meaning(run, cur)
        if original is not None:
            return _duplicate(run, original)
        cur.execute(
            sql.SET_MEANING,
            {**run.params(), "sha256": report.sha256, "meaning_key": report.meaning_key},
        )
        cur.execute(sql.COUNT_ACCEPTED)
        accepted, shared = cur.fetchone()  # type: ignore[misc]
        _warn_low_volume(run, cur)
        if shared:
            _settle(run, cur)
        else:
            report.conflicts = 0
        run.timer.mark("settle_ms")
        _project(run, cur)
        _warn_dates(run, cur)
        _warn_erased_phones(run, cur)
        if outcomes.rejects_file is not None:
            _copy_rejects(cur, run.file_id, outcomes.rejects_file)
        run.timer.mark("apply_ms")
        report.file_id = run.file_id
        _set_counts(run, accepted=accepted, duplicate=outcomes.valid - accepted)
        report.finished_at = datetime.now(UTC)
        report.timings = run.timer.timings()
        cur.execute(sql.UPDATE_FILE_REPORT, {**_file_params(run), "id": run.file_id})
        # The row is final (and locked by this transaction until it commits): the run's
        # session lock goes now, with no statement after the commit.
        cur.execute(sql.IN_PROGRESS_UNLOCK, {"file_id": run.file_id})
    run.conn.commit()
    run.in_progress = False
    return report.to_json()


def _warn_erased_phones(run: _File, cur: Any) -> None:
    """A number erased on request that this file brings again is stored again (the partner
    still has it); the report says so, per line (README "Privacy": erasure)."""
    cur.execute(erasure_sql.ANY_ERASED)
    if not cur.fetchone()[0]:
        return
    cur.execute(erasure_sql.ERASED_LINES, {"file_id": run.file_id, "limit": REPORT_DETAIL_LIMIT})
    for line, request_id, erased_at in cur.fetchall():
        run.outcomes.warn(
            line,
            f"this phone number was erased on request #{request_id}, on {erased_at:%Y-%m-%d}; "
            "the partner sent it again, so it is stored again",
        )


def _warn_dates(run: _File, cur: Any) -> None:
    """Events that look misdated: before the card's first pickup, or more than 31 days from
    the bulk of the file's events (README "Partner files and reports": date order)."""
    params = {**run.params(), "limit": REPORT_DETAIL_LIMIT}
    cur.execute(dates_sql.BEFORE_FIRST_PICKUP, params)
    early = cur.fetchall()
    for line, card_id, status, occurred, first_pickup, _total in early:
        run.outcomes.warn(
            line,
            f"event {card_id} {status} on {occurred:%Y-%m-%d} is before the card's first pickup "
            f"on {first_pickup:%Y-%m-%d}: check the date (and its day/month order)",
        )
    if early and early[0][-1] > len(early):
        run.outcomes.warnings += early[0][-1] - len(early)
    main = far_days(run.outcomes.days)  # counted while the rows streamed
    if main is None:
        return
    first_day, last_day = main
    cur.execute(dates_sql.OUTSIDE_DAYS, {**params, "first_day": first_day, "last_day": last_day})
    far = cur.fetchall()
    for line, occurred, _total in far:
        run.outcomes.warn(
            line,
            f"the event on {occurred:%Y-%m-%d} is more than {GAP_DAYS} days from the "
            f"file's other events (from {first_day} to {last_day}): check the "
            "date "
            "(and its day/month order)",
        )
    if far and far[0][-1] > len(far):
        run.outcomes.warnings += far[0][-1] - len(far)


def _warn_low_volume(run: _File, cur: Any) -> None:
    """A file far smaller than the partner's usual ones gets a warning in its report (README
    "Partner feed health"): one indexed query for the previous files' rows."""
    feed = run.partner.feed if run.partner else None
    warning = ingest_volume_warning(cur, run.source.partner, run.file_id, run.outcomes.rows, feed)
    if warning is not None:
        run.outcomes.warn(0, warning.message)


def _applied_same_meaning(run: _File, cur: Any) -> tuple[Any, ...] | None:
    report = run.report
    cur.execute(sql.LOCK_MEANING, {"meaning_key": report.meaning_key})
    cur.execute(
        sql.FIND_APPLIED_MEANING,
        {
            "meaning_key": report.meaning_key,
            "sha256": report.sha256,
            "partner": run.source.partner,
            "name_event_type": run.name_status.value if run.name_status else None,
        },
    )
    return cur.fetchone()


def _duplicate(run: _File, original: tuple[Any, ...]) -> dict[str, Any]:
    """Same bytes, same meaning: nothing of this file is kept but its report."""
    run.conn.rollback()
    file_id, bucket, key, stored = original
    if run.source.bucket and (bucket, key) == (run.source.bucket, run.source.key):
        _drop_in_progress(run)
        return _redelivery(stored)  # the file already applied under this very key
    report = run.report
    report.outcome = FileOutcome.DUPLICATE_FILE
    report.reason = "the same bytes were already applied with the same meaning"
    report.duplicate_of = {"file_id": file_id, "bucket": bucket, "key": key}
    _set_counts(run, accepted=0, duplicate=run.outcomes.valid)
    return _record_final(run)


def _settle(run: _File, cur: Any) -> None:
    """The events this file shares with others merged from their copies (merge rule,
    cardstatus.sql.ownership); its conflicting copies → warnings, phone conflicts → ops."""
    cur.execute(sql.SETTLE_EVENTS, run.params())
    cur.execute(sql.CROSS_FILE_CONFLICTS, {**run.params(), "limit": REPORT_DETAIL_LIMIT})
    conflicts = cur.fetchall()
    run.report.conflicts = int(conflicts[0][-1]) if conflicts else 0
    for line, card_id, status, other_file, other_line, *differs_kept in conflicts:
        phone, comment, phone_kept, comment_kept = differs_kept[:4]
        kept = [
            f"the {name} {'of this file' if mine else 'already known'} is kept"
            for name, differs, mine in (
                ("phone", phone, phone_kept),
                ("comment", comment, comment_kept),
            )
            if differs
        ]
        fields = " and ".join(n for n, d in (("phone", phone), ("comment", comment)) if d)
        run.outcomes.warn(
            line,
            f"event {card_id} {status} was also delivered by file {other_file} (line "
            f"{other_line}) with a different {fields}; {' and '.join(kept)} (the card owner's "
            "copy first, then by partner, file and line; never the smaller value)",
        )
    cur.execute(sql.RECORD_PHONE_CONFLICTS, run.params())
    if len(conflicts) < run.report.conflicts:
        run.outcomes.warnings += run.report.conflicts - len(conflicts)


def _project(run: _File, cur: Any) -> None:
    """Cards and the status outbox, from the events this file inserted or merged into."""
    cur.execute(sql.CARD_DELTA)
    cur.execute(sql.FOREIGN_OWNED_LOCKED, {"group": run.group()})
    if cur.fetchone()[0]:
        raise CardInsertRace("a card of this file was created concurrently by another partner")
    cur.execute(sql.APPLY_PROJECTION, run.params())
    touched, raced, changes, first_id, last_id = cur.fetchone()
    if raced:
        raise CardInsertRace(f"{raced} card(s) created concurrently")
    cur.execute(sql.HEAL_OWNERS)
    cur.execute(sql.OWNER_MOVED)
    _warn_phone_changes(run, cur)
    run.report.cards_touched = touched
    run.report.status_changes = changes
    run.report.outbox = {"first_id": first_id, "last_id": last_id} if changes else None


def _warn_phone_changes(run: _File, cur: Any) -> None:
    """A card that had a phone and has another one after this file: a warning (last 4 digits)."""
    cur.execute(sql.PHONE_CHANGES, {**run.params(), "limit": REPORT_DETAIL_LIMIT})
    changes = cur.fetchall()
    for line, card_id, before, after, _total in changes:
        run.outcomes.warn(
            line,
            f"card {card_id}: phone changed from one ending {before} to one ending {after}",
        )
    if changes and len(changes) < changes[0][-1]:
        run.outcomes.warnings += changes[0][-1] - len(changes)


def _set_counts(run: _File, accepted: int, duplicate: int) -> None:
    o = run.outcomes
    counts = run.report.counts
    counts.rows, counts.accepted, counts.duplicate = o.rows, accepted, duplicate
    counts.rejected, counts.warnings = o.rejected, o.warnings
    run.report.rejects = o.reject_details
    run.report.warnings = o.warning_details
    run.report.warning_groups = o.grouped_warnings()


def _rejected(run: _File, reason: str, rows_read: int = 0) -> dict[str, Any]:
    """A rejected file: every data row it has counts as rejected (rows = rejected)."""
    report, outcomes = run.report, run.outcomes
    report.outcome = FileOutcome.REJECTED_FILE
    report.reason = redact_phones(reason)
    report.sha256 = report.meaning_key = report.size_bytes = None
    if not run.streaming and run.records is not None:
        counted = count_data_rows(run.records)  # rejected at its header: count what follows
        outcomes.rows = rows_read + counted if counted is not None else outcomes.rows
    _set_counts(run, accepted=0, duplicate=0)
    report.counts.rejected = outcomes.rows
    return _record_final(run)


def record_rejected(conn: Connection, source: SourceInfo, reason: str) -> dict[str, Any]:
    """Report a file rejected before it could be read (missing object, over the size limit)."""
    run = _File(conn, None, source, None, None, FileReport(source, datetime.now(UTC)))  # type: ignore[arg-type]
    run.report.outcome = FileOutcome.REJECTED_FILE
    run.report.reason = redact_phones(reason)
    run.report.size_bytes = source.size_bytes
    return _record_final(run)


def _file_params(run: _File) -> dict[str, Any]:
    report, counts, source = run.report, run.report.counts, run.source
    return {
        **source.identity(),
        "sha256": report.sha256,
        "meaning_key": report.meaning_key,
        "size_bytes": report.size_bytes,
        "partner": source.partner,
        "event_type": _file_event_type(run) if run.headers is not None else None,
        "outcome": report.outcome.value,
        "rows_total": counts.rows,
        "rows_accepted": counts.accepted,
        "rows_duplicate": counts.duplicate,
        "rows_rejected": counts.rejected,
        "warnings": counts.warnings,
        "report": json.dumps(report.to_json()),
        "started_at": report.started_at,
        "duration_ms": run.timer.total_ms(),
    }


def _record_final(run: _File) -> dict[str, Any]:
    """Store the report of a file that changed no card (duplicate or rejected)."""
    conn, report = run.conn, run.report
    report.finished_at = datetime.now(UTC)
    report.timings = run.timer.timings()
    with conn.cursor() as cur:
        if run.source.version_id or run.source.etag:
            # Deliveries of one object that ran concurrently: only the first records a report.
            cur.execute(sql.LOCK_OBJECT, {"identity": json.dumps(run.source.identity())})
            cur.execute(sql.FIND_SAME_OBJECT, run.source.identity())
            seen = cur.fetchone()
            if seen is not None:
                conn.rollback()
                _drop_in_progress(run)
                return _redelivery(seen[2])
        if run.in_progress:  # the run's own row: it gets the final outcome
            report.file_id = run.file_id
        else:
            cur.execute(sql.INSERT_FILE, _file_params(run))
            report.file_id = cur.fetchone()[0]  # type: ignore[index]
        if run.outcomes.rejects_file is not None and report.outcome is FileOutcome.REJECTED_FILE:
            _copy_rejects(cur, report.file_id, run.outcomes.rejects_file)
        cur.execute(sql.UPDATE_FILE_REPORT, {**_file_params(run), "id": report.file_id})
        if run.in_progress:
            cur.execute(sql.IN_PROGRESS_UNLOCK, {"file_id": report.file_id})
    conn.commit()
    run.in_progress = False
    return report.to_json()


def _copy_rejects(cur: Any, file_id: int | None, rejects_file: Any) -> None:
    rejects_file.seek(0)
    prefix = f"{file_id}\t".encode()
    lines = (prefix + line for line in rejects_file)
    cur.copy_expert(sql.COPY_REJECTS, ChunkStream(lines), size=1 << 16)


# Two files that share events can lock the same event keys in different orders (rows are
# inserted chunk by chunk); PostgreSQL then aborts one. The file is simply read again.
CONFLICT_ERRORS = (
    psycopg2.errors.DeadlockDetected,
    psycopg2.errors.SerializationFailure,
    CardInsertRace,
)
CONFLICT_ATTEMPTS = 4


def ingest_retrying(
    conn: Connection,
    open_body: Callable[[], AbstractContextManager[Readable]],
    source: SourceInfo,
    cfg: Settings,
    progress: Callable[[int], None] | None = None,
    progress_conn: Callable[[], Connection] | None = None,
) -> dict[str, Any]:
    """ingest(), re-reading the file after a deadlock or serialization conflict."""
    date_order: DateOrderFlip | None = None
    attempt = 0
    while attempt < CONFLICT_ATTEMPTS:
        attempt += 1
        with open_body() as body:
            try:
                return ingest(conn, body, source, cfg, progress, progress_conn, date_order)
            except DateOrderFlip as flip:  # read again in the other date order (no conflict)
                date_order = flip
                attempt -= 1
                continue
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
    progress_conn: Callable[[], Connection] | None = None,
) -> dict[str, Any]:
    """Ingest a local file through the same pipeline (no S3): identity is its content hash."""
    key = os.fspath(path)
    source = SourceInfo(key=key, partner=partner or "default", size_bytes=os.path.getsize(key))
    return ingest_retrying(conn, lambda: open(key, "rb"), source, cfg, progress, progress_conn)
