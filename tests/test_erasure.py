"""Erasure on request (README "Privacy"): a phone or a card removed, recorded with who and
why, no trace of the number left, the delivery history kept."""

from __future__ import annotations

import io
from functools import partial
from typing import Any

import psycopg2
import pytest
from lambda_context import FakeLambdaContext

from cardstatus import cards, dbroles, erasure, phonehash
from cardstatus.config import load_settings
from cardstatus.errors import RequestError
from cardstatus.ingest import SourceInfo, ingest

ERASED = "+971585949014"
KEPT = "+971534534534"


def ingest_rows(conn: Any, key: str, rows: list[str]) -> dict[str, Any]:
    data = ("Card ID,User contact,Timestamp,Comment\n" + "\n".join(rows) + "\n").encode()
    return ingest(conn, io.BytesIO(data), SourceInfo(key=key, partner="default"), load_settings())


def one(db: Any, sql: str, *args: Any) -> Any:
    with db.cursor() as cur:
        cur.execute(sql, args)
        value = cur.fetchone()[0]
    db.commit()
    return value


@pytest.fixture
def history(db: Any) -> Any:
    # ERA1: the erased phone only. ERA2: first the kept phone, then the erased one (so after
    # the erasure it shows the kept one again). OTHER: the kept phone only.
    ingest_rows(
        db,
        "a - Pickup.csv",
        [
            "ERA1,0585949014,2024-01-01T10:00:00Z,",
            "ERA2,0534534534,2024-01-01T10:00:00Z,",
            "OTHER,0534534534,2024-01-01T10:00:00Z,",
        ],
    )
    ingest_rows(
        db,
        "a - Delivered.csv",
        [
            "ERA1,585 949 014,2024-01-02T10:00:00Z,left at door",
            "ERA2,0585949014,2024-01-02T10:00:00Z,",
        ],
    )
    return db


def hash_count(db: Any, e164: str) -> int:
    hashes = phonehash.lookup_hashes(e164)
    return sum(
        one(db, f"SELECT count(*) FROM {t} WHERE phone_hash = ANY(%s)", hashes)
        for t in ("card", "card_event", "event_copy")
    )


def test_a_phone_erased_everywhere_history_kept(history: Any) -> None:
    assert hash_count(history, ERASED) > 0
    result = erasure.erase_phone(history, "0585949014", "customer request #123", "ops-alice")
    assert (result.kind, result.cards, result.events, result.copies) == ("phone", 2, 3, 3)
    assert hash_count(history, ERASED) == 0
    assert cards.phone_cards(history, ERASED)["cards"] == []
    # ERA1 keeps its delivery history, without any phone; ERA2 shows the phone it had before.
    era1 = cards.card_by_id(history, "ERA1")
    assert era1["status"] == "DELIVERED" and len(era1["history"]) == 2
    assert era1["user_phone"] is None
    assert era1["history"][0]["comment"] == "left at door"
    assert cards.card_by_id(history, "ERA2")["user_phone"].endswith("4534")
    assert sorted(c["card_id"] for c in cards.phone_cards(history, KEPT)["cards"]) == [
        "ERA2",
        "OTHER",
    ]
    # Who asked and why, never the number (not even its last digits).
    with history.cursor() as cur:
        cur.execute("SELECT row_to_json(r)::text FROM erasure_request r")
        (record,) = cur.fetchone()
    assert "ops-alice" in record and "customer request #123" in record
    assert "9014" not in record and "585949014" not in record


def test_a_phone_erased_comes_back_with_a_later_file(history: Any) -> None:
    result = erasure.erase_phone(history, "+971 58 594 9014", "customer request", "ops")
    report = ingest_rows(
        history,
        "b - Returned.csv",
        ["ERA1,0585949014,2024-01-05T10:00:00Z,", "OTHER,0534534534,2024-01-05T10:00:00Z,"],
    )
    assert [c["card_id"] for c in cards.phone_cards(history, ERASED)["cards"]] == ["ERA1"]
    said = [w for w in report["warnings"] if "erased on request" in w["warning"]]
    assert [w["line"] for w in said] == [2]  # the kept number (line 3) is not flagged
    assert f"#{result.request_id}" in said[0]["warning"]
    assert "stored again" in said[0]["warning"]


def test_erased_numbers_are_forgotten_with_the_card_retention(history: Any) -> None:
    from datetime import UTC, datetime, timedelta

    from cardstatus import retention

    erasure.erase_phone(history, "0585949014", "customer request", "ops")
    retention.purge_expired_cards(history, retention_days=30, now=datetime.now(UTC))
    assert one(history, "SELECT count(*) FROM erased_phone") == 1  # erased today: kept
    later = datetime.now(UTC) + timedelta(days=31)
    retention.purge_expired_cards(history, retention_days=30, now=later)
    assert one(history, "SELECT count(*) FROM erased_phone") == 0


def test_cardstatus_erase(history: Any, db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from cardstatus_dev.cli import main

    argv = ["erase", "--phone", "058 594 9014", "--reason", "ticket 7", "--actor", "alice"]
    assert main([*argv, "--database-url", db_url]) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["kind"] == "phone" and json.loads(out)["events"] == 3
    assert "9014" not in out
    assert hash_count(history, ERASED) == 0
    assert main(["erase", "--card-id", "ERA2", "--reason", "r", "--database-url", db_url]) == 0
    assert json.loads(capsys.readouterr().out)["cards"] == 1
    assert main(["erase", "--card-id", "ERA2", "--reason", " ", "--database-url", db_url]) == 2
    assert main(["erase", "--phone", "123", "--reason", "r", "--database-url", db_url]) == 2


def test_a_card_erased_entirely(history: Any) -> None:
    version = one(history, "SELECT version FROM card WHERE card_id = 'ERA1'")
    result = erasure.erase_card(history, "era1", "card holder request", "ops-bob")
    assert (result.kind, result.cards, result.events, result.copies) == ("card", 1, 2, 2)
    for table in ("card", "card_event", "event_copy"):
        assert one(history, f"SELECT count(*) FROM {table} WHERE card_id = 'ERA1'") == 0
    assert one(history, "SELECT version FROM card_tombstone WHERE card_id = 'ERA1'") == version
    assert one(history, "SELECT count(*) FROM card WHERE card_id = 'ERA2'") == 1


def test_bad_requests_change_nothing(history: Any) -> None:
    for call in (
        lambda: erasure.erase_phone(history, "0585949014", "  ", "ops"),
        lambda: erasure.erase_phone(history, "not a phone", "why", "ops"),
        lambda: erasure.erase_card(history, "bad id!", "why", "ops"),
        lambda: erasure.erase_card(history, "ERA1", "x" * 501, "ops"),
    ):
        with pytest.raises(RequestError):
            call()
    assert one(history, "SELECT count(*) FROM erasure_request") == 0
    assert hash_count(history, ERASED) > 0


def test_the_void_role_erases_through_the_functions_only(history: Any, db_url: str) -> None:
    """The void function serves POST /privacy/erase: it may run the erasure functions but
    neither write the request log itself nor read the erased numbers' hashes."""
    void = psycopg2.connect(db_url, user=dbroles.VOID)
    try:
        for statement in (
            "INSERT INTO erasure_request (actor, reason, kind) VALUES ('x', 'y', 'card')",
            "SELECT * FROM erased_phone",
        ):
            with void.cursor() as cur, pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute(statement)
            void.rollback()
        assert erasure.erase_phone(void, "0585949014", "request", "ops").events == 3
    finally:
        void.close()


# --- POST /privacy/erase (the void function; events/void/erase_*.json) ----------------------


_Context = partial(FakeLambdaContext, function_name="cardstatus-void")


def _erase_event(name: str, **body: Any) -> dict[str, Any]:
    import json

    from fixture_paths import EVENTS

    event = json.loads((EVENTS / "void" / f"{name}.json").read_text())
    if body:
        event["body"] = json.dumps(body)
    return dict(event)


def _call(event: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> tuple[int, Any, str]:
    import json

    from cardstatus_dev.paths import import_function

    app = import_function("void")
    app.DB.reset_settings(None)
    try:
        response = app.handler(event, _Context())
    finally:
        app.DB.discard()
    return response["statusCode"], json.loads(response["body"]), capsys.readouterr().out


def test_erase_route_by_phone_and_by_card(
    history: Any, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, body, logs = _call(_erase_event("erase_phone"), capsys)
    assert status == 200, body
    assert (body["kind"], body["cards"], body["events"]) == ("phone", 2, 3)
    assert body["requested_by"].startswith("arn:aws:")  # the caller's IAM identity
    assert "585949014" not in logs and "9014" not in json_text(body)
    assert hash_count(history, ERASED) == 0
    status, body, _ = _call(_erase_event("erase_card", card_id="ERA2", reason="DSR-9"), capsys)
    assert status == 200 and body["kind"] == "card" and body["cards"] == 1
    assert one(history, "SELECT count(*) FROM card WHERE card_id = 'ERA2'") == 0


def test_erase_route_refuses_bad_requests(
    history: Any, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for event in (
        _erase_event("erase_both"),
        _erase_event("erase_phone", reason="only a reason"),
        _erase_event("erase_phone", phone="not a phone", reason="x"),
        _erase_event("erase_phone", phone="0585949014"),
    ):
        status, body, logs = _call(event, capsys)
        assert status == 400, body
        assert set(body["error"]) == {"code", "message"}
        assert "585949014" not in logs
    assert one(history, "SELECT count(*) FROM erasure_request") == 0


def json_text(body: Any) -> str:
    import json

    return json.dumps(body)
