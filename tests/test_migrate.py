"""Migrations: ordered, recorded, idempotent, serialised; the API role is read-only."""

from __future__ import annotations

import threading
from typing import Any

import psycopg2
import pytest

from cardstatus.cards import find_card_status
from cardstatus.config import load_settings
from cardstatus.migrate import apply_migrations, available_migrations, migrations_fingerprint
from cardstatus.pipeline import ingest_path
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
        with api_conn.cursor() as cur, pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cur.execute("DELETE FROM card")
        api_conn.rollback()
        with api_conn.cursor() as cur, pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cur.execute("SELECT * FROM ingested_file")
    finally:
        api_conn.close()
