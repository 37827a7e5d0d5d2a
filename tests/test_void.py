"""Voiding a file through its entry points: the `cardstatus void` command, the void function
(POST /files/{file_id}/void, sample events in events/void/), the local server's routing, and
the database role it runs as. The property, crash and concurrency suites are in
tests/reliability/test_void_*.py."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import psycopg2
import psycopg2.errors
import psycopg2.extensions
import pytest
from lambda_context import FakeLambdaContext
from moto import mock_aws
from outbox_support import BUS as OUTBOX_BUS
from outbox_support import Recorder, assert_valid_events, outbox

from cardstatus import dbroles
from cardstatus.cards import get_card
from cardstatus.errors import Conflict, FileNotFound, MissingParameter
from cardstatus.void import FileNotApplied, void_file
from cardstatus_dev.cli import main
from fixture_paths import EVENTS, PARTNER_SAMPLES

SAMPLES = sorted(PARTNER_SAMPLES.glob("*.csv"))
RETURNED = next(p for p in SAMPLES if p.name.endswith("Returned.csv"))
BUCKET = "cardstatus-void-test"


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, Any]]]:
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, [json.loads(line) for line in out.splitlines() if line.strip()]


def _ingest(capsys: pytest.CaptureFixture[str], *paths: Path) -> dict[str, dict[str, Any]]:
    code, reports = _cli(capsys, "ingest", *map(str, paths))
    assert code == 0, reports
    return {Path(r["file"]["key"]).name: r for r in reports}


def _card(db: Any, card_id: str) -> dict[str, Any] | None:
    card = get_card(db, card_id)
    db.commit()
    return None if card is None else card.to_dict()


def _outbox(db: Any, card_id: str) -> list[tuple[int, dict[str, Any]]]:
    with db.cursor() as cur:
        cur.execute(
            "SELECT card_version, detail FROM status_outbox WHERE card_id = %s ORDER BY id",
            (card_id,),
        )
        rows = cur.fetchall()
    db.commit()
    return rows


def _file_row(db: Any, file_id: int) -> tuple[Any, ...]:
    with db.cursor() as cur:
        cur.execute(
            "SELECT voided_at, voided_by, void_reason, report FROM ingested_file WHERE id = %s",
            (file_id,),
        )
        row = cur.fetchone()
    db.commit()
    return row


# --- the "done when", through the command line --------------------------------------


def test_voiding_the_returned_sample_and_ingesting_it_again(
    db_url: str, db: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    reports = _ingest(capsys, *SAMPLES)
    assert _card(db, "ZYW8890")["status"] == "RETURNED"  # type: ignore[index]
    returned_id = reports[RETURNED.name]["file_id"]

    code, (answer,) = _cli(capsys, "void", str(returned_id), "--reason", "wrong file")
    assert code == 0
    assert answer["file_id"] == returned_id and answer["voided"] is True
    assert answer["reason"] == "wrong file" and answer["voided_by"]
    assert answer["events_removed"] == 1 and answer["cards_changed"] == 1
    assert answer["status_changes"] == 1 and answer["cards_deleted"] == 0

    card = _card(db, "ZYW8890")
    assert card is not None
    assert (card["status"], card["status_at"]) == ("DELIVERY_EXCEPTION", "2023-11-13T10:00:00Z")
    assert len(card["history"]) == 2
    assert card["returned_at"] is None and card["reason"] == "recipient_unavailable"
    voided_at, voided_by, reason, report = _file_row(db, returned_id)
    assert voided_at is not None and voided_by == answer["voided_by"] and reason == "wrong file"
    assert report["voided"]["at"] == answer["voided_at"]
    assert report["voided"]["by"] == answer["voided_by"]
    assert report["voided"]["reason"] == "wrong file"

    # Voiding again: the same answer, nothing changes.
    code, (again,) = _cli(capsys, "void", str(returned_id), "--reason", "other", "--actor", "bob")
    assert code == 0 and again == answer

    # The same bytes are applied again (the void freed their meaning).
    (report,) = _ingest(capsys, RETURNED).values()
    assert report["outcome"] == "applied" and report["file_id"] != returned_id
    card = _card(db, "ZYW8890")
    assert card is not None and card["status"] == "RETURNED" and len(card["history"]) == 3

    # CardStatusChanged per change: first sightings..., RETURNED, the void, RETURNED again.
    changes = [(v, d["previous_status"], d["status"]) for v, d in _outbox(db, "ZYW8890")]
    assert changes[-3:] == [
        (changes[-3][0], "DELIVERY_EXCEPTION", "RETURNED"),
        (changes[-3][0] + 1, "RETURNED", "DELIVERY_EXCEPTION"),
        (changes[-3][0] + 2, "DELIVERY_EXCEPTION", "RETURNED"),
    ]
    assert [v for v, _ in _outbox(db, "ZYW8890")] == sorted({v for v, _ in _outbox(db, "ZYW8890")})


def test_cli_unknown_file_and_never_applied_file_exit_1_and_change_nothing(
    db_url: str, db: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    reports = _ingest(capsys, *SAMPLES)
    code, (err,) = _cli(capsys, "void", "999999", "--reason", "wrong file")
    assert code == 1 and err == {
        "error": {"code": "not_found", "message": "no file with id 999999"}
    }

    # The same bytes under another name: a duplicate_file, which changed nothing.
    copy = tmp_path / "void-dup Returned.csv"
    copy.write_bytes(RETURNED.read_bytes())
    (dup,) = _ingest(capsys, copy).values()
    assert dup["outcome"] == "duplicate_file"
    before = _card(db, "ZYW8890")
    code, (err,) = _cli(capsys, "void", str(dup["file_id"]), "--reason", "wrong file")
    assert code == 1 and err["error"]["code"] == "conflict"
    assert "was not applied (outcome duplicate_file)" in err["error"]["message"]
    assert _card(db, "ZYW8890") == before
    assert _file_row(db, dup["file_id"])[0] is None
    assert _file_row(db, reports[RETURNED.name]["file_id"])[0] is None

    code, _ = _cli(capsys, "void", "12")  # --reason is required
    assert code == 2


def test_domain_errors_are_the_shared_error_model(db_url: str, db: Any) -> None:
    with pytest.raises(FileNotFound):
        void_file(db, 1, "wrong file", "tester")
    assert issubclass(FileNotApplied, Conflict)
    with pytest.raises(MissingParameter):
        void_file(db, 1, "   ", "tester")


def test_a_card_only_the_voided_file_knew_is_deleted_and_its_versions_continue(
    db_url: str, db: Any, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "test upload - Delivered.csv"
    path.write_text("Card ID,User contact,Timestamp\nONLY1,0585949014,2023-11-20T08:00:00Z\n")
    (report,) = _ingest(capsys, path).values()
    code, (answer,) = _cli(capsys, "void", str(report["file_id"]), "--reason", "test file")
    assert code == 0 and answer["cards_deleted"] == 1 and answer["status_changes"] == 1
    assert _card(db, "ONLY1") is None
    (again,) = _ingest(capsys, path).values()
    assert again["outcome"] == "applied"
    rows = _outbox(db, "ONLY1")
    assert [(v, d["previous_status"], d["status"]) for v, d in rows] == [
        (1, None, "DELIVERED"),
        (2, "DELIVERED", None),  # the void: the card is gone (status and status_at null)
        (3, None, "DELIVERED"),  # sighted again: version 3, not 1 (card_tombstone)
    ]
    assert rows[1][1]["status_at"] is None and rows[1][1]["file_id"] == report["file_id"]


# --- the database role ----------------------------------------------------------------------


def test_the_void_role_may_void_and_the_api_role_may_not(
    db_url: str, db: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    reports = _ingest(capsys, *SAMPLES)
    file_id = reports[RETURNED.name]["file_id"]
    api = psycopg2.connect(db_url, user=dbroles.API)
    try:
        with pytest.raises(
            (psycopg2.errors.InsufficientPrivilege, psycopg2.errors.ReadOnlySqlTransaction)
        ):
            void_file(api, file_id, "wrong file", "tester")
    finally:
        api.close()
    voider = psycopg2.connect(db_url, user=dbroles.VOID)
    try:
        result = void_file(voider, file_id, "wrong file", "tester")
    finally:
        voider.close()
    assert result.status_changes == 1
    assert _card(db, "ZYW8890")["status"] == "DELIVERY_EXCEPTION"  # type: ignore[index]


# --- the void function ----------------------------------------------------------------------


def _event(name: str, **changes: Any) -> dict[str, Any]:
    event = json.loads((EVENTS / "void" / f"{name}.json").read_text())
    if "file_id" in changes:
        file_id = str(changes.pop("file_id"))
        event["pathParameters"]["file_id"] = file_id
        event["path"] = f"/files/{file_id}/void"
    event.update(changes)
    return event


_Context = partial(FakeLambdaContext, function_name="cardstatus-void")


@pytest.fixture
def void_app(db_url: str) -> Iterator[tuple[Any, Any]]:
    """functions/void/app.py with its connection on the test database and a moto S3 bucket."""
    from cardstatus_dev.paths import import_function

    app = import_function("void")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        app.DB.reset_settings(None)
        app._s3 = s3
        yield app, s3
        app.DB.discard()
        app._s3 = None


def _call(app: Any, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = app.handler(event, _Context())
    return response["statusCode"], json.loads(response["body"])


def _ingest_s3_file(db: Any, key: str, data: bytes) -> dict[str, Any]:
    """A file as the ingest function records it (bucket and key), without the S3 round trip."""
    import io

    from cardstatus.config import load_settings
    from cardstatus.ingest import SourceInfo, ingest_retrying

    source = SourceInfo(key=key, partner="acme", bucket=BUCKET, etag="e1", size_bytes=len(data))
    return ingest_retrying(db, lambda: io.BytesIO(data), source, load_settings())


def test_void_function_voids_as_the_callers_identity_and_rewrites_the_s3_report(
    db: Any, void_app: tuple[Any, Any]
) -> None:
    app, s3 = void_app
    ids = {}
    for sample in SAMPLES:
        report = _ingest_s3_file(db, f"incoming/acme/{sample.name}", sample.read_bytes())
        assert report["outcome"] == "applied"
        ids[sample.name] = report["file_id"]
    key = f"incoming/acme/{RETURNED.name}"
    file_id = ids[RETURNED.name]

    status, body = _call(app, _event("void_file", file_id=file_id))
    assert status == 200, body
    assert body["voided"] is True and body["file_id"] == file_id
    assert body["voided_by"] == "arn:aws:sts::123456789012:assumed-role/CardStatusOps/alice"
    assert body["reason"] == "wrong file: a Delivered export uploaded as Returned"
    stored = json.loads(s3.get_object(Bucket=BUCKET, Key=f"reports/{key}.json")["Body"].read())
    assert stored["voided"]["by"] == body["voided_by"] and stored["file_id"] == file_id
    assert _card(db, "ZYW8890")["status"] == "DELIVERY_EXCEPTION"  # type: ignore[index]

    status, again = _call(app, _event("void_file", file_id=file_id))
    assert (status, again) == (200, body)


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("void_file_unknown", 404, "not_found"),
        ("void_file_missing_reason", 400, "missing_parameter"),
        ("void_file_not_json", 400, "invalid_parameter"),
        ("void_file_invalid_id", 400, "invalid_parameter"),
    ],
)
def test_void_function_errors(void_app: tuple[Any, Any], name: str, status: int, code: str) -> None:
    app, _ = void_app
    answer_status, body = _call(app, _event(name))
    assert (answer_status, body["error"]["code"]) == (status, code), body
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}


def test_void_function_refuses_a_file_that_was_never_applied(
    db: Any, void_app: tuple[Any, Any]
) -> None:
    app, _ = void_app
    data = RETURNED.read_bytes()
    _ingest_s3_file(db, "incoming/acme/a Returned.csv", data)
    dup = _ingest_s3_file(db, "incoming/acme/b Returned.csv", data)
    assert dup["outcome"] == "duplicate_file"
    status, body = _call(app, _event("void_file", file_id=dup["file_id"]))
    assert status == 409 and body["error"]["code"] == "conflict"


# --- the void function publishes its events after commit -------------------------------------


@pytest.fixture
def void_publishing(
    db_url: str, void_app: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Any, Recorder]]:
    """The void function logged in as cardstatus_void (as in Lambda), with a moto bus."""
    from dataclasses import replace

    from cardstatus import config

    app, _ = void_app
    monkeypatch.setenv("EVENT_BUS_NAME", OUTBOX_BUS)
    config.reset_settings_cache()
    params = psycopg2.extensions.parse_dsn(db_url)
    params["user"] = dbroles.VOID
    app.DB.reset_settings(
        replace(config.load_settings(), database_url=psycopg2.extensions.make_dsn(**params))
    )
    recorder = Recorder(boto3.Session(region_name="us-east-1"))
    app._events = recorder.events
    yield app, recorder
    app._events = None
    config.reset_settings_cache()


def _last_outbox_id(db: Any) -> int:
    return max((r["id"] for r in outbox(db)), default=0)


def _outbox_after(db: Any, last_id: int) -> list[dict[str, Any]]:
    """The rows written after last_id (the void's: the file's ingestion wrote the others)."""
    return [r for r in outbox(db) if r["id"] > last_id]


def test_void_function_publishes_its_events_after_commit(
    db: Any, void_publishing: tuple[Any, Recorder]
) -> None:
    app, recorder = void_publishing
    ids = {s.name: _ingest_s3_file(db, f"incoming/acme/{s.name}", s.read_bytes()) for s in SAMPLES}
    file_id = ids[RETURNED.name]["file_id"]
    last_id = _last_outbox_id(db)  # the samples' events: pending (no ingest function here)

    status, body = _call(app, _event("void_file", file_id=file_id))
    assert status == 200 and body["status_changes"] == 1, body
    (row,) = _outbox_after(db, last_id)
    assert row["detail"]["card_id"] == "ZYW8890" and row["detail"]["file_id"] == file_id
    assert row["published_at"] is not None and row["attempts"] == 1
    (event,) = recorder.received()  # the void's event only: the range it wrote
    assert event["detail"]["event_id"] == row["event_id"]
    assert event["detail"]["status"] == "DELIVERY_EXCEPTION"
    assert_valid_events([event])
    assert all(r["published_at"] is None for r in outbox(db) if r["id"] <= last_id)

    # Voiding again writes nothing and publishes nothing.
    status, _ = _call(app, _event("void_file", file_id=file_id))
    assert status == 200 and len(_outbox_after(db, last_id)) == 1
    assert len(recorder.received()) == 1


def test_void_function_answers_the_void_when_the_bus_is_unavailable(
    db: Any, void_publishing: tuple[Any, Recorder]
) -> None:
    """Publishing is best effort: the void is committed and answered; its rows stay pending
    (with the error) for the sweeper."""
    app, recorder = void_publishing
    report = _ingest_s3_file(db, f"incoming/acme/{RETURNED.name}", RETURNED.read_bytes())
    last_id = _last_outbox_id(db)
    recorder.delete_bus()
    status, body = _call(app, _event("void_file", file_id=report["file_id"]))
    assert status == 200 and body["voided"] is True, body
    rows = _outbox_after(db, last_id)
    assert rows and all(r["published_at"] is None for r in rows)
    assert all(r["attempts"] == 1 and r["last_error"] for r in rows)


def test_local_server_routes_the_void_to_the_void_function(db: Any, void_app: Any) -> None:
    from cardstatus_dev.serve import build_event, route_to_functions

    event = build_event(
        "POST", "/files/77/void", [("Content-Type", "application/json")], b'{"reason": "x"}'
    )
    assert event["resource"] == "/files/{file_id}/void"
    assert event["pathParameters"] == {"file_id": "77"}
    response = route_to_functions()(event, _Context())
    assert response["statusCode"] == 404
    assert json.loads(response["body"])["error"]["message"] == "no file with id 77"


def test_a_late_redelivery_of_a_voided_object_version_does_not_apply_it_again(db: Any) -> None:
    # SQS may deliver the original S3 event again after the void: the same object version is
    # a redelivery (the stored report, nothing applied). A new upload (new version) applies.
    from cardstatus.config import load_settings
    from cardstatus.ingest import SourceInfo, ingest

    data = RETURNED.read_bytes()

    def deliver(version: str) -> dict[str, Any]:
        source = SourceInfo(
            key="incoming/acme/x Returned.csv",
            partner="acme",
            bucket=BUCKET,
            version_id=version,
            etag="e1",
            size_bytes=len(data),
        )
        return ingest(db, io.BytesIO(data), source, load_settings())

    first = deliver("v1")
    assert first["outcome"] == "applied"
    void_file(db, first["file_id"], "wrong file", "ops")
    assert _card(db, "ZYW8890") is None  # only the voided file knew the card

    again = deliver("v1")
    assert again.get("redelivery") is True and again["file_id"] == first["file_id"]
    assert _card(db, "ZYW8890") is None

    reupload = deliver("v2")
    assert reupload["outcome"] == "applied" and reupload["file_id"] != first["file_id"]
    assert _card(db, "ZYW8890")["status"] == "RETURNED"


def test_void_handler_files_stay_under_150_lines() -> None:
    """Issue 13: no handler file over 150 lines (models in schemas.py, error answers in
    errors.py, the after-commit work in aftercommit.py)."""
    from fixture_paths import ROOT

    lengths = {
        p.name: len(p.read_text().splitlines()) for p in (ROOT / "functions" / "void").glob("*.py")
    }
    assert lengths and max(lengths.values()) <= 150, lengths
