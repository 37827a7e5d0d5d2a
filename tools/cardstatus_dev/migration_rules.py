"""Migrations that never lock a busy table: the rules, checked on every migration file.

The deploy runs the migrations while the previous release's functions keep ingesting and
answering (docs/DEPLOY.md "Migrations that never lock"). A migration must therefore neither
hold a lock that stops them for longer than an instant, nor change the schema under the code
that still runs. What is checked, for tables, indexes and constraints that an EARLIER migration
created (anything created in the same file is new and empty, so anything goes on it):

* ``index-concurrently``: an index on an existing table is built with
  ``CREATE [UNIQUE] INDEX CONCURRENTLY IF NOT EXISTS`` (dropped with ``DROP INDEX CONCURRENTLY
  IF EXISTS``) in a file whose first line is ``-- migrate: no-transaction``. A plain
  ``CREATE INDEX`` blocks every write to the table for the whole build.
* ``no-transaction``: such a file runs statement by statement in autocommit, and all of it
  again after a failure, so it holds only idempotent, lock-light statements: concurrent index
  builds and drops, ``REINDEX … CONCURRENTLY``, ``ALTER TABLE … VALIDATE CONSTRAINT``,
  ``ANALYZE``; no ``DO $$`` block, no ``BEGIN``/``COMMIT``.
* ``table-rewrite``: nothing rewrites or scans an existing table under an exclusive lock:
  no ``ALTER COLUMN … TYPE``, no ``ADD COLUMN`` with a volatile default (``random()``,
  ``clock_timestamp()``, ``gen_random_uuid()``, ``nextval``, a ``serial`` type) or a ``STORED``
  generated column, no ``SET NOT NULL`` unless a ``CHECK (col IS NOT NULL)`` constraint on it
  was validated before, no ``CHECK``/``FOREIGN KEY`` constraint added without ``NOT VALID``
  (validate it in a later migration), no ``UNIQUE``/``PRIMARY KEY`` constraint built in place
  (build the index concurrently, then ``ADD CONSTRAINT … USING INDEX``), no ``ADD COLUMN …
  NOT NULL`` without a default, no ``VACUUM FULL``, ``CLUSTER``, ``LOCK TABLE``,
  ``TRUNCATE``, plain ``REINDEX``, ``SET TABLESPACE``, ``SET [UN]LOGGED``.
* ``expand-contract``: the previous release's code must keep working against the new schema
  (the deploy migrates first, then replaces the functions): no ``RENAME`` of an existing
  table, column or enum value (add the new one, write both, backfill, switch reads, and drop
  the old one in a later release); ``DROP COLUMN``/``DROP TABLE`` of an existing one only as
  that later *contract* step, marked on the line above by ``-- contract: <why the previous
  release no longer uses it>``.

A statement that breaks a rule on purpose (e.g. a varchar widening that PostgreSQL does
without a rewrite) is allowed by a comment on the line above it:
``-- allow <rule>: <reason of at least 20 characters>``.

Not checked: what runs inside ``DO $$`` blocks (grants only, by convention), and the row locks
of a backfill ``UPDATE`` (keep backfills small or batched).

Migrations 0001-0009 were written and applied before these rules (GRANDFATHERED says why
each is exempt); every later file must pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

NO_TRANSACTION_MARKER = "-- migrate: no-transaction"  # cardstatus.migrate.NO_TRANSACTION_MARKER
RULES = ("index-concurrently", "no-transaction", "table-rewrite", "expand-contract")
DOC = 'docs/DEPLOY.md "Migrations that never lock"'

# Applied everywhere before the rules existed; applied migrations are never edited, and a
# later migration cannot undo the lock an earlier one took, so each stays as it is.
GRANDFATHERED: dict[str, str] = {
    "0001_initial": "creates the schema: every table is new, nothing existing is locked",
    "0004_api_role": "roles and grants only (no table is touched)",
    "0005_roles": "roles, grants and role settings only (no table is touched)",
    "0006_provenance": (
        "ran when the service had no production data: rebuilt two ingested_file indexes and "
        "added card.version in one transaction; applied in every environment since"
    ),
    "0007_ops": (
        "built its three indexes with plain CREATE INDEX in one transaction (a write lock "
        "on ingested_file and card for the build, once); applied in every environment, and "
        "an applied migration is never edited: a new migration cannot change a lock already "
        "taken, and the indexes exist and are valid, so nothing is rebuilt"
    ),
    "0008_void": "creates a new table (card_tombstone) and grants; nothing existing is locked",
    "0009_void_publish": "grants only (no table is touched)",
}
FIRST_CHECKED = "0010"

_VOLATILE = re.compile(
    r"\b(random|clock_timestamp|timeofday|gen_random_uuid|uuid_generate_v[14]|nextval|"
    r"txid_current)\s*\(",
    re.IGNORECASE,
)
_NAME = r'(?:"[^"]+"|[A-Za-z_][\w$]*)(?:\.(?:"[^"]+"|[A-Za-z_][\w$]*))?'
_CREATE_TABLE = re.compile(
    rf"CREATE\s+(?:UNLOGGED\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?({_NAME})", re.I
)
_CREATE_INDEX = re.compile(
    rf"CREATE\s+(UNIQUE\s+)?INDEX\s+(CONCURRENTLY\s+)?(IF\s+NOT\s+EXISTS\s+)?({_NAME})?\s*"
    rf"ON\s+(?:ONLY\s+)?({_NAME})",
    re.I,
)
_DROP_INDEX = re.compile(rf"DROP\s+INDEX\s+(CONCURRENTLY\s+)?(?:IF\s+EXISTS\s+)?({_NAME})", re.I)
_ALTER_TABLE = re.compile(
    rf"ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?({_NAME})\s+(.*)$", re.I
)
_DROP_TABLE = re.compile(rf"DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?({_NAME})", re.I)
_ADD_COLUMN = re.compile(
    r"ADD\s+(COLUMN\s+)?(?!CONSTRAINT\b|CHECK\b|FOREIGN\b|UNIQUE\b|PRIMARY\b|EXCLUDE\b)"
)
_ALLOW = re.compile(r"^--\s*allow\s+([a-z-]+)\s*:\s*(.{20,})$", re.IGNORECASE)
_CONTRACT = re.compile(r"^--\s*contract\s*:\s*(.{20,})$", re.IGNORECASE)


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: [{self.rule}] {self.message} ({DOC})"


@dataclass
class Statement:
    sql: str  # comments removed, whitespace collapsed
    line: int  # 1-based line where it starts
    notes: list[str] = field(default_factory=list)  # the comment lines right above it


@dataclass
class Schema:
    """What the migrations before the one being checked created."""

    tables: set[str] = field(default_factory=set)
    indexes: dict[str, str] = field(default_factory=dict)  # index -> table
    not_null_checks: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (t, col)
    validated: set[tuple[str, str]] = field(default_factory=set)  # (table, column) proven


def _bare(name: str) -> str:
    name = name.split(".")[-1]
    return name.strip('"').lower()


def split_statements(sql: str) -> list[Statement]:
    """Statements with the line each starts on and the comment lines directly above it.

    Understands -- and /* */ comments, '…' and "…" quoting, and $tag$ dollar quoting (a DO
    block is one statement)."""
    statements: list[Statement] = []
    buf: list[str] = []
    notes: list[str] = []
    start_line = 0
    line = 1
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end == -1 else end
            if not "".join(buf).strip():
                notes.append(sql[i:end].strip())
            i = end
            continue
        if ch == "/" and sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            end = n if end == -1 else end + 2
            line += sql.count("\n", i, end)
            buf.append(" ")
            i = end
            continue
        end = _quoted_end(sql, i)
        if end:
            if not "".join(buf).strip():
                start_line = line
            buf.append(sql[i:end])
            line += sql.count("\n", i, end)
            i = end
            continue
        if ch == ";":
            text = " ".join("".join(buf).split())
            if text:
                statements.append(Statement(text, start_line, notes))
            buf, notes = [], []
            i += 1
            continue
        if ch == "\n":
            line += 1
            if not "".join(buf).strip() and notes and sql[i + 1 : i + 2] == "\n":
                notes = []  # a blank line ends the comment block above a statement
        elif not ch.isspace() and not "".join(buf).strip():
            start_line = line
        buf.append(ch)
        i += 1
    text = " ".join("".join(buf).split())
    if text:
        statements.append(Statement(text, start_line, notes))
    return statements


def _quoted_end(sql: str, i: int) -> int:
    """Where the quoted text ('…', "…" or $tag$…$tag$) starting at i ends; 0 if none starts."""
    ch = sql[i]
    if ch in ("'", '"'):
        end = sql.find(ch, i + 1)
        while end != -1 and sql.startswith(ch * 2, end):
            end = sql.find(ch, end + 2)
        return len(sql) if end == -1 else end + 1
    dollar = re.match(r"\$([A-Za-z_]\w*)?\$", sql[i:]) if ch == "$" else None
    if not dollar:
        return 0
    tag = dollar.group(0)
    end = sql.find(tag, i + len(tag))
    return len(sql) if end == -1 else end + len(tag)


class _FileCheck:
    def __init__(self, name: str, sql: str, schema: Schema) -> None:
        self.name = name
        self.no_transaction = sql.startswith(NO_TRANSACTION_MARKER)
        self.schema = schema
        self.new_tables: set[str] = set()
        self.findings: list[Finding] = []
        self.statements = split_statements(sql)

    def existing(self, table: str) -> bool:
        table = _bare(table)
        return table in self.schema.tables and table not in self.new_tables

    def report(self, st: Statement, rule: str, message: str) -> None:
        for note in st.notes:
            allowed = _ALLOW.match(note)
            if allowed and allowed.group(1).lower() == rule:
                return
        self.findings.append(Finding(self.name, st.line, rule, message))

    def run(self) -> list[Finding]:
        for st in self.statements:
            self.statement(st)
        return self.findings

    # -- one statement ----------------------------------------------------------------------
    def statement(self, st: Statement) -> None:
        sql = st.sql
        upper = sql.upper()
        if self.no_transaction:
            self.no_transaction_statement(st, upper)
        if m := _CREATE_TABLE.match(sql):
            table = _bare(m.group(1))
            if table not in self.schema.tables:
                self.new_tables.add(table)
            self.schema.tables.add(table)
            return
        if m := _CREATE_INDEX.match(sql):
            self.create_index(st, m)
            return
        if m := _DROP_INDEX.match(sql):
            self.drop_index(st, m)
            return
        if m := _ALTER_TABLE.match(sql):
            self.alter_table(st, _bare(m.group(1)), m.group(2))
            return
        if m := _DROP_TABLE.match(sql):
            table = _bare(m.group(1))
            if self.existing(table):
                self.contract(st, f"DROP TABLE {table}")
            self.schema.tables.discard(table)
            return
        if re.match(r"ALTER\s+TYPE\s+\S+\s+RENAME\b", sql, re.I):
            self.report(
                st,
                "expand-contract",
                "ALTER TYPE … RENAME breaks the previous release's code, which still uses the "
                "old name while the new schema is live: add the new value, switch the code, "
                "retire the old value in a later release",
            )
            return
        self.whole_table(st, upper)

    def no_transaction_statement(self, st: Statement, upper: str) -> None:
        allowed = (
            r"CREATE\s+(UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+IF\s+NOT\s+EXISTS\b",
            r"DROP\s+INDEX\s+CONCURRENTLY\s+IF\s+EXISTS\b",
            r"REINDEX\s+(\(.*\)\s+)?(INDEX|TABLE)\s+CONCURRENTLY\b",
            r"ALTER\s+TABLE\s+.*\bVALIDATE\s+CONSTRAINT\b",
            r"ANALYZE\b",
        )
        if not any(re.match(p, upper) for p in allowed):
            self.report(
                st,
                "no-transaction",
                f"'{st.sql[:60]}…' cannot be in a '{NO_TRANSACTION_MARKER}' file: its statements "
                "run one by one in autocommit, and all again after a failure, so only "
                "CREATE [UNIQUE] INDEX CONCURRENTLY IF NOT EXISTS, DROP INDEX CONCURRENTLY IF "
                "EXISTS, REINDEX … CONCURRENTLY, ALTER TABLE … VALIDATE CONSTRAINT and ANALYZE "
                "belong there (no DO $$ block); put the rest in a normal migration",
            )

    def drop_index(self, st: Statement, m: re.Match[str]) -> None:
        index = _bare(m.group(2))
        table = self.schema.indexes.pop(index, None)
        if table and self.existing(table) and not (m.group(1) and self.no_transaction):
            self.report(
                st,
                "index-concurrently",
                f"DROP INDEX {index} locks table {table} against reads and writes: use "
                f"DROP INDEX CONCURRENTLY IF EXISTS {index} in a file whose first line is "
                f"'{NO_TRANSACTION_MARKER}'",
            )

    def create_index(self, st: Statement, m: re.Match[str]) -> None:
        concurrently, if_not_exists, name, table = m.group(2), m.group(3), m.group(4), m.group(5)
        table = _bare(table)
        if name:
            self.schema.indexes[_bare(name)] = table
        if concurrently and not self.no_transaction:
            self.report(
                st,
                "no-transaction",
                "CREATE INDEX CONCURRENTLY cannot run inside the migration's transaction: put it "
                f"in a file whose first line is '{NO_TRANSACTION_MARKER}'",
            )
        if not self.existing(table):
            return
        label = _bare(name) if name else "(unnamed)"
        if not concurrently or not self.no_transaction:
            self.report(
                st,
                "index-concurrently",
                f"index {label} on existing table {table} is built without CONCURRENTLY: every "
                "write to the table waits for the whole build. Write "
                f"CREATE {'UNIQUE ' if m.group(1) else ''}INDEX CONCURRENTLY IF NOT EXISTS "
                f"{label} ON {table} (…) in a new file whose first line is "
                f"'{NO_TRANSACTION_MARKER}' (new tables' indexes may stay where they are)",
            )
        elif not if_not_exists or not name:
            self.report(
                st,
                "no-transaction",
                f"index on {table}: name it and write IF NOT EXISTS, so that a re-run after a "
                "failed deploy skips what was built (an INVALID leftover is dropped and rebuilt "
                "by the migration runner)",
            )

    def alter_table(self, st: Statement, table: str, rest: str) -> None:
        if not self.existing(table):
            self.track_constraints(table, rest)
            return
        for action in _split_actions(rest):
            self.alter_action(st, table, action)
        self.track_constraints(table, rest)

    def alter_action(self, st: Statement, table: str, action: str) -> None:
        upper = action.upper()
        where = f"ALTER TABLE {table} {action[:60]}"
        if re.match(r"RENAME\b", upper):
            self.report(
                st,
                "expand-contract",
                f"{where}: a rename breaks the previous release's code, which runs against the "
                "new schema until its functions are replaced. Expand/contract instead: add the "
                "new column (or table), write both, backfill, switch reads, and drop the old "
                "one in a later release",
            )
        elif m := re.match(r"DROP\s+(?:COLUMN\s+)?(?:IF\s+EXISTS\s+)?(\S+)", upper):
            if m.group(1) != "CONSTRAINT" and not upper.startswith("DROP CONSTRAINT"):
                self.contract(st, where)
        elif re.match(r"ALTER\s+(COLUMN\s+)?\S+\s+(SET\s+DATA\s+)?TYPE\b", upper):
            self.report(
                st,
                "table-rewrite",
                f"{where}: changing a column's type rewrites the table under an exclusive lock "
                "(and breaks the previous release's code). Add a new column of the new type, "
                "backfill it, switch the code, drop the old column later",
            )
        elif re.match(r"ALTER\s+(COLUMN\s+)?\S+\s+SET\s+NOT\s+NULL\b", upper):
            column = _bare(action.split()[2 if upper.startswith("ALTER COLUMN") else 1])
            if (table, column) not in self.schema.validated:
                self.report(
                    st,
                    "table-rewrite",
                    f"{where}: SET NOT NULL scans the whole table under an exclusive lock. "
                    f"First ADD CONSTRAINT {table}_{column}_not_null CHECK ({column} IS NOT NULL) "
                    "NOT VALID, then VALIDATE CONSTRAINT it in a later migration; SET NOT NULL "
                    "after that skips the scan",
                )
        elif re.match(r"ADD\s+(CONSTRAINT\s+\S+\s+)?(CHECK|FOREIGN\s+KEY)\b", upper):
            if "NOT VALID" not in upper:
                self.report(
                    st,
                    "table-rewrite",
                    f"{where}: adding a CHECK or FOREIGN KEY constraint scans the table under a "
                    "lock: add it NOT VALID, and VALIDATE CONSTRAINT it in a later migration",
                )
        elif re.match(r"ADD\s+(CONSTRAINT\s+\S+\s+)?(UNIQUE|PRIMARY\s+KEY|EXCLUDE)\b", upper):
            if "USING INDEX" not in upper:
                self.report(
                    st,
                    "table-rewrite",
                    f"{where}: this builds an index under an exclusive lock. Build it with "
                    "CREATE UNIQUE INDEX CONCURRENTLY (a no-transaction file), then ADD "
                    "CONSTRAINT … UNIQUE USING INDEX …",
                )
        elif _ADD_COLUMN.match(upper):
            self.add_column(st, where, upper)
        elif re.match(r"(SET\s+(TABLESPACE|LOGGED|UNLOGGED)|CLUSTER\s+ON)\b", upper):
            self.report(st, "table-rewrite", f"{where}: rewrites the table under an exclusive lock")

    def add_column(self, st: Statement, where: str, upper: str) -> None:
        if re.search(r"\b(BIG|SMALL)?SERIAL\d?\b", upper) or _VOLATILE.search(upper):
            self.report(
                st,
                "table-rewrite",
                f"{where}: a volatile default (serial, random(), clock_timestamp(), "
                "gen_random_uuid(), nextval …) rewrites every row under an exclusive lock. Add "
                "the column without a default (or a constant one), backfill it in batches, then "
                "SET DEFAULT for new rows",
            )
        elif re.search(r"\bGENERATED\s+ALWAYS\s+AS\s*\(.*\)\s*STORED\b", upper):
            self.report(
                st, "table-rewrite", f"{where}: a STORED generated column rewrites every row"
            )
        elif re.search(r"\bNOT\s+NULL\b", upper) and not re.search(r"\bDEFAULT\b", upper):
            self.report(
                st,
                "table-rewrite",
                f"{where}: NOT NULL without a default fails on a table that has rows (and the "
                "previous release's INSERTs do not set it): give it a constant default",
            )
        elif re.search(r"\b(PRIMARY\s+KEY|UNIQUE)\b", upper):
            self.report(
                st,
                "table-rewrite",
                f"{where}: a UNIQUE/PRIMARY KEY column builds its index under an exclusive "
                "lock: add the column, then build the index CONCURRENTLY",
            )

    def track_constraints(self, table: str, rest: str) -> None:
        for m in re.finditer(
            r"ADD\s+CONSTRAINT\s+(\S+)\s+CHECK\s*\(\s*\(?\s*(\S+?)\s*\)?\s+IS\s+NOT\s+NULL\s*\)",
            rest,
            re.I,
        ):
            self.schema.not_null_checks[_bare(m.group(1))] = (table, _bare(m.group(2)))
            if not re.search(r"NOT\s+VALID", rest, re.I):
                self.schema.validated.add((table, _bare(m.group(2))))
        for m in re.finditer(r"VALIDATE\s+CONSTRAINT\s+(\S+)", rest, re.I):
            check = self.schema.not_null_checks.get(_bare(m.group(1)))
            if check:
                self.schema.validated.add(check)

    def contract(self, st: Statement, what: str) -> None:
        if any(_CONTRACT.match(note) for note in st.notes):
            return
        self.report(
            st,
            "expand-contract",
            f"{what}: the previous release's code may still read or write it while the new "
            "schema is live. Drop it only in the release after the one that stopped using it, "
            "and say so on the line above: '-- contract: <which release stopped using it>'",
        )

    def whole_table(self, st: Statement, upper: str) -> None:
        checks = (
            (r"VACUUM\s+(\(.*\bFULL\b.*\)|FULL\b)", "VACUUM FULL rewrites the table"),
            (r"CLUSTER\b", "CLUSTER rewrites the table"),
            (r"LOCK\s+(TABLE\s+)?", "LOCK TABLE stops other sessions"),
            (r"TRUNCATE\b", "TRUNCATE takes an exclusive lock (and deletes data)"),
            (r"REINDEX\s+(\(.*\)\s+)?(INDEX|TABLE|SCHEMA|DATABASE)\s+(?!CONCURRENTLY)", "a "
             "plain REINDEX blocks writes: REINDEX … CONCURRENTLY in a no-transaction file"),
        )  # fmt: skip
        for pattern, why in checks:
            if re.match(pattern, upper):
                self.report(st, "table-rewrite", f"{st.sql[:60]}: {why}")


def _split_actions(rest: str) -> list[str]:
    """The comma-separated actions of one ALTER TABLE (commas inside brackets kept)."""
    actions, depth, buf = [], 0, ""
    for ch in rest:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            actions.append(buf.strip())
            buf = ""
            continue
        buf += ch
    if buf.strip():
        actions.append(buf.strip())
    return actions


def check_migrations(files: Iterable[tuple[str, str]]) -> list[Finding]:
    """Findings for every file (name, sql) in order, grandfathered ones included (callers
    decide: check_folder drops those of GRANDFATHERED files)."""
    schema = Schema()
    findings: list[Finding] = []
    for name, sql in sorted(files):
        findings += _FileCheck(name, sql, schema).run()
    return findings


def migration_files(folder: Path) -> list[tuple[str, str]]:
    return [(p.name, p.read_text("utf-8")) for p in sorted(folder.glob("*.sql"))]


def check_folder(folder: Path) -> list[Finding]:
    """The findings a deploy must not ship: every file from FIRST_CHECKED on."""
    return [
        f
        for f in check_migrations(migration_files(folder))
        if f.file.removesuffix(".sql") not in GRANDFATHERED
    ]
