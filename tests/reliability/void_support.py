"""Helpers of the void suites: small partner files with overlapping and conflicting copies of
events, the whole observable database state (keyed by object keys, not file ids), and the
outbox checks. Files go in through the production entry point (rel_support.ingest_bytes →
ingest_retrying), voids through cardstatus.void.void_retrying."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

import rel_support as rs
from rel_support import Event, PartnerFile, Row, Style

from cardstatus.cards import get_card
from cardstatus.void import VoidResult, void_retrying

N_CARDS = 4
N_TIMES = 5
# Phones: -1 none, else an index into rs.NATIONALS; comments: index into rs.COMMENTS.
PHONES = (-1, 0, 1, 2)
COMMENTS = (0, 1, 2, 3)


@dataclass(frozen=True)
class VoidFile:
    """One partner file of a scenario and the key it is delivered under."""

    file: PartnerFile
    key: str

    def render(self) -> bytes:
        return self.file.render()


def make_file(
    index: int, partner: int, status: int | None, events: list[Event], tag: str = "f"
) -> VoidFile:
    """A file of one event type (status) or with a Status column (status None)."""
    rows = [Row(ev, phone_form=(index + i) % 10) for i, ev in enumerate(events)]
    name_partner = rs.PARTNERS[partner]
    word = "export" if status is None else rs.FILE_TYPE_WORDS[rs.STATUSES[status]][0]
    name = f"{name_partner} {tag}{index} - {word}.csv"
    f = PartnerFile(partner, name, Style(with_id=True), rows, status_column=status is None)
    return VoidFile(f, f"incoming/{name_partner}/{name}")


def random_files(
    rng: random.Random,
    n_files: int,
    rows: tuple[int, int],
    n_cards: int = N_CARDS,
    n_times: int = N_TIMES,
    tag: str = "f",
) -> list[VoidFile]:
    """Files whose events overlap (few cards and times) with conflicting phones/comments."""
    out: list[VoidFile] = []
    for i in range(n_files):
        partner = rng.randrange(len(rs.PARTNERS))
        status = None if rng.randrange(5) == 0 else rng.randrange(4)
        events = [
            Event(
                card=rng.randrange(n_cards),
                status=status if status is not None else rng.randrange(4),
                time=rng.randrange(n_times),
                phone=rng.choice(PHONES),
                comment=rng.choice(COMMENTS),
                partner=partner,
            )
            for _ in range(rng.randint(*rows))
        ]
        out.append(make_file(i, partner, status, events, tag))
    return out


def reset(conn: Any) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "TRUNCATE card, card_event, event_copy, status_outbox, rejected_row, ingested_file, file_card_change,"
            " card_tombstone RESTART IDENTITY"
        )
    conn.commit()


def ingest(conn: Any, f: VoidFile) -> dict[str, Any]:
    report = rs.ingest_bytes(conn, f.render(), f.key)
    assert report["outcome"] == "applied", report
    return report


def apply_all(conn: Any, files: list[VoidFile]) -> dict[str, int]:
    """Ingest every file (each must be applied); their file ids by key."""
    return {f.key: ingest(conn, f)["file_id"] for f in files}


def void(conn: Any, file_id: int, reason: str = "wrong file", actor: str = "tester") -> VoidResult:
    return void_retrying(conn, file_id, reason, actor)


def state(conn: Any) -> dict[str, Any]:
    """Everything a caller can observe, with files named by object key (file ids and ingestion
    times depend on the order of arrival): every API card object (JSON text, history
    included), the projection columns, the merged events with their source, every copy."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT card_id, status::text, status_at, comment, reason, phone_hash, phone_key,"
            " phone_last4, phone_at,"
            " phone_rank::text, picked_up_at, delivered_at, returned_at, exception_count"
            " FROM card ORDER BY card_id"
        )
        projection = cur.fetchall()
        cur.execute(
            "SELECT e.card_id, e.status::text, e.occurred_at, e.comment, e.reason, e.phone_hash,"
            " e.phone_key, e.phone_last4,"
            " e.partner, e.partner_row_id, f.object_key, e.source_line"
            " FROM card_event e LEFT JOIN ingested_file f ON f.id = e.source_file_id"
            " ORDER BY 1, 2, 3"
        )
        events = cur.fetchall()
        cur.execute(
            "SELECT f.object_key, c.card_id, c.status::text, c.occurred_at, c.line, c.phone_hash,"
            " c.phone_key, c.phone_last4,"
            " c.comment, c.reason, c.partner_row_id, c.partner"
            " FROM event_copy c JOIN ingested_file f ON f.id = c.file_id"
            " ORDER BY 1, 2, 3, 4"
        )
        copies = cur.fetchall()
        cur.execute("SELECT id, object_key FROM ingested_file")
        keys = dict(cur.fetchall())
    conn.commit()
    api = {}
    for row in projection:
        card = get_card(conn, row[0])
        assert card is not None
        body = card.to_dict()
        for entry in body["history"]:  # the file an event came from, by key (ids: arrival order)
            entry["file_id"] = keys.get(entry["file_id"])
        api[row[0]] = json.dumps(body, sort_keys=True)
    conn.commit()
    return {"api": api, "projection": projection, "events": events, "copies": copies}


def versions(conn: Any) -> dict[str, tuple[str, Any, int]]:
    """card_id → (status, status_at, version)."""
    with conn.cursor() as cur:
        cur.execute("SELECT card_id, status::text, status_at, version FROM card")
        out = {r[0]: (r[1], r[2], r[3]) for r in cur.fetchall()}
    conn.commit()
    return out


def outbox(conn: Any, after_id: int = 0) -> list[tuple[int, str, int, dict[str, Any]]]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT id, card_id, card_version, detail FROM status_outbox WHERE id > %s ORDER BY id",
            (after_id,),
        )
        rows = cur.fetchall()
    conn.commit()
    return rows


def last_outbox_id(conn: Any) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT COALESCE(max(id), 0) FROM status_outbox")
        n = int(cur.fetchone()[0])
    conn.commit()
    return n


def assert_versions_strictly_increase(conn: Any) -> None:
    """Per card, card_version strictly increases with the outbox id (consumers drop stale)."""
    last: dict[str, int] = {}
    for _, card_id, version, detail in outbox(conn):
        assert detail["card_version"] == version
        assert version > last.get(card_id, 0), (card_id, version, last.get(card_id))
        last[card_id] = version


def assert_void_outbox(
    conn: Any,
    before: dict[str, tuple[str, Any, int]],
    after: dict[str, tuple[str, Any, int]],
    rows: list[tuple[int, str, int, dict[str, Any]]],
    file_id: int,
) -> None:
    """Exactly one outbox row per card whose current event changed, with the right content."""
    changed = {
        c
        for c in set(before) | set(after)
        if c not in after or before.get(c, (None, None))[:2] != after[c][:2]
    }
    assert sorted(r[1] for r in rows) == sorted(changed)
    for _, card_id, version, detail in rows:
        prev = before[card_id]
        assert detail["previous_status"] == prev[0]
        assert detail["file_id"] == file_id
        assert version == prev[2] + 1
        if card_id in after:
            assert detail["status"] == after[card_id][0]
            assert after[card_id][2] == version
        else:
            assert detail["status"] is None and detail["status_at"] is None
