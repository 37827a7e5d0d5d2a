"""Files and cards linked both ways, rejects ops can act on, files in progress (SPEC §9b):
the real pipeline, void and read functions on a real PostgreSQL."""

from __future__ import annotations

import io
from typing import Any

import psycopg2
import pytest

from cardstatus import cards, filecards, ops
from cardstatus.config import load_settings
from cardstatus.ingest import SourceInfo, ingest, rows
from cardstatus.void import FileNotApplied, void_file

PICKUP = (
    b"Card ID,Phone,Timestamp\n"
    b"SPX001,+971 50 111 2201,03-12-2026 09:10\n"
    b"SPX002,050-111-2202,03-12-2026 09:20\n"
    b"SPX003,0501112203,03-12-2026 09:30\n"
)
# The wrong file of the review (B1): delivered cards uploaded as "Returned".
WRONG = (
    b"Card ID,Phone,Timestamp,Comment\n"
    b"SPX001,0501112201,06-12-2026 08:30,Handed to customer\n"
    b"SPX002,0501112202,06-12-2026 08:45,Handed to customer\n"
)
BUCKET = "partner-files"


def _ingest(conn: Any, data: bytes, key: str, version: str | None = None) -> dict[str, Any]:
    source = SourceInfo(key=key, partner="speedy", bucket=BUCKET, version_id=version, etag=version)
    return ingest(conn, io.BytesIO(data), source, load_settings())


def _changes(db: Any) -> list[tuple[Any, ...]]:
    with db.cursor() as cur:
        cur.execute(
            "SELECT file_id, action, card_id, status_before::text, status_after::text "
            "FROM file_card_change ORDER BY file_id, action, card_id"
        )
        rows_ = cur.fetchall()
    db.commit()
    return rows_


def test_ingest_links_the_cards_it_changed_and_a_duplicate_links_nothing(db: Any) -> None:
    first = _ingest(db, PICKUP, "incoming/speedy/speedy 2026-12-03 Pickup.csv", "v1")
    wrong = _ingest(db, WRONG, "incoming/speedy/speedy 2026-12-06 Returned.csv", "v2")
    assert (first["outcome"], wrong["outcome"]) == ("applied", "applied")
    p, w = first["file_id"], wrong["file_id"]
    assert _changes(db) == [
        (p, "apply", "SPX001", None, "PICKED_UP"),
        (p, "apply", "SPX002", None, "PICKED_UP"),
        (p, "apply", "SPX003", None, "PICKED_UP"),
        (w, "apply", "SPX001", "PICKED_UP", "RETURNED"),
        (w, "apply", "SPX002", "PICKED_UP", "RETURNED"),
    ]
    page = filecards.file_cards(db, w)
    assert page["counts"] == {"apply": 2, "void": 0}
    assert [(c["card_id"], c["status_before"], c["status_after"], c["status_now"])
            for c in page["cards"]] == [
        ("SPX001", "PICKED_UP", "RETURNED", "RETURNED"),
        ("SPX002", "PICKED_UP", "RETURNED", "RETURNED"),
    ]  # fmt: skip
    # Paged by keyset: one card a page, no card twice.
    one = filecards.file_cards(db, w, limit=1)
    two = filecards.file_cards(db, w, limit=1, cursor=one["next_cursor"])
    assert [c["card_id"] for c in one["cards"] + two["cards"]] == ["SPX001", "SPX002"]
    assert two["next_cursor"] is None

    # The same bytes again under another key: a duplicate, which changes (and links) nothing;
    # the same object delivered again: its stored report, nothing written.
    before = _changes(db)
    again = _ingest(db, WRONG, "incoming/speedy/copy of Returned.csv", "v3")
    redelivered = _ingest(db, WRONG, "incoming/speedy/speedy 2026-12-06 Returned.csv", "v2")
    assert again["outcome"] == "duplicate_file"
    assert redelivered.get("redelivery") is True
    assert _changes(db) == before
    assert filecards.file_cards(db, again["file_id"])["cards"] == []
    listed = {f["file_id"]: f for f in ops.list_files(db)["files"]}
    assert listed[w]["cards_changed"] == 2 and listed[again["file_id"]]["cards_changed"] is None


def test_history_entries_name_their_file_and_line(db: Any) -> None:
    first = _ingest(db, PICKUP, "incoming/speedy/speedy 2026-12-03 Pickup.csv", "v1")
    wrong = _ingest(db, WRONG, "incoming/speedy/speedy 2026-12-06 Returned.csv", "v2")
    card = cards.card_by_id(db, "SPX002")
    assert [(h["status"], h["file_id"], h["line"]) for h in card["history"]] == [
        ("RETURNED", wrong["file_id"], 3),
        ("PICKED_UP", first["file_id"], 3),
    ]


def test_void_preview_then_void_then_the_file_lists_what_the_void_did(db: Any) -> None:
    _ingest(db, PICKUP, "incoming/speedy/speedy 2026-12-03 Pickup.csv", "v1")
    wrong = _ingest(db, WRONG, "incoming/speedy/speedy 2026-12-06 Returned.csv", "v2")
    only_here = _ingest(
        db, b"Card ID,Timestamp\nSPX009,06-12-2026 09:00\n", "incoming/speedy/x Returned.csv", "v4"
    )
    w = wrong["file_id"]

    preview = filecards.void_preview(db, w)
    assert (preview["voidable"], preview["cards_touched"], preview["status_changes"]) == (
        True,
        2,
        2,
    )
    assert preview["cards"] == [
        {"card_id": "SPX001", "status_now": "RETURNED", "status_after_void": "PICKED_UP"},
        {"card_id": "SPX002", "status_now": "RETURNED", "status_after_void": "PICKED_UP"},
    ]
    gone = filecards.void_preview(db, only_here["file_id"])
    assert gone["cards_deleted"] == 1 and gone["cards"][0]["status_after_void"] is None

    result = void_file(db, w, "wrong file: these were deliveries", "ops@example")
    assert result.status_changes == 2
    page = filecards.file_cards(db, w)
    assert page["voided"] is True and page["counts"] == {"apply": 2, "void": 2}
    done = [(c["action"], c["card_id"], c["status_before"], c["status_after"], c["status_now"])
            for c in page["cards"]]  # fmt: skip
    assert done == [
        ("apply", "SPX001", "PICKED_UP", "RETURNED", "PICKED_UP"),
        ("apply", "SPX002", "PICKED_UP", "RETURNED", "PICKED_UP"),
        ("void", "SPX001", "RETURNED", "PICKED_UP", "PICKED_UP"),
        ("void", "SPX002", "RETURNED", "PICKED_UP", "PICKED_UP"),
    ]
    # ... exactly what the preview said; and a voided file previews nothing more.
    voided = [c for c in page["cards"] if c["action"] == "void"]
    assert [(c["card_id"], c["status_before"], c["status_after"]) for c in voided] == [
        (c["card_id"], c["status_now"], c["status_after_void"]) for c in preview["cards"]
    ]
    assert filecards.void_preview(db, w)["voidable"] is False
    # A void that removes a card's last event: status_after null.
    void_file(db, only_here["file_id"], "test", "ops@example")
    deleted = filecards.file_cards(db, only_here["file_id"], action="void")["cards"]
    assert [(c["card_id"], c["status_before"], c["status_after"]) for c in deleted] == [
        ("SPX009", "RETURNED", None)
    ]


BAD_ROWS = (
    b"Card ID,Phone,Timestamp,Comment\n"
    b"SPX101,0502223301,05-12-2026 10:00,ok\n"
    b"SPX 103,0502223303,05-12-2026 10:10,space in id\n"
    b"SPX104,0502223304,,no time\n"
    b"SPX106,0502223306,20261205 1015,compact date\n"
    b'SPX107,0502223307,05-12-2099 10:25,"call 0502223399, future"\n'
)


def test_rejects_carry_card_id_and_raw_row_with_only_phones_masked(db: Any) -> None:
    report = _ingest(db, BAD_ROWS, "incoming/speedy/speedy 2026-12-05 Delivered.csv", "v9")
    assert report["counts"]["rejected"] == 4
    listed = ops.file_rejects(db, report["file_id"])["rejects"]
    by_line = {r["line"]: r for r in listed}
    assert by_line[3]["card_id"] is None  # "SPX 103" is no card id
    assert by_line[3]["raw_row"] == "SPX 103,******3303,05-12-2026 10:10,space in id"
    assert by_line[4]["card_id"] == "SPX104"
    # A1: the timestamp is never masked as a phone, in the reason or the raw row.
    assert "'20261205 1015'" in by_line[5]["reason"], by_line[5]["reason"]
    assert by_line[5]["raw_row"] == "SPX106,******3306,20261205 1015,compact date"
    # A phone in the comment is masked too; nothing else is.
    assert by_line[6]["raw_row"] == 'SPX107,******3307,05-12-2099 10:25,"call ******3399, future"'
    assert report["rejects"][1]["card_id"] == "SPX104"

    # The CSV round trip: what the export writes reads back as the rows above.
    lines, truncated = filecards.rejects_csv_lines(db, report["file_id"])
    text = "".join(lines)
    assert truncated == [False]
    back = filecards.parse_csv(text)
    assert [
        {"line": int(r["line"]), "card_id": r["card_id"] or None, "reason": r["reason"],
         "raw_row": r["raw_row"]}
        for r in back
    ] == listed  # fmt: skip
    lines, truncated = filecards.rejects_csv_lines(db, report["file_id"], max_rows=2)
    assert len(filecards.parse_csv("".join(lines))) == 2 and truncated == [True]


def test_has_rejects_finds_applied_files_with_rejected_rows(db: Any) -> None:
    clean = _ingest(db, PICKUP, "incoming/speedy/speedy 2026-12-03 Pickup.csv", "v1")
    bad = _ingest(db, BAD_ROWS, "incoming/speedy/speedy 2026-12-05 Delivered.csv", "v9")
    assert bad["outcome"] == "applied"
    with_rejects = ops.list_files(db, has_rejects="true", since="2000-01-01")["files"]
    assert [f["file_id"] for f in with_rejects] == [bad["file_id"]]
    without = ops.list_files(db, has_rejects="FALSE")["files"]
    assert [f["file_id"] for f in without] == [clean["file_id"]]
    with pytest.raises(ops.InvalidParameter):
        ops.list_files(db, has_rejects="maybe")


def test_warnings_are_grouped_by_kind_and_never_push_the_rejects_out(db: Any) -> None:
    body = ["Returns report", "", "Card ID,Phone,Timestamp"]
    body += [f"W{i:05d},9.7E+11,05-12-2026 10:00" for i in range(600)]  # 600 mangled phones
    body += ["BAD CARD!,0501112201,05-12-2026 10:00", "Total records: 601,,"]
    report = _ingest(db, "\n".join(body).encode(), "incoming/speedy/big Delivered.csv", "w1")
    assert report["counts"]["warnings"] == 601
    assert len(report["warnings"]) == rows.REPORT_DETAIL_LIMIT  # listed one by one: the first 500
    groups = report["warning_groups"]
    assert [g["count"] for g in groups] == [600, 1]
    phone = groups[0]
    assert phone["lines"] == list(range(4, 14))  # the first 10 lines of that kind
    assert "9.7E+11" in phone["example"] or "scientific" in phone["example"]
    assert "before the header" in groups[1]["example"]
    assert [r["line"] for r in report["rejects"]] == [604, 605]  # both rejects still listed


def test_a_file_being_ingested_is_listed_in_progress_with_rows_read_so_far(
    db_url: str, db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rows, "PROGRESS_EVERY_ROWS", 100)
    data = ("Card ID,Timestamp\n" + "".join(
        f"P{i:05d},05-12-2026 10:00\n" for i in range(350))).encode()  # fmt: skip
    seen: list[tuple[Any, ...]] = []
    observer = psycopg2.connect(db_url)  # another session, as the API would be
    observer.autocommit = True

    def look(rows_read: int) -> None:
        # Inside the file's transaction: what a second connection sees right now.
        page = ops.list_files(observer, outcome="IN_PROGRESS")
        seen.append(tuple((f["outcome"], f["counts"]["rows"]) for f in page["files"]))
        with pytest.raises(FileNotApplied):  # not voidable while it is read
            void_file(observer, page["files"][0]["file_id"], "no", "ops")

    source = SourceInfo(key="incoming/speedy/big Pickup.csv", partner="speedy")
    report = ingest(
        db,
        io.BytesIO(data),
        source,
        load_settings(),
        progress=look,
        progress_conn=lambda: psycopg2.connect(db_url),
    )
    assert seen == [(("in_progress", 100),), (("in_progress", 200),), (("in_progress", 300),)]
    assert report["outcome"] == "applied" and report["counts"]["accepted"] == 350
    final = ops.list_files(observer)["files"]
    assert [(f["file_id"], f["outcome"], f["counts"]["rows"]) for f in final] == [
        (report["file_id"], "applied", 350)
    ]
    observer.close()


def test_enum_parameters_are_case_insensitive(db: Any) -> None:
    _ingest(db, PICKUP, "incoming/speedy/speedy 2026-12-03 Pickup.csv", "v1")
    assert len(ops.list_files(db, outcome="Applied")["files"]) == 1
    page = ops.stuck_cards(db, status="picked_up", older_than_hours=0)
    assert [c["card_id"] for c in page["cards"]] == ["SPX001", "SPX002", "SPX003"]
    assert page["total"] == 3 and page["total_capped"] is False
    assert page["cards"][0]["exception_count"] == 0 and page["cards"][0]["file_id"] is not None


def test_local_restart_ingests_again_an_upload_left_in_progress(db_url: str, db: Any) -> None:
    """`cardstatus local` re-ingests at start the uploads the database has no file for: an
    in-progress row (the stop came mid-file) is not a file."""
    from cardstatus_dev.local import ingested_versions

    with db.cursor() as cur:
        for key, outcome in (("incoming/a.csv", "applied"), ("incoming/b.csv", "in_progress")):
            cur.execute(
                "INSERT INTO ingested_file (bucket, object_key, version_id, partner, outcome,"
                " report, started_at) VALUES ('bk', %s, 'v1', 'p', %s, '{}', now())",
                (key, outcome),
            )
    db.commit()
    assert set(ingested_versions(db_url, "bk")) == {("incoming/a.csv", "v1")}
