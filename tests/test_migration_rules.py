"""Every migration file keeps the never-lock rules (tools/cardstatus_dev/migration_rules.py,
docs/DEPLOY.md "Migrations that never lock"); the checker finds each kind of lock it names."""

from __future__ import annotations

from pathlib import Path

import pytest

from cardstatus_dev.migration_rules import (
    FIRST_CHECKED,
    GRANDFATHERED,
    NO_TRANSACTION_MARKER,
    check_folder,
    check_migrations,
    migration_files,
    split_statements,
)
from fixture_paths import ROOT

MIGRATIONS = ROOT / "layers" / "cardstatus" / "python" / "cardstatus" / "sql" / "migrations"
BASE = (
    "0001_base.sql",
    "CREATE TABLE card (card_id text PRIMARY KEY, status text, phone text);\n"
    "CREATE TABLE ingested_file (id bigserial PRIMARY KEY, partner text);\n"
    "CREATE INDEX card_status ON card (status);\n",
)


def findings(*files: tuple[str, str]) -> list[tuple[str, int, str]]:
    return [(f.file, f.line, f.rule) for f in check_migrations([BASE, *files])]


def test_every_migration_file_keeps_the_rules() -> None:
    """The check a new migration must pass (run by `make test` on every change)."""
    found = check_folder(MIGRATIONS)
    assert not found, "migrations that would lock a busy table:\n" + "\n".join(map(str, found))


def test_grandfathered_files_are_exactly_those_before_the_rules() -> None:
    """0001-0009 (applied before the rules), each with its reason; nothing later is exempt."""
    versions = [name.removesuffix(".sql") for name, _ in migration_files(MIGRATIONS)]
    before = [v for v in versions if v < FIRST_CHECKED]
    assert sorted(GRANDFATHERED) == before
    assert all(len(reason) > 30 for reason in GRANDFATHERED.values())
    # 0007's plain CREATE INDEX on existing tables is what the rules are about: found, exempt.
    every = check_migrations(migration_files(MIGRATIONS))
    assert {(f.file, f.rule) for f in every if f.file.startswith("0007")} == {
        ("0007_ops.sql", "index-concurrently")
    }


def test_plain_index_on_an_existing_table_is_refused_with_the_fix() -> None:
    bad = ("0010_x.sql", "-- why\nCREATE INDEX card_phone ON card (phone);\n")
    result = check_migrations([BASE, bad])
    assert [(f.file, f.line, f.rule) for f in result] == [("0010_x.sql", 2, "index-concurrently")]
    message = str(result[0])
    assert "CREATE INDEX CONCURRENTLY IF NOT EXISTS card_phone ON card" in message
    assert NO_TRANSACTION_MARKER in message and "0010_x.sql:2" in message


def test_concurrent_index_in_a_no_transaction_file_passes() -> None:
    good = (
        "0010_x.sql",
        f"{NO_TRANSACTION_MARKER}\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS card_phone ON card (phone);\n"
        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS file_p ON ingested_file (partner, id);\n"
        "DROP INDEX CONCURRENTLY IF EXISTS card_status;\n",
    )
    assert findings(good) == []


def test_new_tables_may_have_plain_indexes_and_anything_else() -> None:
    new = (
        "0010_x.sql",
        "CREATE TABLE budget (caller text PRIMARY KEY, used int);\n"
        "CREATE INDEX budget_used ON budget (used);\n"
        "ALTER TABLE budget ALTER COLUMN used TYPE bigint;\n"
        "ALTER TABLE budget RENAME COLUMN used TO spent;\n",
    )
    assert findings(new) == []


def test_no_transaction_file_rules() -> None:
    concurrently_in_tx = (
        "0010_x.sql",
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON card (phone);",
    )
    assert ("0010_x.sql", 1, "no-transaction") in findings(concurrently_in_tx)
    do_block = (
        "0010_x.sql",
        f"{NO_TRANSACTION_MARKER}\nDO $$ BEGIN PERFORM 1; END $$;\n"
        "CREATE INDEX CONCURRENTLY card_phone ON card (phone);\n",
    )
    # the DO block, and an index a re-run could not skip (no IF NOT EXISTS): both named
    assert sorted(set(findings(do_block))) == [
        ("0010_x.sql", 2, "no-transaction"),
        ("0010_x.sql", 3, "no-transaction"),
    ]


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE card ALTER COLUMN status TYPE varchar(20);",
        "ALTER TABLE card ADD COLUMN seen_at timestamptz DEFAULT clock_timestamp();",
        "ALTER TABLE card ADD COLUMN token uuid NOT NULL DEFAULT gen_random_uuid();",
        "ALTER TABLE card ADD COLUMN n bigserial;",
        "ALTER TABLE card ADD COLUMN owner text NOT NULL;",
        "ALTER TABLE card ALTER COLUMN phone SET NOT NULL;",
        "ALTER TABLE card ADD CONSTRAINT card_phone_e164 CHECK (phone LIKE '+%');",
        "ALTER TABLE card ADD CONSTRAINT card_phone_key UNIQUE (phone);",
        "ALTER TABLE card ADD COLUMN d text GENERATED ALWAYS AS (upper(phone)) STORED;",
        "VACUUM FULL card;",
        "LOCK TABLE card IN ACCESS EXCLUSIVE MODE;",
    ],
)
def test_table_rewrites_and_long_locks_are_refused(statement: str) -> None:
    assert findings(("0010_x.sql", statement)) == [("0010_x.sql", 1, "table-rewrite")]


def test_cheap_alterations_pass() -> None:
    cheap = (
        "0010_x.sql",
        "ALTER TABLE card ADD COLUMN owner_partner text;\n"
        "ALTER TABLE card ADD COLUMN version bigint NOT NULL DEFAULT 1;\n"
        "ALTER TABLE card ADD COLUMN seen_at timestamptz DEFAULT now();\n"
        "ALTER TABLE card ADD CONSTRAINT card_owner_set CHECK (owner_partner IS NOT NULL) NOT VALID;\n"
        "ALTER TABLE card ALTER COLUMN seen_at SET DEFAULT now(), ALTER COLUMN seen_at DROP NOT NULL;\n"
        "ALTER TABLE card DROP CONSTRAINT IF EXISTS card_old_check;\n",
    )
    assert findings(cheap) == []


def test_set_not_null_after_a_validated_check_passes() -> None:
    expand = (
        "0010_x.sql",
        "ALTER TABLE card ADD CONSTRAINT card_phone_nn CHECK (phone IS NOT NULL) NOT VALID;",
    )
    validate = (
        "0011_x.sql",
        f"{NO_TRANSACTION_MARKER}\nALTER TABLE card VALIDATE CONSTRAINT card_phone_nn;\n",
    )
    tighten = ("0012_x.sql", "ALTER TABLE card ALTER COLUMN phone SET NOT NULL;")
    assert findings(expand, validate, tighten) == []
    assert findings(expand, tighten) == [("0012_x.sql", 1, "table-rewrite")]


def test_renames_and_drops_follow_expand_contract() -> None:
    rename = ("0010_x.sql", "ALTER TABLE card RENAME COLUMN phone TO phone_e164;")
    assert findings(rename) == [("0010_x.sql", 1, "expand-contract")]
    rename_table = ("0010_x.sql", "ALTER TABLE ingested_file RENAME TO upload;")
    assert findings(rename_table) == [("0010_x.sql", 1, "expand-contract")]
    drop = ("0010_x.sql", "ALTER TABLE card DROP COLUMN phone;")
    assert findings(drop) == [("0010_x.sql", 1, "expand-contract")]
    contract = (
        "0010_x.sql",
        "-- contract: release 2027-01 reads phone_hash only; nothing reads phone since\n"
        "ALTER TABLE card DROP COLUMN phone;\n",
    )
    assert findings(contract) == []
    assert findings(("0010_x.sql", "DROP TABLE ingested_file;")) == [
        ("0010_x.sql", 1, "expand-contract")
    ]


def test_an_allow_comment_with_a_reason_waives_one_rule_on_one_statement() -> None:
    widened = (
        "0010_x.sql",
        "-- allow table-rewrite: text to varchar without a limit is binary coercible\n"
        "ALTER TABLE card ALTER COLUMN status TYPE varchar;\n"
        "ALTER TABLE card ALTER COLUMN phone TYPE varchar;\n",
    )
    assert findings(widened) == [("0010_x.sql", 3, "table-rewrite")]
    too_short = ("0010_x.sql", "-- allow table-rewrite: fine\nVACUUM FULL card;\n")
    assert findings(too_short) == [("0010_x.sql", 2, "table-rewrite")]


def test_statements_keep_their_lines_through_comments_quotes_and_dollar_blocks() -> None:
    sql = (
        "-- header\n\n"
        "CREATE TABLE t (a text DEFAULT 'x;y'); -- trailing; comment\n"
        "DO $$\nBEGIN\n  EXECUTE 'GRANT SELECT ON t TO r';\nEND\n$$;\n"
        "/* block; comment */ ALTER TABLE t\n  ADD COLUMN b int;\n"
    )
    statements = split_statements(sql)
    assert [(s.line, s.sql.split()[0]) for s in statements] == [
        (3, "CREATE"),
        (4, "DO"),
        (9, "ALTER"),
    ]


def test_the_checker_reads_the_real_folder(tmp_path: Path) -> None:
    """A file dropped into the folder is checked (the same path the deploy ships)."""
    for name, sql in migration_files(MIGRATIONS):
        (tmp_path / name).write_text(sql)
    (tmp_path / "0099_late.sql").write_text("CREATE INDEX card_late ON card (status_at);\n")
    assert [(f.file, f.rule) for f in check_folder(tmp_path)] == [
        ("0099_late.sql", "index-concurrently")
    ]
