"""The ingestion pipeline against a real PostgreSQL: outcomes, idempotency, order, atomicity."""

from __future__ import annotations

import io
import itertools
import threading
import time
from typing import Any

import psycopg2
import pytest

from cardstatus.config import load_settings
from cardstatus.ingest import SourceInfo, ingest, ingest_path, ingest_retrying
from cardstatus.s3ingest import partner_from_key, s3_key_from_event
from fixture_paths import EVENTS, PARTNER_SAMPLES

PARTNER_FILES = EVENTS / "partner_files"


def cards(conn: Any) -> dict[str, tuple]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT card_id, status, status_at, comment, reason, phone, picked_up_at, delivered_at,"
            " returned_at, exception_count FROM card ORDER BY card_id"
        )
        rows = cur.fetchall()
    conn.commit()
    return {r[0]: r[1:] for r in rows}


def events(conn: Any) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT card_id, status::text, occurred_at, comment, reason, phone FROM card_event"
            " ORDER BY 1, 2, 3"
        )
        rows = cur.fetchall()
    conn.commit()
    return rows


def count(conn: Any, table: str) -> int:
    with conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {table}")
        n = cur.fetchone()[0]
    conn.commit()
    return n


def ingest_bytes(conn: Any, data: bytes, key: str, **source: Any) -> dict[str, Any]:
    info = SourceInfo(key=key, partner=source.pop("partner", "default"), **source)
    return ingest(conn, io.BytesIO(data), info, load_settings())


def test_partner_key_and_url_decoding() -> None:
    assert partner_from_key("incoming/acme/2024/file.csv") == "acme"
    assert partner_from_key("incoming/file.csv") == "default"
    assert partner_from_key("elsewhere/file.csv") == "default"
    assert s3_key_from_event("incoming/acme/Sample+Card+Status+Info+-+Pickup%281%29.csv") == (
        "incoming/acme/Sample Card Status Info - Pickup(1).csv"
    )


@pytest.mark.parametrize(
    ("name", "outcome", "counts"),
    [
        ("acme utf8-bom semicolon - Delivered.csv", "applied", (3, 3, 0, 0, 0)),
        ("acme unicode text - Pickup.csv", "applied", (3, 3, 0, 0, 0)),
        ("acme cp1252 - Delivery exceptions.csv", "applied", (3, 3, 0, 0, 0)),
        ("acme mixed status column.csv", "applied", (4, 4, 0, 0, 1)),
        ("acme bad rows - Returned.csv", "applied", (8, 2, 0, 6, 1)),
        ("acme no card column - Delivered.csv", "rejected_file", (1, 0, 0, 1, 0)),
        ("acme weekly export.csv", "rejected_file", (1, 0, 0, 1, 0)),
    ],
)
def test_each_synthetic_partner_file_gets_the_expected_report(
    db: Any, name: str, outcome: str, counts: tuple
) -> None:
    report = ingest_path(db, PARTNER_FILES / name, load_settings(), partner="acme")
    c = report["counts"]
    assert report["outcome"] == outcome
    assert (c["rows"], c["accepted"], c["duplicate"], c["rejected"], c["warnings"]) == counts
    with db.cursor() as cur:
        cur.execute(
            "SELECT outcome::text, report FROM ingested_file WHERE id = %s", (report["file_id"],)
        )
        stored_outcome, stored = cur.fetchone()
    assert stored_outcome == outcome
    assert stored["counts"] == report["counts"]
    if outcome == "rejected_file":
        assert report["reason"]
        assert count(db, "card_event") == 0


def test_every_rejected_row_has_its_line_and_reason_in_report_and_table(db: Any) -> None:
    report = ingest_path(db, PARTNER_FILES / "acme bad rows - Returned.csv", load_settings())
    lines = {r["line"]: r["reason"] for r in report["rejects"]}
    assert sorted(lines) == [3, 4, 5, 6, 8, 9]
    assert "card id" in lines[3]
    assert "before 2000" in lines[5]
    assert "future" in lines[6]
    with db.cursor() as cur:
        cur.execute(
            "SELECT line, reason FROM rejected_row WHERE file_id = %s ORDER BY line",
            (report["file_id"],),
        )
        assert dict(cur.fetchall()) == lines
    # The invalid phone is a warning: the row is applied by card id, phone unset.
    assert report["warnings"][0]["line"] == 7
    assert "12345" not in report["warnings"][0]["warning"]
    assert cards(db)["QRK1013"][4] is None


def test_status_column_overrides_file_name_and_exception_reason_is_classified(db: Any) -> None:
    ingest_path(db, PARTNER_FILES / "acme mixed status column.csv", load_settings())
    ingest_path(db, PARTNER_FILES / "acme cp1252 - Delivery exceptions.csv", load_settings())
    state = cards(db)
    assert state["QRK1007"][0] == "DELIVERED"
    assert state["QRK1007"][8] == 1  # one exception in its history
    assert state["QRK1004"][3] == "recipient_unavailable"
    assert state["QRK1005"][3] == "refused"
    assert state["QRK1006"][3] == "address_problem"
    assert state["QRK1004"][2] == "User not available – café closed"
    exception = next(e for e in events(db) if e[:2] == ("QRK1007", "DELIVERY_EXCEPTION"))
    assert exception[3] == "User not available will retry tomorrow"


def test_same_bytes_under_another_key_is_a_duplicate_file_and_changes_nothing(db: Any) -> None:
    data = (PARTNER_FILES / "acme unicode text - Pickup.csv").read_bytes()
    first = ingest_bytes(db, data, "incoming/acme/pickup.csv", bucket="b", etag="e1")
    before = (cards(db), events(db))
    second = ingest_bytes(db, data, "incoming/acme/pickup-again.csv", bucket="b", etag="e1")
    assert first["outcome"] == "applied"
    assert second["outcome"] == "duplicate_file"
    assert second["duplicate_of"]["file_id"] == first["file_id"]
    assert second["counts"]["duplicate"] == 3
    assert (cards(db), events(db)) == before


def test_redelivered_object_returns_the_original_report_and_records_nothing(db: Any) -> None:
    data = (PARTNER_FILES / "acme utf8-bom semicolon - Delivered.csv").read_bytes()
    first = ingest_bytes(db, data, "incoming/acme/d.csv", bucket="b", version_id="v1", etag="e")
    files_after_first = count(db, "ingested_file")
    again = ingest_bytes(db, data, "incoming/acme/d.csv", bucket="b", version_id="v1", etag="e")
    assert again == {**first, "redelivery": True}
    assert count(db, "ingested_file") == files_after_first


def test_same_event_in_two_files_is_stored_once(db: Any) -> None:
    a = b"Card ID,Timestamp,Comment\nX1,2024-01-01T10:00:00Z,first\n"
    b = (
        b"Card ID,Timestamp,Comment\n"
        b"X1,2024-01-01T10:00:00Z,second copy\nX2,2024-01-01T10:00:00Z,\n"
    )
    ingest_bytes(db, a, "one - delivered.csv")
    report = ingest_bytes(db, b, "two - delivered.csv")
    assert report["counts"]["accepted"] == 1 and report["counts"]["duplicate"] == 1
    assert [e[:2] for e in events(db)] == [("X1", "DELIVERED"), ("X2", "DELIVERED")]


def test_equal_times_resolve_by_status_rank(db: Any) -> None:
    t = "2024-01-01T10:00:00Z"
    ingest_bytes(db, f"Card ID,Timestamp\nX1,{t}\n".encode(), "a - returned.csv")
    ingest_bytes(db, f"Card ID,Timestamp\nX1,{t}\n".encode(), "b - delivered.csv")
    ingest_bytes(db, f"Card ID,Timestamp\nX1,{t}\n".encode(), "c - pickup.csv")
    assert cards(db)["X1"][0] == "RETURNED"


def test_phone_comes_from_the_latest_event_that_had_a_valid_one(db: Any) -> None:
    ingest_bytes(
        db, b"Card ID,Phone,Timestamp\nX1,0501234567,2024-01-01T10:00:00Z\n", "a pickup.csv"
    )
    ingest_bytes(
        db, b"Card ID,Phone,Timestamp\nX1,9.7E+11,2024-01-03T10:00:00Z\n", "c returned.csv"
    )
    ingest_bytes(
        db, b"Card ID,Phone,Timestamp\nX1,0559876543,2024-01-02T10:00:00Z\n", "b delivered.csv"
    )
    state = cards(db)["X1"]
    assert state[0] == "RETURNED"
    assert state[4] == "+971559876543"


SAMPLE_NAMES = [
    "Sample Card Status Info - Pickup.csv",
    "Sample Card Status Info - Delivery exceptions.csv",
    "Sample Card Status Info - Delivered.csv",
    "Sample Card Status Info - Returned.csv",
]


def _reset(conn: Any) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "TRUNCATE card, card_event, event_copy, status_outbox, rejected_row, ingested_file"
        )
    conn.commit()


def test_shared_samples_in_all_24_orders_give_the_same_final_state(db: Any) -> None:
    outcomes = []
    for order in itertools.permutations(SAMPLE_NAMES):
        _reset(db)
        for name in order:
            report = ingest_path(db, PARTNER_SAMPLES / name, load_settings())
            assert report["outcome"] == "applied", report
        outcomes.append((cards(db), events(db)))
    assert len(outcomes) == 24
    assert all(o == outcomes[0] for o in outcomes)
    state = outcomes[0][0]
    assert state["ZYW8827"][0] == "DELIVERED"
    assert state["ZYW8890"][0] == "RETURNED"
    assert state["ZYW7631"][0] == "DELIVERED"
    assert state["ZYW8827"][4] == "+971585949014"
    assert state["ZYW8890"][4] == "+971534534534"
    assert state["ZYW7631"][4] == "+971545576586"
    assert state["ZYW7631"][8] == 1
    assert state["ZYW7631"][2] == "DELIVERED"  # the comment column of the delivered file


def _big_file(rows: int) -> bytes:
    lines = ["Card ID,User contact,Timestamp"]
    lines += [f"K{i:07d},05{i % 10}1234567,2024-01-01T10:{i % 60:02d}:00Z" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def test_connection_killed_mid_copy_leaves_nothing_and_the_retry_applies_once(
    db_url: str, db: Any
) -> None:
    data = _big_file(120_000)
    victim = psycopg2.connect(db_url)
    with victim.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
    victim.commit()
    killed = threading.Event()

    def kill_once(rows_so_far: int) -> None:
        if not killed.is_set():
            killed.set()
            with db.cursor() as cur:
                cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
            db.commit()

    info = SourceInfo(key="big - delivered.csv", partner="default")
    with pytest.raises(psycopg2.Error):
        ingest(victim, io.BytesIO(data), info, load_settings(), progress=kill_once)
    assert killed.is_set()
    assert count(db, "card_event") == 0
    assert count(db, "card") == 0
    assert count(db, "ingested_file") == 0

    retry = psycopg2.connect(db_url)
    report = ingest(retry, io.BytesIO(data), info, load_settings())
    again = ingest(retry, io.BytesIO(data), info, load_settings())
    retry.close()
    assert report["outcome"] == "applied"
    assert report["counts"]["accepted"] == 120_000
    assert again["outcome"] == "duplicate_file"
    assert count(db, "card_event") == 120_000


def test_connection_killed_during_apply_leaves_nothing(db_url: str, db: Any) -> None:
    data = _big_file(50_000)
    victim = psycopg2.connect(db_url)
    with victim.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
    victim.commit()
    # Hold a lock the apply step needs, then kill the victim while it waits inside APPLY.
    blocker = psycopg2.connect(db_url)
    with blocker.cursor() as cur:
        cur.execute("LOCK TABLE card IN EXCLUSIVE MODE")

    def killer() -> None:
        import time

        # Until the victim waits (parsing 50k rows first can take long on a loaded machine);
        # giving up early would leave it waiting on the blocker for good.
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            with db.cursor() as cur:
                cur.execute("SELECT count(*) FROM pg_locks WHERE pid = %s AND NOT granted", (pid,))
                waiting = cur.fetchone()[0]
            db.commit()
            if waiting:
                with db.cursor() as cur:
                    cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
                db.commit()
                return
            time.sleep(0.05)

    t = threading.Thread(target=killer)
    t.start()
    info = SourceInfo(key="apply - pickup.csv", partner="default")
    with pytest.raises(psycopg2.Error):
        ingest(victim, io.BytesIO(data), info, load_settings())
    t.join()
    blocker.rollback()
    blocker.close()
    assert count(db, "card_event") == 0
    assert count(db, "ingested_file") == 0


def test_a_deadlock_with_a_concurrent_file_is_retried_and_applies_once(
    db_url: str, db: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A real deadlock: another transaction holds X1 and then wants X0, which this file holds."""
    data = b"Card ID,Timestamp\nX0,2024-01-01T10:00:00Z\nX1,2024-01-01T10:00:00Z\n"
    victim = psycopg2.connect(db_url)
    with victim.cursor() as cur:
        cur.execute("SET deadlock_timeout = '50ms'")  # this side detects the cycle first
        cur.execute("SELECT pg_backend_pid()")
        victim_pid = cur.fetchone()[0]
    victim.commit()

    other = psycopg2.connect(db_url)
    with other.cursor() as cur:
        cur.execute("SET deadlock_timeout = '10s'")
        cur.execute(
            "INSERT INTO ingested_file (object_key, partner, outcome, report, started_at)"
            " VALUES ('other.csv', 'default', 'applied', '{}', now()) RETURNING id"
        )
        other_file = cur.fetchone()[0]
        cur.execute(
            "INSERT INTO card_event (card_id, status, occurred_at, partner, source_file_id,"
            " source_line) VALUES ('X1', 'DELIVERED', '2024-01-01T10:00:00Z', 'default', %s, 2)",
            (other_file,),
        )

    def other_side() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # wait until the victim waits for X1
            with db.cursor() as cur:
                cur.execute(
                    "SELECT count(*) FROM pg_locks WHERE pid = %s AND NOT granted", (victim_pid,)
                )
                waiting = cur.fetchone()[0]
            db.commit()
            if waiting:
                break
            time.sleep(0.02)
        with other.cursor() as cur:  # now wants X0, held by the victim: a cycle
            cur.execute(
                "INSERT INTO card_event (card_id, status, occurred_at, partner, source_file_id,"
                " source_line) VALUES ('X0', 'DELIVERED', '2024-01-01T10:00:00Z', 'default', %s, 1)",
                (other_file,),
            )
        other.commit()

    thread = threading.Thread(target=other_side)
    thread.start()
    source = SourceInfo(key="race - delivered.csv", partner="default")
    report = ingest_retrying(victim, lambda: io.BytesIO(data), source, load_settings())
    thread.join()
    victim.close()
    other.close()
    assert "transaction conflict with a concurrent file" in caplog.text  # it did deadlock
    assert report["outcome"] == "applied"
    assert report["counts"]["duplicate"] == 2  # the other transaction won both events
    assert [e[:2] for e in events(db)] == [("X0", "DELIVERED"), ("X1", "DELIVERED")]


def test_concurrent_deliveries_of_one_duplicate_object_record_one_report(
    db_url: str, db: Any
) -> None:
    data = (PARTNER_FILES / "acme unicode text - Pickup.csv").read_bytes()
    ingest_bytes(db, data, "incoming/acme/original - pickup.csv", bucket="b", etag="e1")
    reports: list[dict[str, Any]] = []
    start = threading.Barrier(6)

    def deliver() -> None:
        conn = psycopg2.connect(db_url)
        try:
            start.wait()
            reports.append(
                ingest_bytes(conn, data, "incoming/acme/copy - pickup.csv", bucket="b", etag="e1")
            )
        finally:
            conn.close()

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with db.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM ingested_file WHERE object_key = 'incoming/acme/copy - pickup.csv'"
        )
        assert cur.fetchone()[0] == 1
    db.commit()
    assert len(reports) == 6
    assert [r["outcome"] for r in reports] == ["duplicate_file"] * 6
    assert len({r["file_id"] for r in reports}) == 1
