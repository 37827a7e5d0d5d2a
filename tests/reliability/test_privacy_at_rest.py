"""No full phone at rest (README "Privacy", SPEC §11): after the ingest function has read every
sample file (the partner's samples, the shared copy, the messy partner files and a file whose
comments carry phone numbers), no full phone number in any written form is in any text or
jsonb column of any table of the database, in any report in S3, in any outbox row, in any
published event or in any captured log line; and every phone is still found by every form a
caller may write it in."""

from __future__ import annotations

import io
import json
import logging
import re
from typing import Any

import pytest
import rel_support as rs

from cardstatus import cards
from cardstatus.normalise import normalise_phone
from cardstatus_dev.serve import load_api_module
from fixture_paths import EVENTS, PARTNER_SAMPLES, SHARED_SAMPLES

COMMENT_FILE = (
    b"Card ID,Phone,Timestamp,Comment\n"
    b"PV1,0581112222,2024-03-05T06:00:00Z,not home: call +971 58 111 2222 or 0524445555\n"
    b"PV2,+971502223333,2024-03-05T07:00:00Z,customer asked to ring 050-222-3333 (wife)\n"
    b"PV3,971567778888,2024-03-05T08:00:00Z,left with guard\n"
)


def _sample_files() -> dict[str, bytes]:
    """Every partner file the repository ships, keyed by the S3 key it is uploaded under."""
    files: dict[str, bytes] = {}
    folders = {
        "samples": PARTNER_SAMPLES,
        "shared": SHARED_SAMPLES,
        "partner": EVENTS / "partner_files",
    }
    for prefix, folder in folders.items():
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.csv")):
            files[f"incoming/acme/{prefix} {path.name}"] = path.read_bytes()
    files["incoming/acme/comments with phones - delivery exceptions.csv"] = COMMENT_FILE
    return files


_DIGITS = re.compile(r"\+?[\d][\d\s().\-]{6,}\d")
_DATE = re.compile(r"\d{1,2}[-/.]\d{1,2}[-/.]\d{4}|\d{4}[-/.]\d{1,2}[-/.]\d{1,2}")


def _numbers_in(files: dict[str, bytes]) -> set[str]:
    """E.164 numbers of every valid UAE phone written anywhere in the files (cells and free
    text alike), found by normalising every digit run."""
    found: set[str] = set()
    for data in files.values():
        for encoding in ("utf-8-sig", "utf-16", "cp1252"):
            try:
                text = data.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        text = text.replace('"', " ").replace("'", " ")
        for run in _DIGITS.findall(text):
            if _DATE.search(run):  # '05-03-2099 10:00' is a time, not a phone
                continue
            phone = normalise_phone(run.strip(), "AE")
            if phone.e164:
                found.add(phone.e164)
    return found


def _forms(e164: str) -> list[str]:
    """The written forms of a UAE number: E.164, international without '+', 00-prefixed,
    national with trunk 0, national significant digits, and spaced/dashed variants."""
    nsn = e164[4:]
    return [
        e164,
        e164[1:],
        "00" + e164[1:],
        "0" + nsn,
        nsn,
        f"+971 {nsn[:2]} {nsn[2:5]} {nsn[5:]}",
        f"0{nsn[:2]}-{nsn[2:5]}-{nsn[5:]}",
        f"(0{nsn[:2]}) {nsn[2:5]} {nsn[5:]}",
    ]


def _database_texts(db: Any) -> dict[str, str]:
    """Every text-like column (text, varchar, char, json, jsonb, arrays of them) of every table
    in the database, as text: {"table.column": all values joined}."""
    with db.cursor() as cur:
        cur.execute(
            """SELECT c.table_schema, c.table_name, c.column_name
               FROM information_schema.columns c
               JOIN information_schema.tables t USING (table_schema, table_name)
               WHERE t.table_type = 'BASE TABLE'
                 AND c.table_schema NOT IN ('pg_catalog', 'information_schema')
                 AND (c.data_type IN ('text', 'character varying', 'character', 'json', 'jsonb')
                      OR c.udt_name IN ('_text', '_varchar', '_json', '_jsonb'))
               ORDER BY 1, 2, 3"""
        )
        columns = cur.fetchall()
        texts = {}
        for schema, table, column in columns:
            cur.execute(f'SELECT string_agg("{column}"::text, E\'\\n\') FROM "{schema}"."{table}"')
            texts[f"{table}.{column}"] = cur.fetchone()[0] or ""
    db.commit()
    assert {"card.phone_hash", "event_copy.comment", "status_outbox.detail"} <= set(texts)
    return texts


def test_no_full_phone_at_rest_and_every_form_still_finds_it(
    ingest_app: Any,
    s3: Any,
    db: Any,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    stream = io.StringIO()
    handler = ingest_app.logger.registered_handler
    previous = handler.setStream(stream)
    ingest_app.logger.setLevel("DEBUG")
    files = _sample_files()
    numbers = _numbers_in(files)
    assert len(numbers) >= 10 and "+971585949014" in numbers and "+971524445555" in numbers
    try:
        for key, data in files.items():
            s3.put_object(Bucket=rs.BUCKET, Key=key, Body=data)
        messages = [(f"m{i}", rs.s3_notification(rs.BUCKET, k), 1) for i, k in enumerate(files)]
        result = ingest_app.handler(rs.sqs_event(messages), rs.FakeContext())
        assert result["batchItemFailures"] == []
    finally:
        handler.setStream(previous)
        ingest_app.logger.setLevel("INFO")

    listed = s3.list_objects_v2(Bucket=rs.BUCKET, Prefix="reports/")["Contents"]
    reports = {
        obj["Key"]: s3.get_object(Bucket=rs.BUCKET, Key=obj["Key"])["Body"].read().decode()
        for obj in listed
    }
    assert len(reports) == len(files)
    captured = capfd.readouterr()
    sinks = {
        **_database_texts(db),
        **reports,
        "powertools log": stream.getvalue(),
        "caplog": "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records),
        "stdout": captured.out,
        "stderr": captured.err,
    }
    assert "file ingested" in sinks["powertools log"]
    nationals = sorted(n[4:] for n in numbers)
    leaks = {name: rs.full_phones_in(text, nationals) for name, text in sinks.items()}
    assert {name: found for name, found in leaks.items() if found} == {}

    # What the rows hold instead: hashes, key versions, last 4 digits; comments masked.
    with db.cursor() as cur:
        cur.execute("SELECT count(*), count(phone_hash), count(phone) FROM event_copy")
        copies, hashed, full = cur.fetchone()
        cur.execute("SELECT comment FROM card_event WHERE card_id = 'PV1'")
        (comment,) = cur.fetchone()
    db.commit()
    assert copies > 20 and hashed > 15 and full == 0
    assert comment == "not home: call ********2222 or ******5555"

    # Every number is still found, by every written form.
    for e164 in sorted(numbers):
        found = None
        for form in _forms(e164):
            body = cards.phone_cards(db, cards.parse_phone(form))
            ids = sorted(c["card_id"] for c in body["cards"])
            assert all(c["user_phone"] == "********" + e164[-4:] for c in body["cards"])
            found = ids if found is None else found
            assert ids == found, (e164, form)
        if e164 in {"+971585949014", "+971502223333", "+971581112222"}:
            assert found, e164


def test_the_api_finds_cards_by_phone_in_every_form(ingest_app: Any, s3: Any, db: Any) -> None:
    """Through the API handler (GET /cards, GET /get_card_status, POST /cards/search)."""
    key = "incoming/acme/comments with phones - delivery exceptions.csv"
    s3.put_object(Bucket=rs.BUCKET, Key=key, Body=COMMENT_FILE)
    result = ingest_app.handler(
        rs.sqs_event([("m1", rs.s3_notification(rs.BUCKET, key), 1)]), rs.FakeContext()
    )
    assert result["batchItemFailures"] == []
    api = load_api_module()
    api.DB.reset_settings(None)
    try:
        for form in _forms("+971502223333"):
            listed = _call(api, "GET", "/cards", {"user_phone": form})
            assert [c["card_id"] for c in listed["cards"]] == ["PV2"], form
            assert listed["cards"][0]["user_phone"] == "********3333"
            status = _call(api, "GET", "/get_card_status", {"user_phone": form, "card_id": "PV2"})
            assert status["card_id"] == "PV2"
            searched = _call(api, "POST", "/cards/search", body={"user_phone": form})
            assert searched["card_id"] == "PV2"
    finally:
        api.DB.reset_settings(None)


def _call(
    api: Any,
    method: str,
    path: str,
    query: dict[str, str] | None = None,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    from urllib.parse import quote, urlencode

    from cardstatus_dev.serve import build_event

    target = path + ("?" + urlencode(query, quote_via=quote) if query else "")
    headers = [("Content-Type", "application/json")] if body is not None else None
    data = json.dumps(body).encode() if body is not None else None
    event = build_event(method, target, headers, data)
    result = api.handler(event, rs.FakeContext())
    assert result["statusCode"] == 200, result
    return json.loads(result["body"])
