"""Operations routes (GET /files, /files/{id}, /files/{id}/rejects, /stuck_cards) through the
real handler, on the sample partner files ingested by the real pipeline."""

from __future__ import annotations

import re
from typing import Any

import pytest
from api_helpers import Api, event_for, load_event

from fixture_paths import EVENTS

PARTNER_FILES = sorted((EVENTS / "partner_samples").glob("*.csv")) + sorted(
    (EVENTS / "partner_files").glob("*.csv")
)
# National numbers of the phones in the sample files: no answer may contain one.
SAMPLE_NATIONALS = ["551112233", "551112244", "585949016", "585949015", "585949014", "534534534"]


@pytest.fixture
def ingested(db: Any) -> dict[str, dict[str, Any]]:
    """The 11 sample files, ingested as partner acme; reports by file name."""
    from cardstatus.config import settings
    from cardstatus.ingest import ingest_path

    reports = {}
    for path in PARTNER_FILES:
        reports[path.name] = ingest_path(db, path, settings(), partner="acme")
    assert len(reports) == 11
    return reports


def _pages(api: Api, path: str, query: dict[str, str], key: str) -> list[list[Any]]:
    pages, cursor = [], None
    for _ in range(50):
        status, _, body = api.call(
            event_for(path, {**query, **({"cursor": cursor} if cursor else {})})
        )
        assert status == 200, body
        pages.append(body[key])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
    raise AssertionError("next_cursor never ended")


def test_files_newest_first_with_counts_and_reasons(api: Api, ingested: Any) -> None:
    status, _, body = api.call(load_event("list_files"))  # partner=acme, limit=20
    assert status == 200
    files = body["files"]
    assert body["next_cursor"] is None
    assert len(files) == 11
    assert [f["file_id"] for f in files] == sorted((f["file_id"] for f in files), reverse=True)
    newest = files[0]
    assert newest["key"].endswith("acme weekly export.csv")
    bad_rows = next(f for f in files if f["key"].endswith("acme bad rows - Returned.csv"))
    report = ingested["acme bad rows - Returned.csv"]
    assert bad_rows["counts"] == report["counts"]
    assert bad_rows["outcome"] == "applied" and bad_rows["voided"] is False
    assert bad_rows["received_at"].endswith("Z") and bad_rows["finished_at"].endswith("Z")

    status, _, body = api.call(load_event("list_files_rejected"))
    rejected = body["files"]
    assert {f["outcome"] for f in rejected} == {"rejected_file"}
    assert len(rejected) == 2
    assert all(f["reason"] for f in rejected)


def test_files_filters_and_paging(api: Api, ingested: Any) -> None:
    pages = _pages(api, "/files", {"limit": "4"}, "files")
    assert [len(p) for p in pages] == [4, 4, 3]
    ids = [f["file_id"] for page in pages for f in page]
    assert ids == sorted(set(ids), reverse=True) and len(ids) == 11

    for query, count in [
        ({"partner": "nobody"}, 0),
        ({"partner": "acme", "outcome": "applied"}, 9),
        ({"since": "2999-01-01"}, 0),
        ({"since": "2000-01-01T00:00:00Z"}, 11),
    ]:
        status, _, body = api.call(event_for("/files", query))
        assert (status, len(body["files"])) == (200, count), query


@pytest.mark.parametrize(
    ("path", "query", "parameter"),
    [
        ("/files", {"limit": "0"}, "limit"),
        ("/files", {"limit": "101"}, "limit"),
        ("/files", {"limit": "ten"}, "limit"),
        ("/files", {"outcome": "maybe"}, "outcome"),
        ("/files", {"since": "yesterday"}, "since"),
        ("/files", {"cursor": "not-a-cursor"}, "cursor"),
        ("/files", {"outcom": "applied"}, "outcom"),
        ("/files/abc", None, "file_id"),
        ("/files/0/rejects", None, "file_id"),
        ("/stuck_cards", {"status": "DELIVERED"}, "status"),
        ("/stuck_cards", {"older_than_hours": "-1"}, "older_than_hours"),
        ("/stuck_cards", {"older_than_hours": "soon"}, "older_than_hours"),
    ],
)
def test_bad_parameters_are_400_naming_them(
    api: Api, db_url: str, path: str, query: dict[str, str] | None, parameter: str
) -> None:
    status, _, body = api.call(event_for(path, query))
    assert status == 400, body
    assert body["error"]["code"] == "invalid_parameter"
    assert parameter in body["error"]["message"]


def test_a_cursor_of_another_list_is_refused(api: Api, ingested: Any) -> None:
    _, _, body = api.call(event_for("/files", {"limit": "1"}))
    cursor = body["next_cursor"]
    assert cursor
    status, _, body = api.call(event_for("/stuck_cards", {"cursor": cursor}))
    assert (status, body["error"]["code"]) == (400, "invalid_parameter")


def test_file_report_and_unknown_file(api: Api, ingested: Any) -> None:
    file_id = ingested["acme bad rows - Returned.csv"]["file_id"]
    status, _, body = api.call(event_for(f"/files/{file_id}"))
    assert status == 200
    stored = ingested["acme bad rows - Returned.csv"]
    assert body["file_id"] == file_id
    assert body["counts"] == stored["counts"] and body["rejects"] == stored["rejects"]
    assert (body["voided_at"], body["voided_by"], body["void_reason"]) == (None, None, None)

    status, _, body = api.call(load_event("get_file_unknown"))
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, _, body = api.call(event_for("/files/999999/rejects"))
    assert (status, body["error"]["code"]) == (404, "not_found")


def test_voided_file_shows_when_by_whom_and_why(api: Api, ingested: Any, db: Any) -> None:
    file_id = ingested["Sample Card Status Info - Returned.csv"]["file_id"]
    with db.cursor() as cur:
        cur.execute(
            "UPDATE ingested_file SET voided_at = '2026-12-01T10:00:00Z', voided_by = 'ops-1',"
            " void_reason = 'wrong partner' WHERE id = %s",
            (file_id,),
        )
    db.commit()
    _, _, body = api.call(event_for(f"/files/{file_id}"))
    assert (body["voided_at"], body["voided_by"], body["void_reason"]) == (
        "2026-12-01T10:00:00Z",
        "ops-1",
        "wrong partner",
    )
    _, _, listed = api.call(event_for("/files", {"limit": "100"}))
    assert [f["voided"] for f in listed["files"] if f["file_id"] == file_id] == [True]


def test_rejects_paged_in_line_order(api: Api, ingested: Any, db: Any) -> None:
    file_id = ingested["acme bad rows - Returned.csv"]["file_id"]
    with db.cursor() as cur:
        cur.execute(
            "SELECT line, reason, card_id, raw_row FROM rejected_row WHERE file_id = %s "
            "ORDER BY line",
            (file_id,),
        )
        expected = [
            {"line": line, "reason": reason, "card_id": card_id, "raw_row": raw}
            for line, reason, card_id, raw in cur.fetchall()
        ]
    db.rollback()
    assert len(expected) >= 3
    pages = _pages(api, f"/files/{file_id}/rejects", {"limit": "2"}, "rejects")
    assert all(len(p) <= 2 for p in pages)
    assert [r for page in pages for r in page] == expected

    clean = ingested["Sample Card Status Info - Returned.csv"]["file_id"]
    status, _, body = api.call(event_for(f"/files/{clean}/rejects"))
    assert (status, body) == (200, {"rejects": [], "next_cursor": None})


def test_stuck_cards_oldest_first_with_partner(api: Api, ingested: Any) -> None:
    status, _, body = api.call(load_event("list_stuck_cards"))  # DELIVERY_EXCEPTION, acme, 72 h
    assert status == 200
    cards = body["cards"]
    assert [c["card_id"] for c in cards] == ["QRK1004", "QRK1005", "QRK1006"]
    assert {c["partner"] for c in cards} == {"acme"}
    assert [c["status_at"] for c in cards] == sorted(c["status_at"] for c in cards)
    assert all(c["age_hours"] > 72 for c in cards)

    pages = _pages(
        api,
        "/stuck_cards",
        {"status": "DELIVERY_EXCEPTION", "older_than_hours": "1", "limit": "1"},
        "cards",
    )
    assert [c["card_id"] for page in pages for c in page] == ["QRK1004", "QRK1005", "QRK1006"]

    for query in (
        {"partner": "nobody", "status": "DELIVERY_EXCEPTION"},
        {"older_than_hours": "80000"},
    ):
        status, _, body = api.call(event_for("/stuck_cards", query))
        assert (status, body["cards"]) == (200, []), query

    status, _, body = api.call(event_for("/stuck_cards"))  # default: PICKED_UP over 72 h
    assert status == 200 and all(c["status"] == "PICKED_UP" for c in body["cards"])


def test_ops_answers_carry_no_full_phone(api: Api, ingested: Any) -> None:
    answers = []
    _, _, files = api.call(event_for("/files", {"limit": "100"}))
    answers.append(files)
    for f in files["files"]:
        answers.append(api.call(event_for(f"/files/{f['file_id']}"))[2])
        answers.append(api.call(event_for(f"/files/{f['file_id']}/rejects"))[2])
    for status in ("PICKED_UP", "DELIVERY_EXCEPTION"):
        answers.append(
            api.call(event_for("/stuck_cards", {"status": status, "older_than_hours": "0"}))[2]
        )
    import json

    text = json.dumps(answers)
    for value in re.findall(r'"((?:[^"\\]|\\.)*)"', text):
        digits = re.sub(r"\D", "", value)
        for national in SAMPLE_NATIONALS:
            assert national not in digits, value


def test_sample_events(api: Api, ingested: Any) -> None:
    status, _, body = api.call(load_event("get_file"))  # file 1: the first sample ingested
    assert (status, body["file_id"], body["outcome"]) == (200, 1, "applied")
    status, _, body = api.call(load_event("list_file_rejects"))
    assert (status, body) == (200, {"rejects": [], "next_cursor": None})
