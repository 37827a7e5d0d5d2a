"""Voiding an applied file (README "Voiding a file"): the state becomes exactly what it would be
had the file never been applied.

`void_file` runs one transaction (SQL and the algorithm: cardstatus.sql.void): the file's
copies go; events only it carried are deleted, the others are merged again from the copies
other files keep; every card it touched is recomputed from its remaining events (a card with
none left is deleted); each card whose current event changed gets version + 1 and one
status_outbox row (CardStatusChanged, published after commit by cardstatus.events); the file
row records voided_at/voided_by/void_reason and its report gets a `voided` block.

Voiding is idempotent: a voided file answers the result stored in its report, changing
nothing. A file that was never applied (duplicate_file, rejected_file) cannot be voided
(FileNotApplied, a cardstatus.errors.Conflict: 409); an unknown id is
cardstatus.errors.FileNotFound (404). After a void the file's meaning is free: the
same bytes uploaded again are applied again.

`void_retrying` is the entry point of the CLI and the void function: it runs the void again
after a deadlock or serialization conflict with a concurrent file (like ingest_retrying).
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg2.errors
from psycopg2.extensions import connection as Connection

from cardstatus.cards import iso_utc
from cardstatus.errors import Conflict, FileNotFound, InvalidParameter, MissingParameter
from cardstatus.model import redact_phones
from cardstatus.sql import void as sql

logger = logging.getLogger(__name__)

REASON_MAX_CHARS = 500
ACTOR_MAX_CHARS = 300


class FileNotApplied(Conflict):
    """The file changed nothing (duplicate_file or rejected_file): there is nothing to void."""

    def __init__(self, file_id: int, outcome: str) -> None:
        super().__init__(
            f"file {file_id} was not applied (outcome {outcome}): it changed nothing, so "
            "there is nothing to void"
        )


@dataclass
class VoidResult:
    file_id: int
    voided_at: str
    voided_by: str
    reason: str
    events_removed: int  # merged events only this file carried: deleted
    events_remerged: int  # events other files also carried whose fields changed by the re-merge
    copies_removed: int  # the file's copies (one per event it carried)
    cards_changed: int  # cards whose projection changed (rewritten or deleted)
    cards_deleted: int  # cards left with no event: deleted
    status_changes: int  # cards whose current status changed: one CardStatusChanged each
    # Not part of the answer (the same on every call): what this call did.
    already_voided: bool = field(default=False, compare=False)
    outbox_ids: tuple[int, int] | None = field(default=None, compare=False)
    report: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    bucket: str | None = field(default=None, compare=False)
    object_key: str | None = field(default=None, compare=False)
    timings: dict[str, float] = field(default_factory=dict, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "voided": True,
            "events_removed": self.events_removed,
            "events_remerged": self.events_remerged,
            "copies_removed": self.copies_removed,
            "cards_changed": self.cards_changed,
            "cards_deleted": self.cards_deleted,
            "status_changes": self.status_changes,
            "voided_at": self.voided_at,
            "voided_by": self.voided_by,
            "reason": self.reason,
        }

    def voided_block(self) -> dict[str, Any]:
        """The report's `voided` block: who, when, why, and what the void did."""
        return {
            "at": self.voided_at,
            "by": self.voided_by,
            "reason": self.reason,
            "events_removed": self.events_removed,
            "events_remerged": self.events_remerged,
            "copies_removed": self.copies_removed,
            "cards_changed": self.cards_changed,
            "cards_deleted": self.cards_deleted,
            "status_changes": self.status_changes,
        }


def _clean(value: str | None, what: str, limit: int) -> str:
    text = " ".join((value or "").split())
    if not text:
        raise MissingParameter(f"{what} is required", parameter=what)
    if not text.isprintable():  # NUL and other control characters (a NUL cannot be stored)
        raise InvalidParameter(f"{what} must not contain control characters", parameter=what)
    if len(text) > limit:
        raise InvalidParameter(f"{what} is longer than {limit} characters", parameter=what)
    return text


def _stored_result(file_id: int, report: dict[str, Any], row: tuple[Any, ...]) -> VoidResult:
    block = report.get("voided") or {}
    return VoidResult(
        file_id=file_id,
        voided_at=str(block.get("at") or iso_utc(row[2])),
        voided_by=str(block.get("by", "")),
        reason=str(block.get("reason", "")),
        events_removed=int(block.get("events_removed", 0)),
        events_remerged=int(block.get("events_remerged", 0)),
        copies_removed=int(block.get("copies_removed", 0)),
        cards_changed=int(block.get("cards_changed", 0)),
        cards_deleted=int(block.get("cards_deleted", 0)),
        status_changes=int(block.get("status_changes", 0)),
        already_voided=True,
        report=report,
        bucket=row[6],
        object_key=row[7],
    )


def void_file(conn: Connection, file_id: int, reason: str, actor: str) -> VoidResult:
    """Void one applied file in one transaction (committed here). Raises FileNotFound,
    FileNotApplied (a Conflict), MissingParameter/InvalidParameter (reason, actor); database
    errors propagate after a rollback."""
    # The reason is free text: a phone number typed into it is masked (reports never carry
    # one). The actor is an identity (an IAM ARN, with its account id): kept as it is.
    reason = redact_phones(_clean(reason, "reason", REASON_MAX_CHARS))
    actor = _clean(actor, "actor", ACTOR_MAX_CHARS)
    try:
        with conn.cursor() as cur:
            row = _lock_file(cur, file_id)
            if row[2] is not None:  # voided_at: answer the stored result, change nothing
                conn.rollback()
                return _stored_result(file_id, row[3], row)
            result = _void_locked(cur, file_id, row, reason, actor)
        conn.commit()
    except BaseException:
        if not conn.closed:
            with contextlib.suppress(psycopg2.Error):  # a dropped connection has nothing to undo
                conn.rollback()
        raise
    logger.info(
        "file voided",
        extra={
            **{k: v for k, v in result.to_json().items() if k not in ("reason", "voided_by")},
            "timings": result.timings,
        },
    )
    return result


def _lock_file(cur: Any, file_id: int) -> tuple[Any, ...]:
    """Start the void's transaction and lock the file's row: (id, outcome, voided_at, report,
    meaning_key, partner, bucket, object_key). FileNotFound when there is none."""
    cur.execute(sql.TUNE_TRANSACTION)
    cur.execute(sql.LOCK_FILE, {"file_id": file_id})
    row: tuple[Any, ...] | None = cur.fetchone()
    if row is None:
        raise FileNotFound(f"no file with id {file_id}", parameter="file_id")
    return row


def _void_locked(
    cur: Any, file_id: int, row: tuple[Any, ...], reason: str, actor: str
) -> VoidResult:
    """The file's row locked and not voided yet: undo what it changed (FileNotApplied when it
    changed nothing) and mark it voided, its report with the `voided` block. Not committed."""
    _, outcome, _, _, meaning_key, partner, bucket, key = row
    if outcome != "applied":
        raise FileNotApplied(file_id, outcome)
    if meaning_key is not None:
        cur.execute(sql.LOCK_MEANING, {"meaning_key": meaning_key})
    params = {"file_id": file_id, "partner": partner}
    timings: dict[str, float] = {}
    counts, outbox_ids = _undo(cur, params, timings)
    cur.execute(sql.NOW)
    now: datetime = cur.fetchone()[0]
    result = VoidResult(
        file_id=file_id,
        voided_at=iso_utc(now) or "",
        voided_by=actor,
        reason=reason,
        events_removed=counts["events_removed"],
        events_remerged=counts["events_remerged"],
        copies_removed=counts["copies_removed"],
        cards_changed=counts["cards_changed"],
        cards_deleted=counts["cards_deleted"],
        status_changes=counts["status_changes"],
        outbox_ids=outbox_ids,
        bucket=bucket,
        object_key=key,
        timings=timings,
    )
    voided = json.dumps(result.voided_block())
    marked = {**params, "voided_at": now, "voided_by": actor, "reason": reason, "voided": voided}
    cur.execute(sql.MARK_VOIDED, marked)
    result.report = cur.fetchone()[0]
    return result


def _undo(
    cur: Any, params: dict[str, Any], timings: dict[str, float]
) -> tuple[dict[str, int], tuple[int, int] | None]:
    """Every statement that changes events, cards and the outbox, in lock order. Returns the
    counts and the (first, last) outbox ids written; each step's milliseconds go to timings."""
    last = time.perf_counter()

    def run(step: str, statement: str, args: dict[str, Any] | None = None) -> None:
        nonlocal last
        cur.execute(statement, args)
        now = time.perf_counter()
        timings[step] = timings.get(step, 0.0) + round((now - last) * 1000, 1)
        last = now

    run("collect_ms", sql.FILE_EVENTS, params)
    run("lock_events_ms", sql.LOCK_EVENTS)
    # The cards too, before anything is re-merged: the merge ranks copies by the card's owner
    # (README "Card ownership"), which a concurrent void of another file of the same cards may
    # be changing; waiting for it here makes the two voids equal a serial run (events, then
    # cards: the order ingestion locks them in).
    run("lock_cards_ms", sql.LOCK_CARDS)
    run("delete_copies_ms", sql.DELETE_COPIES, params)
    copies_removed = cur.rowcount
    run("remerge_ms", sql.REMERGE)
    run("delete_events_ms", sql.DELETE_EVENTS)
    events_removed = cur.rowcount
    run("update_events_ms", sql.UPDATE_EVENTS)
    events_remerged = cur.rowcount
    run("recompute_ms", sql.RECOMPUTE)
    run("apply_cards_ms", sql.CREATE_CARD_CHANGE)
    run("apply_cards_ms", sql.APPLY_CARDS, params)
    rewritten, deleted, changes, _ = cur.fetchone()
    run("outbox_ms", sql.INSERT_OUTBOX, params)
    written, first_id, last_id = cur.fetchone()
    assert written == changes, (written, changes)
    run("link_cards_ms", sql.LINK_CARDS, params)
    counts = {
        "copies_removed": copies_removed,
        "events_removed": events_removed,
        "events_remerged": events_remerged,
        "cards_changed": rewritten + deleted,
        "cards_deleted": deleted,
        "status_changes": changes,
    }
    return counts, ((first_id, last_id) if written else None)


# A void and a concurrent file (or another void) that share events or cards can lock them in
# different orders; PostgreSQL aborts one of them, and the void simply runs again.
CONFLICT_ERRORS = (psycopg2.errors.DeadlockDetected, psycopg2.errors.SerializationFailure)
CONFLICT_ATTEMPTS = 4


def void_retrying(conn: Connection, file_id: int, reason: str, actor: str) -> VoidResult:
    """void_file(), run again after a deadlock or serialization conflict."""
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        try:
            return void_file(conn, file_id, reason, actor)
        except CONFLICT_ERRORS as exc:
            if attempt == CONFLICT_ATTEMPTS:
                raise
            logger.warning(
                "transaction conflict with a concurrent file; voiding again",
                extra={"attempt": attempt, "error": type(exc).__name__, "file_id": file_id},
            )
        time.sleep(random.uniform(0.05, 0.25) * attempt)
    raise AssertionError("unreachable")
