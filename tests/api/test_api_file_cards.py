"""The routes linking files and cards (GET /files/{id}/cards, /void_preview, /rejects.csv),
the has_rejects filter and case-insensitive enum parameters, through the real API handler;
and who a void records when the console passes the operator's name."""

from __future__ import annotations

import io
from typing import Any

from api_helpers import Api, event_for

from cardstatus import filecards
from cardstatus.config import load_settings
from cardstatus.ingest import SourceInfo, ingest
from functions.void.app import caller_identity

PICKUP = b"Card ID,Phone,Timestamp\nSPX001,0501112201,03-12-2026 09:10\nSPX002,0501112202,03-12-2026 09:20\n"
WRONG = b"Card ID,Phone,Timestamp\nSPX001,0501112201,06-12-2026 08:30\nSPX002,,06-12-2026 08:45\n"
BAD = (
    b"Card ID,Phone,Timestamp\nSPX003,0501112203,05-12-2026 10:00\n"
    b"SPX 004,0501112204,05-12-2026 10:10\nSPX005,0501112205,20261205 1015\n"
)


def _ingest(db: Any, data: bytes, name: str) -> dict[str, Any]:
    source = SourceInfo(key=f"incoming/speedy/{name}", partner="speedy", bucket="b")
    return ingest(db, io.BytesIO(data), source, load_settings())


def test_file_cards_and_void_preview_routes(api: Api, db: Any) -> None:
    _ingest(db, PICKUP, "speedy Pickup.csv")
    wrong = _ingest(db, WRONG, "speedy Returned.csv")["file_id"]
    status, _, body = api.call(event_for(f"/files/{wrong}/cards", {"limit": "1"}))
    assert status == 200
    assert body["counts"] == {"apply": 2, "void": 0}
    assert body["cards"][0] | {"changed_at": None} == {
        "card_id": "SPX001",
        "action": "apply",
        "status_before": "PICKED_UP",
        "status_after": "RETURNED",
        "status_now": "RETURNED",
        "changed_at": None,
    }
    status, _, more = api.call(
        event_for(f"/files/{wrong}/cards", {"cursor": body["next_cursor"], "action": "APPLY"})
    )
    assert (status, [c["card_id"] for c in more["cards"]]) == (200, ["SPX002"])

    status, _, preview = api.call(event_for(f"/files/{wrong}/void_preview"))
    assert status == 200 and preview["status_changes"] == 2
    assert [c["status_after_void"] for c in preview["cards"]] == ["PICKED_UP", "PICKED_UP"]

    status, _, missing = api.call(event_for("/files/999999/cards"))
    assert (status, missing["error"]["code"]) == (404, "not_found")
    status, _, bad = api.call(event_for(f"/files/{wrong}/cards", {"action": "undo"}))
    assert (status, bad["error"]["code"]) == (400, "invalid_parameter")


def test_rejects_csv_route_round_trips(api: Api, db: Any) -> None:
    report = _ingest(db, BAD, "speedy Delivered.csv")
    result = api.raw(event_for(f"/files/{report['file_id']}/rejects.csv"))
    assert result["statusCode"] == 200
    headers = dict(result.get("headers") or {})
    headers.update({k: v[-1] for k, v in (result.get("multiValueHeaders") or {}).items()})
    assert headers["Content-Type"].startswith("text/csv")
    assert headers["X-Truncated"] == "false"
    assert "attachment" in headers["Content-Disposition"]
    rows = filecards.parse_csv(result["body"])
    assert rows == [
        {"line": "3", "card_id": "", "reason": rows[0]["reason"],
         "raw_row": "SPX 004,******2204,05-12-2026 10:10"},
        {"line": "4", "card_id": "SPX005", "reason": rows[1]["reason"],
         "raw_row": "SPX005,******2205,20261205 1015"},
    ]  # fmt: skip
    assert "20261205 1015" in rows[1]["reason"]  # A1: a timestamp is never masked
    status, _, missing = api.call(event_for("/files/999999/rejects.csv"))
    assert (status, missing["error"]["code"]) == (404, "not_found")


def test_has_rejects_and_case_insensitive_enums(api: Api, db: Any) -> None:
    _ingest(db, PICKUP, "speedy Pickup.csv")
    bad = _ingest(db, BAD, "speedy Delivered.csv")["file_id"]
    status, _, body = api.call(event_for("/files", {"has_rejects": "true"}))
    assert status == 200 and [f["file_id"] for f in body["files"]] == [bad]
    status, _, body = api.call(event_for("/files", {"outcome": "Applied", "has_rejects": "False"}))
    assert status == 200 and len(body["files"]) == 1 and body["files"][0]["cards_changed"] == 2
    status, _, body = api.call(
        event_for("/stuck_cards", {"status": "picked_up", "older_than_hours": "0"})
    )
    assert status == 200 and body["total"] == 2
    assert {"reason", "comment", "exception_count", "file_id"} <= set(body["cards"][0])
    status, _, body = api.call(event_for("/files", {"outcome": "voided"}))
    assert (status, body["error"]["code"]) == (400, "invalid_parameter")


def test_history_entries_link_file_and_line(api: Api, db: Any) -> None:
    first = _ingest(db, PICKUP, "speedy Pickup.csv")["file_id"]
    status, _, card = api.call(event_for("/cards/SPX002"))
    assert status == 200
    assert [(h["file_id"], h["line"]) for h in card["history"]] == [(first, 3)]


def test_void_records_the_iam_identity_and_the_consoles_operator() -> None:
    arn = "arn:aws:sts::111122223333:assumed-role/Ops/session"
    signed = {"requestContext": {"identity": {"userArn": arn}}}
    assert caller_identity(signed) == arn
    named = {**signed, "headers": {"X-Cardstatus-Operator": "  Aisha\tK.\n"}}
    assert caller_identity(named) == f"{arn} (operator: Aisha K.)"
    local = {"requestContext": {"identity": {}}, "headers": {"x-cardstatus-operator": "Aisha"}}
    assert caller_identity(local) == "Aisha"  # the local server has no IAM identity
    assert caller_identity({"requestContext": {}}) == "unknown"
