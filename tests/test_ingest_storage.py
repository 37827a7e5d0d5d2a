"""Ingestion storage against a real PostgreSQL: identity by meaning, provenance and the
order-independent merge, outcomes and counts, the status outbox (README
"Partner files and reports", "Events")."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from cardstatus.config import PartnerSettings, load_settings
from cardstatus.ingest import SourceInfo, ingest
from cardstatus.ingest.identity import meaning_key
from cardstatus.model import CardStatus
from cardstatus_dev.cli import main


def ingest_bytes(conn: Any, data: bytes, key: str, **source: Any) -> dict[str, Any]:
    info = SourceInfo(key=key, partner=source.pop("partner", "default"), **source)
    return ingest(conn, io.BytesIO(data), info, load_settings())


def query(conn: Any, sql: str, *params: Any) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall()
    conn.commit()
    return rows


def state(conn: Any) -> tuple[list[tuple], list[tuple]]:
    """Cards and merged events, without ingestion times and file ids (they depend on order)."""
    cards = query(
        conn,
        "SELECT card_id, status::text, status_at, comment, reason, phone, phone_at,"
        " phone_rank::text, picked_up_at, delivered_at, returned_at, exception_count, version"
        " FROM card ORDER BY card_id",
    )
    events = query(
        conn,
        "SELECT e.card_id, e.status::text, e.occurred_at, e.comment, e.reason, e.phone,"
        " e.partner, e.partner_row_id, f.object_key, e.source_line"
        " FROM card_event e JOIN ingested_file f ON f.id = e.source_file_id ORDER BY 1, 2, 3",
    )
    return cards, events


def execute(conn: Any, sql: str, *params: Any) -> None:
    with conn.cursor() as cur:
        cur.execute(sql, params)
    conn.commit()


def outbox(conn: Any) -> list[dict[str, Any]]:
    return [r[0] for r in query(conn, "SELECT detail FROM status_outbox ORDER BY id")]


# --- identity: bytes + meaning -------------------------------------------------------------

PICKUP_BYTES = b"Card ID,Timestamp,Phone\nR1,2024-01-01T10:00:00Z,0501234567\n"


def test_renamed_re_upload_is_a_new_file_and_applied(db: Any) -> None:
    first = ingest_bytes(db, PICKUP_BYTES, "incoming/default/x Pickup.csv")
    again = ingest_bytes(db, PICKUP_BYTES, "incoming/default/x Delivered.csv")
    assert first["outcome"] == again["outcome"] == "applied"
    assert first["sha256"] == again["sha256"] and first["meaning_key"] != again["meaning_key"]
    assert again["counts"]["accepted"] == 1
    assert query(db, "SELECT status::text FROM card") == [("DELIVERED",)]


def test_same_bytes_under_another_partner_are_applied(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another partner = another meaning: the file is read, not a duplicate_file. Its rows are
    # of acme's card, so zeta's copy is rejected naming the owner (README "Card ownership")...
    ingest_bytes(db, PICKUP_BYTES, "a/x Pickup.csv", partner="acme")
    foreign = ingest_bytes(db, PICKUP_BYTES, "b/x Pickup.csv", partner="zeta")
    assert foreign["outcome"] == "rejected_file"
    assert "is handled by partner acme" in foreign["reason"]
    # ...unless the two partners share cards (one group): then the copy is kept
    monkeypatch.setenv("PARTNER_CONFIG", '{"acme": {"handover_to": ["zeta"]}}')
    other = ingest_bytes(db, PICKUP_BYTES, "c/x Pickup.csv", partner="zeta")
    assert other["outcome"] == "applied"
    assert other["counts"] == {
        "rows": 1,
        "accepted": 0,
        "duplicate": 1,
        "rejected": 0,
        "warnings": 0,
    }
    assert query(db, "SELECT count(*) FROM event_copy") == [(2,)]


def test_same_bytes_and_meaning_under_another_key_are_a_duplicate_file(db: Any) -> None:
    ingest_bytes(db, PICKUP_BYTES, "x Pickup.csv")
    dup = ingest_bytes(db, PICKUP_BYTES, "copy of x - pickup.csv")
    assert dup["outcome"] == "duplicate_file"
    assert dup["counts"]["rows"] == dup["counts"]["duplicate"] == 1
    assert query(db, "SELECT count(*) FROM event_copy") == [(1,)]


def test_a_voided_file_no_longer_counts_as_applied(db: Any) -> None:
    first = ingest_bytes(db, PICKUP_BYTES, "x Pickup.csv")
    execute(db, "UPDATE ingested_file SET voided_at = now() WHERE id = %s", first["file_id"])
    assert ingest_bytes(db, PICKUP_BYTES, "x Pickup.csv")["outcome"] == "applied"


def test_meaning_key_depends_on_the_reading_settings() -> None:
    sha = "0" * 64
    base = meaning_key(sha, "acme", PartnerSettings("acme"), CardStatus.PICKED_UP)
    assert base == meaning_key(sha, "acme", PartnerSettings("acme"), CardStatus.PICKED_UP)
    assert base != meaning_key(sha, "acme", PartnerSettings("acme"), CardStatus.DELIVERED)
    assert base != meaning_key(sha, "zeta", PartnerSettings("zeta"), CardStatus.PICKED_UP)
    for changed in (
        PartnerSettings("acme", timezone="UTC"),
        PartnerSettings("acme", day_first=False),
        PartnerSettings("acme", phone_region="SA"),
    ):
        assert base != meaning_key(sha, "acme", changed, CardStatus.PICKED_UP)


# --- provenance and the order-independent merge ------------------------------------------

FILE_A = (
    b"ID,Card ID,Timestamp,Phone,Comment\n"
    b"a1,M1,2024-01-01T10:00:00Z,0501111111,left at door\n"
    b"a2,M2,2024-01-02T10:00:00Z,,\n"
)
FILE_B = (
    b"ID,Card ID,Timestamp,Phone,Comment\n"
    b"b1,M2,2024-01-02T10:00:00Z,0502222222,with guard\n"
    b"b2,M3,2024-01-03T10:00:00Z,,\n"
    b"b3,M1,2024-01-01T10:00:00Z,0509999999,handed over\n"
)


def _status_output(capsys: pytest.CaptureFixture[str], db_url: str) -> str:
    outputs = []
    for card in ("M1", "M2", "M3"):
        assert main(["status", "--database-url", db_url, "--card-id", card]) == 0
        outputs.append(capsys.readouterr().out)
    return "".join(outputs)


@pytest.mark.parametrize("order", [("A", "B"), ("B", "A")])
def test_conflicting_copies_merge_the_same_in_both_orders(
    db: Any,
    db_url: str,
    capsys: pytest.CaptureFixture[str],
    order: tuple[str, str],
) -> None:
    files = {"A": FILE_A, "B": FILE_B}
    reports = [ingest_bytes(db, files[name], f"{name} - delivered.csv") for name in order]
    out = _status_output(capsys, db_url)
    # Merge rule since 12-06 (README "Merge rule"): non-null beats null; among the owner's
    # (here: one partner's) copies the file with the smaller meaning_key (a content hash, so
    # the same in both orders) wins, its phone and comment together, never the smaller value
    # (which would be A's phone with B's comment). partner_row_id keeps the smallest.
    keys = dict(query(db, "SELECT object_key, meaning_key FROM ingested_file"))
    winner = min(keys, key=lambda k: keys[k])
    phone, comment = {
        "A - delivered.csv": ("+971501111111", "left at door"),
        "B - delivered.csv": ("+971509999999", "handed over"),
    }[winner]
    m1 = query(db, "SELECT phone, comment, partner_row_id FROM card_event WHERE card_id = 'M1'")
    assert m1 == [(phone, comment, "a1")]
    assert query(db, "SELECT phone, comment FROM card_event WHERE card_id = 'M2'") == [
        ("+971502222222", "with guard")
    ]
    assert query(db, "SELECT comment, phone FROM card WHERE card_id = 'M1'") == [(comment, phone)]
    # provenance: which files carried each event, at which line
    copies = query(
        db,
        "SELECT c.card_id, f.object_key, c.line FROM event_copy c"
        " JOIN ingested_file f ON f.id = c.file_id ORDER BY 1, 2",
    )
    assert copies == [
        ("M1", "A - delivered.csv", 2),
        ("M1", "B - delivered.csv", 4),
        ("M2", "A - delivered.csv", 3),
        ("M2", "B - delivered.csv", 2),
        ("M3", "B - delivered.csv", 3),
    ]
    # the later file's report warns about its conflicting line (M1: phone and comment)
    later = reports[1]
    assert later["conflicts"] == 1 and reports[0]["conflicts"] == 0
    warning = next(w for w in later["warnings"] if "also delivered" in w["warning"])
    assert warning["line"] == (4 if order == ("A", "B") else 2)
    assert "phone and comment" in warning["warning"]
    assert "0501111111" not in json.dumps(later) and "0509999999" not in json.dumps(later)
    assert '"status": "DELIVERED"' in out


def test_conflicting_copies_give_byte_identical_status_output_in_both_orders(
    pg_admin_url: str, db_url: str, db: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    ingest_bytes(db, FILE_A, "A - delivered.csv")
    ingest_bytes(db, FILE_B, "B - delivered.csv")
    ab_out, ab_state = _status_output(capsys, db_url), state(db)
    execute(db, "TRUNCATE card, card_event, event_copy, status_outbox, rejected_row, ingested_file")
    ingest_bytes(db, FILE_B, "B - delivered.csv")
    ingest_bytes(db, FILE_A, "A - delivered.csv")
    assert _status_output(capsys, db_url) == ab_out
    assert state(db) == ab_state


def test_a_merge_that_changes_the_current_event_updates_the_card(db: Any) -> None:
    ingest_bytes(db, b"Card ID,Timestamp,Comment\nK1,2024-01-01T10:00:00Z,\n", "a - delivered.csv")
    assert query(db, "SELECT comment FROM card") == [(None,)]
    ingest_bytes(
        db, b"Card ID,Timestamp,Comment\nK1,2024-01-01T10:00:00Z,hi\n", "b - delivered.csv"
    )
    assert query(db, "SELECT comment, version FROM card") == [("hi", 1)]
    assert len(outbox(db)) == 1  # a merged field is not a status change


def test_one_event_twice_in_a_file_is_one_copy_merged_with_a_warning(db: Any) -> None:
    data = (
        b"Card ID,Timestamp,Comment\n"
        b"D1,2024-01-01T10:00:00Z,zeta\n"
        b"D2,2024-01-01T10:00:00Z,\n"
        b"D1,2024-01-01T10:00:00Z,alpha\n"
        b"D1,2024-01-01T10:00:00Z,\n"
    )
    report = ingest_bytes(db, data, "d - delivered.csv")
    assert report["counts"] == {
        "rows": 4,
        "accepted": 2,
        "duplicate": 2,
        "rejected": 0,
        "warnings": 1,
    }
    assert report["warnings"][0]["line"] == 5 and "line 2" in report["warnings"][0]["warning"]
    # the first line's comment is kept (since 12-06; before, the smallest: 'alpha')
    assert query(db, "SELECT line, comment FROM event_copy WHERE card_id = 'D1'") == [(2, "zeta")]
    assert query(db, "SELECT comment FROM card_event WHERE card_id = 'D1'") == [("zeta",)]


# --- outcomes and counts --------------------------------------------------------------------


def test_every_row_rejected_is_a_rejected_file(db: Any) -> None:
    data = b"Card ID,Timestamp\nBAD CARD!,2024-01-01T10:00:00Z\nX1,yesterday\n"
    report = ingest_bytes(db, data, "r - delivered.csv")
    assert report["outcome"] == "rejected_file"
    assert report["reason"].startswith("all 2 rows rejected: line 2: ")
    assert report["counts"] == {
        "rows": 2,
        "accepted": 0,
        "duplicate": 0,
        "rejected": 2,
        "warnings": 0,
    }
    assert query(db, "SELECT count(*) FROM card_event") == [(0,)]
    assert query(db, "SELECT count(*) FROM rejected_row") == [(2,)]


def test_all_rejected_file_makes_the_cli_exit_1(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "all bad - delivered.csv"
    path.write_bytes(b"Card ID,Timestamp\nX1,never\n")
    assert main(["ingest", "--database-url", db_url, str(path)]) == 1
    assert json.loads(capsys.readouterr().out)["outcome"] == "rejected_file"


def test_rows_add_up_and_finished_at_is_the_real_finish(db: Any) -> None:
    data = b"Card ID,Timestamp\nX1,2024-01-01T10:00:00Z\nX1,2024-01-01T10:00:00Z\nBAD!,x\n"
    report = ingest_bytes(db, data, "n - delivered.csv")
    c = report["counts"]
    assert c["rows"] == c["accepted"] + c["duplicate"] + c["rejected"] == 3
    ((started, finished),) = query(
        db, "SELECT started_at, finished_at FROM ingested_file WHERE id = %s", report["file_id"]
    )
    assert finished > started


# --- status outbox -------------------------------------------------------------------------


def test_new_cards_emit_one_event_each(db: Any) -> None:
    data = b"Card ID,Timestamp\nE1,2024-01-01T10:00:00Z\nE2,2024-01-01T11:00:00.5Z\n"
    report = ingest_bytes(db, data, "p - pickup.csv")
    events = outbox(db)
    assert report["status_changes"] == 2
    assert [
        (e["card_id"], e["status"], e["previous_status"], e["card_version"]) for e in events
    ] == [("E1", "PICKED_UP", None, 1), ("E2", "PICKED_UP", None, 1)]
    assert events[0]["status_at"] == "2024-01-01T10:00:00Z"
    assert events[1]["status_at"] == "2024-01-01T11:00:00.5Z"  # RFC 3339
    assert events[0]["file_id"] == report["file_id"] and events[0]["partner"] == "default"
    assert set(events[0]) == {
        "event_id",
        "card_id",
        "status",
        "previous_status",
        "status_at",
        "reason",
        "partner",
        "file_id",
        "card_version",
        "emitted_at",
    }
    ids = query(db, "SELECT event_id::text, detail->>'event_id' FROM status_outbox")
    assert all(a == b for a, b in ids)


def test_only_changes_of_the_current_status_emit(db: Any) -> None:
    pickup = b"Card ID,Timestamp\nE1,2024-01-01T10:00:00Z\nE2,2024-01-01T10:00:00Z\n"
    ingest_bytes(db, pickup, "p - pickup.csv")
    newer = (
        b"Card ID,Timestamp,Comment\nE1,2024-01-02T10:00:00Z,User not available\n"
        b"E2,2023-12-01T10:00:00Z,old news\n"
    )
    report = ingest_bytes(db, newer, "e - exception.csv")
    assert report["status_changes"] == 1
    last = outbox(db)[-1]
    assert (last["card_id"], last["status"], last["previous_status"], last["card_version"]) == (
        "E1",
        "DELIVERY_EXCEPTION",
        "PICKED_UP",
        2,
    )
    assert last["reason"] == "recipient_unavailable"
    before = len(outbox(db))
    ingest_bytes(db, pickup, "p - pickup.csv")  # the same file again: duplicate_file
    ingest_bytes(db, pickup, "p2 - pickup.csv")  # same events under another key
    ingest_bytes(db, b"Card ID,Timestamp\nE1,2023-06-01T10:00:00Z\n", "old - delivered.csv")
    assert len(outbox(db)) == before
    versions = query(db, "SELECT card_id, card_version FROM status_outbox ORDER BY id")
    per_card: dict[str, list[int]] = {}
    for card, version in versions:
        per_card.setdefault(card, []).append(version)
    assert all(v == sorted(set(v)) for v in per_card.values())
    assert query(db, "SELECT card_id, version FROM card ORDER BY 1") == [("E1", 2), ("E2", 1)]


def test_a_redelivered_object_emits_nothing(db: Any) -> None:
    data = b"Card ID,Timestamp\nE1,2024-01-01T10:00:00Z\n"
    src = {"bucket": "b", "version_id": "v1", "etag": "e"}
    ingest_bytes(db, data, "incoming/default/p - pickup.csv", **src)
    again = ingest_bytes(db, data, "incoming/default/p - pickup.csv", **src)
    assert again["redelivery"] is True
    assert len(outbox(db)) == 1
