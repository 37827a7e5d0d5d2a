"""Migrations: ordered, recorded, idempotent, serialised; the API role is read-only."""

from __future__ import annotations

import threading
from typing import Any

import psycopg2
import pytest

from cardstatus.cards import find_card_status
from cardstatus.config import load_settings
from cardstatus.ingest import ingest_path
from cardstatus.migrate import apply_migrations, available_migrations, migrations_fingerprint
from cardstatus_dev.database import drop_database, ensure_database
from fixture_paths import EVENTS


def test_rerunning_migrations_is_a_no_op(db: Any) -> None:
    assert apply_migrations(db) == []
    with db.cursor() as cur:
        cur.execute("SELECT version FROM schema_migrations ORDER BY version")
        assert [r[0] for r in cur.fetchall()] == [m.version for m in available_migrations()]


def test_concurrent_migrators_apply_each_migration_once(pg_admin_url: str) -> None:
    name = "cs_test_migrate_race"
    drop_database(pg_admin_url, name)
    url = ensure_database(pg_admin_url, name)
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        conn = psycopg2.connect(url)
        try:
            results.append(apply_migrations(conn))
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    drop_database(pg_admin_url, name)
    assert errors == []
    assert sorted(len(r) for r in results) == [0, 0, len(available_migrations())]


def test_edited_migration_is_refused(db: Any) -> None:
    with db.cursor() as cur:
        cur.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version LIKE '0001%'")
    db.commit()
    with pytest.raises(RuntimeError, match="edited after it was applied"):
        apply_migrations(db)


def test_fingerprint_tracks_migration_files() -> None:
    assert len(migrations_fingerprint()) == 64
    assert migrations_fingerprint() == migrations_fingerprint()


def test_api_role_can_read_cards_but_not_write(db: Any, db_url: str) -> None:
    ingest_path(
        db, EVENTS / "partner_samples" / "Sample Card Status Info - Returned.csv", load_settings()
    )
    api_conn = psycopg2.connect(db_url, user="cardstatus_api")
    try:
        assert find_card_status(api_conn, "ZYW8890", None)["status"] == "RETURNED"
        api_conn.rollback()
        with (
            api_conn.cursor() as cur,
            pytest.raises(
                (psycopg2.errors.InsufficientPrivilege, psycopg2.errors.ReadOnlySqlTransaction)
            ),
        ):
            cur.execute("DELETE FROM card")
        api_conn.rollback()
        # Reads every table (0005: SELECT on all tables + default privileges for later ones).
        with api_conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM ingested_file")
    finally:
        api_conn.close()


def test_provenance_migration_backfills_a_database_with_data(
    pg_admin_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """0006 on a database that already holds files, events and cards (made by 0001..0005)."""
    import cardstatus.migrate as migrate

    name = "cs_test_migrate_0006"
    drop_database(pg_admin_url, name)
    url = ensure_database(pg_admin_url, name)
    before = [m for m in available_migrations() if m.version < "0006"]
    conn = psycopg2.connect(url)
    try:
        monkeypatch.setattr(migrate, "available_migrations", lambda: before)
        apply_migrations(conn)
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO ingested_file (id, object_key, sha256, partner, outcome, report,"
                " started_at) VALUES (7, 'incoming/a/x Pickup.csv', 'abc', 'a', 'applied',"
                " '{}', now())"
            )
            cur.execute(
                "INSERT INTO card_event (card_id, status, occurred_at, phone, comment, partner,"
                " source_file_id, source_line, partner_row_id) VALUES"
                " ('C1', 'PICKED_UP', '2024-01-01T10:00Z', '+971501234567', 'hi', 'a', 7, 2, 'r1')"
            )
            cur.execute(
                "INSERT INTO card (card_id, status, status_at) VALUES"
                " ('C1', 'PICKED_UP', '2024-01-01T10:00Z')"
            )
        conn.commit()
        monkeypatch.undo()
        assert apply_migrations(conn) == [
            m.version for m in available_migrations() if m.version >= "0006"
        ]
        with conn.cursor() as cur:
            cur.execute(
                "SELECT file_id, card_id, status::text, line, phone, comment, partner_row_id,"
                " partner FROM event_copy"
            )
            assert cur.fetchall() == [(7, "C1", "PICKED_UP", 2, "+971501234567", "hi", "r1", "a")]
            cur.execute("SELECT version FROM card")
            assert cur.fetchone() == (1,)
            cur.execute("SELECT meaning_key, voided_at FROM ingested_file")
            assert cur.fetchone() == (None, None)
            # the same bytes may now be applied twice (another meaning); the meaning is unique
            cur.execute(
                "INSERT INTO ingested_file (object_key, sha256, meaning_key, partner, outcome,"
                " report, started_at) VALUES ('k2', 'abc', 'm1', 'a', 'applied', '{}', now())"
            )
            with pytest.raises(psycopg2.errors.UniqueViolation):
                cur.execute(
                    "INSERT INTO ingested_file (object_key, sha256, meaning_key, partner,"
                    " outcome, report, started_at)"
                    " VALUES ('k3', 'abc', 'm1', 'a', 'applied', '{}', now())"
                )
        conn.rollback()
    finally:
        conn.close()
        drop_database(pg_admin_url, name)
