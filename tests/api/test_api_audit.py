"""Every lookup accountable (README "Privacy", "Who looked at a card"): the audit trail of a
known sequence of lookups.

The api prints one audit line per lookup; in these tests, as in `cardstatus serve`/`local`,
the local stand-in for the CloudWatch Logs subscription hands each line to the real audit
function at once (cardstatus_dev/local_audit.py), which appends it to lookup_audit."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg2
import pytest
from api_helpers import CountingCursor, event_for, load_event

from cardstatus import audit, dbroles

CALLER = "arn:aws:sts::123456789012:assumed-role/caller/caller"  # the sample events' identity


def rows(db: Any) -> list[tuple[Any, ...]]:
    with db.cursor() as cur:
        cur.execute(
            "SELECT caller, route, by_phone, outcome, card_ids FROM lookup_audit ORDER BY at"
        )
        found = cur.fetchall()
    db.commit()
    return found


def with_caller(event: dict[str, Any], arn: str) -> dict[str, Any]:
    event["requestContext"]["identity"]["userArn"] = arn
    return event


def test_a_known_sequence_of_lookups_leaves_its_trail(api: Any, seeded: Any) -> None:
    assert api.call(load_event("get_card_status_by_card_id"))[0] == 200
    assert api.call(load_event("get_card_status_by_phone_several_cards"))[0] == 200
    assert api.call(load_event("get_card_by_id"))[0] == 200
    assert api.call(load_event("list_cards_by_phone"))[0] == 200
    assert api.call(load_event("search_cards_by_phone"))[0] == 200
    assert api.call(load_event("get_card_unknown"))[0] == 404
    assert api.call(load_event("list_cards_unknown_phone"))[0] == 200  # {"cards": []}
    assert api.call(load_event("get_card_status_unknown_phone"))[0] == 404
    assert api.call(load_event("list_files"))[0] == 200  # an ops route: not a card lookup
    assert api.call(load_event("get_card_status_invalid_card_id"))[0] == 400  # nothing looked up

    trail = rows(seeded)
    routes = [(route, by_phone, outcome) for _, route, by_phone, outcome, _ in trail]
    assert routes == [
        ("GET /get_card_status", False, "found"),
        ("GET /get_card_status", True, "found"),
        ("GET /cards/{card_id}", False, "found"),
        ("GET /cards", True, "found"),
        ("POST /cards/search", True, "found"),
        ("GET /cards/{card_id}", False, "not_found"),
        ("GET /cards", True, "found"),
        ("GET /get_card_status", True, "not_found"),
    ]
    assert {caller for caller, *_ in trail} == {CALLER}
    by_phone_answer = trail[1][4]
    assert len(by_phone_answer) >= 2  # the card answered and the phone's other cards
    assert trail[5][4] == [load_event("get_card_unknown")["pathParameters"]["card_id"].upper()]
    assert trail[6][4] == [] and trail[7][4] == []  # a phone without cards: no card, no phone


def test_the_trail_never_holds_a_phone(api: Any, seeded: Any) -> None:
    api.call(load_event("get_card_status_by_both"))
    api.call(load_event("list_cards_by_phone"))
    api.call(event_for("/cards/0585949014"))  # a phone typed as a card id: 404, masked
    with seeded.cursor() as cur:
        cur.execute("SELECT row_to_json(a)::text FROM lookup_audit a")
        text = " ".join(r[0] for r in cur.fetchall())
    assert "585949014" not in text and "534534534" not in text
    assert text.count("GET /cards/{card_id}") == 1


def test_who_looked_at_this_card(api: Any, seeded: Any) -> None:
    other = "arn:aws:sts::123456789012:assumed-role/support/alice"
    api.call(load_event("get_card_by_id"))
    api.call(with_caller(load_event("get_card_by_id"), other))
    card_id = load_event("get_card_by_id")["pathParameters"]["card_id"].upper()
    trail = audit.trail(seeded, card_id=card_id)
    assert [t["caller"] for t in trail] == [other, CALLER]  # newest first
    assert audit.trail(seeded, card_id=card_id, since=datetime.now(UTC) + timedelta(hours=1)) == []
    assert [t["card_ids"] for t in audit.trail(seeded, caller=other)] == [[card_id]]


def test_the_api_role_may_append_but_not_read_or_change_the_trail(db_url: str, db: Any) -> None:
    api = psycopg2.connect(db_url, user=dbroles.API)
    api.autocommit = True
    try:
        record = audit.LookupRecord(CALLER, "GET /cards/{card_id}", False, "found", ("ZYW1",))
        assert audit.append(api, [record]) == 1
        for statement in (
            "SELECT * FROM lookup_audit",
            "SELECT * FROM lookup_audit_default",
            "UPDATE lookup_audit SET caller = 'x'",
            "DELETE FROM lookup_audit",
        ):
            with api.cursor() as cur:
                cur.execute("BEGIN READ WRITE")  # the privileges refuse, not read-only mode
                with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    cur.execute(statement)
                cur.execute("ROLLBACK")
        # ... and the day partitions made later are closed to it too
        audit.maintain(db, keep_days=30, as_of=datetime.now(UTC) + timedelta(days=5))
        with pytest.raises(psycopg2.errors.InsufficientPrivilege), api.cursor() as cur:
            day = (datetime.now(UTC) + timedelta(days=5)).strftime("%Y%m%d")
            cur.execute(f"SELECT * FROM lookup_audit_{day}")
    finally:
        api.close()
    assert rows(db) == [(CALLER, "GET /cards/{card_id}", False, "found", ["ZYW1"])]


def partitions(db: Any) -> list[str]:
    with db.cursor() as cur:
        cur.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'lookup_audit'::regclass ORDER BY 1"
        )
        found = [r[0] for r in cur.fetchall()]
    db.commit()
    return found


def test_partitions_are_made_ahead_and_dropped_after_the_retention(db: Any) -> None:
    start = datetime(2030, 1, 10, 12, tzinfo=UTC)
    # A lookup on a day without its partition lands in DEFAULT and is moved when it comes.
    with db.cursor() as cur:
        cur.execute(
            "INSERT INTO lookup_audit (at, caller, route, by_phone, outcome, card_ids)"
            " VALUES (%s, 'c', 'GET /cards', true, 'found', '{}')",
            (start + timedelta(hours=1),),
        )
    db.commit()
    made_at_migration = [p for p in partitions(db) if p != "lookup_audit_default"]
    assert len(made_at_migration) == 3  # today and the next two days
    # (in 2030, with 3 days kept, those days are past their retention)
    assert audit.maintain(db, keep_days=3, as_of=start) == (3, len(made_at_migration))
    assert {"lookup_audit_20300110", "lookup_audit_20300111", "lookup_audit_20300112"} <= set(
        partitions(db)
    )
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM lookup_audit_20300110")
        assert cur.fetchone()[0] == 1
        cur.execute("SELECT count(*) FROM lookup_audit_default WHERE at >= '2030-01-01'")
        assert cur.fetchone()[0] == 0
    db.commit()
    assert audit.maintain(db, keep_days=3, as_of=start) == (0, 0)  # idempotent
    created, dropped = audit.maintain(db, keep_days=3, as_of=start + timedelta(days=5))
    # Jan 15: keeps the days from Jan 12 on; Jan 10 and 11 are dropped.
    assert dropped == 2 and created == 3
    names = partitions(db)
    assert "lookup_audit_20300110" not in names and "lookup_audit_20300112" in names
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM lookup_audit WHERE at < '2030-01-12'")
        assert cur.fetchone()[0] == 0


def test_cardstatus_audit_answers_who_looked(
    api: Any, seeded: Any, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from cardstatus_dev.cli import main

    api.call(load_event("get_card_by_id"))
    capsys.readouterr()  # the handler's own log lines
    card_id = load_event("get_card_by_id")["pathParameters"]["card_id"]
    assert main(["audit", "--card-id", card_id.lower(), "--database-url", db_url]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(t["caller"], t["route"], t["card_ids"]) for t in lines] == [
        (CALLER, "GET /cards/{card_id}", [card_id.upper()])
    ]
    assert main(["audit", "--card-id", "NOBODY1", "--database-url", db_url]) == 1
    assert (
        main(["audit", "--card-id", card_id, "--since", "2999-01-01", "--database-url", db_url])
        == 1
    )
    assert main(["audit", "--card-id", "no such id!", "--database-url", db_url]) == 2
    assert (
        main(["audit", "--card-id", card_id, "--since", "yesterday", "--database-url", db_url]) == 2
    )


def test_the_api_role_commits_its_audit_rows_without_waiting_for_the_flush(db_url: str) -> None:
    """Role-level synchronous_commit=off (0023), for the audit function's batches (it connects
    as the api role) and the lookup budget's counts."""
    api = psycopg2.connect(db_url, user=dbroles.API)
    try:
        with api.cursor() as cur:
            cur.execute("SHOW synchronous_commit")
            assert cur.fetchone()[0] == "off"
        api.rollback()
    finally:
        api.close()


# -- the audit is off the lookup's path ------------------------------------------------------------


def _refuse_audit_rows(db: Any) -> None:
    """A trigger (as the schema owner) that makes every audit INSERT fail."""
    with db.cursor() as cur:
        cur.execute(
            "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'audit refused'; END $$;"
            " CREATE TRIGGER refuse_audit BEFORE INSERT ON lookup_audit"
            " FOR EACH ROW EXECUTE FUNCTION refuse_audit()"
        )
    db.commit()


def test_a_failing_audit_function_does_not_fail_the_lookup(
    api: Any, seeded: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """The line is printed before the answer; appending it is the audit function's job (in AWS
    retried twice, then kept in its dead-letter queue: tests/test_audit_function.py)."""
    _refuse_audit_rows(seeded)
    status, _, body = api.call(load_event("get_card_by_id"))
    assert status == 200 and body["card_id"]
    out, err = capsys.readouterr()
    assert [audit.LookupRecord.from_line(x).card_ids for x in _audit_lines(out)] == [
        (body["card_id"],)
    ]
    assert "audit function failed (RaiseException): line not appended" in err
    assert rows(seeded) == []


def _audit_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith('{"audit":')]


def test_head_writes_its_audit_row_too(api: Any, seeded: Any) -> None:
    from api_helpers import FakeContext

    event = load_event("get_card_by_id")
    event["httpMethod"] = "HEAD"
    result = api.module.handler(event, FakeContext())
    assert (result["statusCode"], result["body"]) == (200, "")
    assert [(route, outcome) for _, route, _, outcome, _ in rows(seeded)] == [
        ("GET /cards/{card_id}", "found")
    ]


def test_a_card_id_and_phone_lookup_writes_one_row_and_a_refused_one_none(
    api: Any, seeded: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Match and mismatch: one row each; refused (429): no row, as the lookup is not
    answered."""
    from cardstatus.config import reset_settings_cache

    monkeypatch.setenv("LOOKUP_MISMATCH_BUDGET", "1")
    reset_settings_cache()
    try:
        match = {"card_id": "zyw8827", "user_phone": "585949014"}
        status, _, body = api.call(event_for("/get_card_status", match))
        assert status == 200
        answered = [body["card_id"], *(c["card_id"] for c in body["other_cards"])]
        mismatch = {"card_id": "zyw8827", "user_phone": "585949015"}
        assert api.call(event_for("/get_card_status", mismatch))[0] == 404
        assert api.call(event_for("/get_card_status", mismatch))[0] == 429
    finally:
        monkeypatch.delenv("LOOKUP_MISMATCH_BUDGET")
        reset_settings_cache()
    assert [
        (route, by_phone, outcome, ids) for _, route, by_phone, outcome, ids in rows(seeded)
    ] == [
        ("GET /get_card_status", True, "found", answered),
        ("GET /get_card_status", True, "not_found", ["ZYW8827"]),
    ]
    with seeded.cursor() as cur:
        cur.execute("SELECT mismatches FROM lookup_budget")
        assert cur.fetchall() == [(1,)]  # counted once: the 429 is not counted
    seeded.commit()


@pytest.mark.parametrize(
    ("event_name", "status"),
    [
        ("get_card_status_by_card_id", 200),
        ("get_card_status_by_phone_several_cards", 200),
        ("get_card_by_id", 200),
        ("list_cards_by_phone", 200),
        ("search_cards_by_phone", 200),
        ("get_card_unknown", 404),
        ("get_card_status_unknown_phone", 404),
        ("list_cards_unknown_phone", 200),
    ],
)
def test_a_lookup_prints_one_audit_line_and_sends_the_database_only_its_query(
    api_module: Any, openapi_doc: Any, seeded: Any, event_name: str, status: int
) -> None:
    """The api alone (no subscription): one statement on its connection, the lookup; one line
    on stdout, with the request's id."""
    from api_helpers import Api

    from cardstatus_dev.serve import load_api_module

    app = load_api_module(audit_subscription=False)
    lines: list[str] = []
    app.audit_lines.listeners.append(lines.append)
    api = Api(app, openapi_doc)
    assert api.call(load_event(event_name))[0] == status  # opens the connection
    connection = app.DB.get()
    connection.cursor_factory = CountingCursor
    CountingCursor.statements = []
    try:
        event = load_event(event_name)
        assert api.call(event)[0] == status
    finally:
        connection.cursor_factory = psycopg2.extensions.cursor
    assert len(CountingCursor.statements) == 1
    assert "lookup_audit" not in CountingCursor.statements[0]
    assert len(lines) == 2
    record = audit.LookupRecord.from_line(lines[1])
    assert record.request_id == event["requestContext"]["requestId"]
    assert record.caller == CALLER
    assert rows(seeded) == []  # nobody delivered the lines


def test_the_row_names_the_cards_answered(api: Any, seeded: Any) -> None:
    """The record is made from the answer itself: its cards, in its order, for each route."""
    answers = []
    for name in ("get_card_status_by_phone_several_cards", "list_cards_by_phone"):
        status, _, body = api.call(load_event(name))
        assert status == 200
        if "cards" in body:
            answers.append([c["card_id"] for c in body["cards"]])
        else:
            answers.append([body["card_id"], *(c["card_id"] for c in body["other_cards"])])
    assert [ids for *_, ids in rows(seeded)] == answers
    assert len(answers[0]) >= 2
