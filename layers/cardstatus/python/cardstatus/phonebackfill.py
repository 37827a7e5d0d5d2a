"""Hash the phones stored in full before migration 0013 (README "Privacy", expand/contract).

Run after the migrations by the migrate function and `cardstatus migrate` (and on demand by
`cardstatus phone-key backfill`): idempotent, and a no-op once no `phone` column holds a
number. Numbers are hashed here with the current key (cardstatus.phonehash), never in SQL.
Each batch of distinct numbers is its own short transaction per table.
"""

from __future__ import annotations

import io

from psycopg2 import sql as pgsql
from psycopg2.extensions import connection as Connection

from cardstatus.phonehash import hash_phone, last4
from cardstatus.sql import phonehash as sql

BATCH_NUMBERS = 5000


def backfill_phones(conn: Connection, batch: int = BATCH_NUMBERS) -> dict[str, int]:
    """Rows hashed per table; the `phone` columns are NULL afterwards. Commits per batch."""
    done = dict.fromkeys(sql.PHONE_TABLES, 0)
    for table in sql.PHONE_TABLES:
        while True:
            with conn.cursor() as cur:
                cur.execute(
                    pgsql.SQL(sql.DISTINCT_PHONES).format(table=pgsql.Identifier(table)),
                    {"limit": batch},
                )
                numbers = [row[0] for row in cur.fetchall()]
                if not numbers:
                    conn.commit()
                    break
                cur.execute(sql.CREATE_MAP)
                cur.copy_expert(sql.COPY_MAP, io.StringIO(_map_text(numbers)))
                cur.execute(pgsql.SQL(sql.APPLY_MAP).format(table=pgsql.Identifier(table)))
                done[table] += cur.rowcount
                cur.execute(sql.DROP_MAP)
            conn.commit()
    return done


def _map_text(numbers: list[str]) -> str:
    lines = []
    for number in numbers:
        digest, version = hash_phone(number)
        lines.append(f"{_copy(number)}\t{digest}\t{version}\t{last4(number)}\n")
    return "".join(lines)


def _copy(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def key_versions(conn: Connection) -> dict[str, dict[int, int]]:
    """{table: {key version: rows}} of the stored hashes, plus {"unhashed": {0: rows}}."""
    out: dict[str, dict[int, int]] = {t: {} for t in sql.PHONE_TABLES}
    with conn.cursor() as cur:
        cur.execute(sql.KEY_VERSIONS)
        for table, version, count in cur.fetchall():
            out[table][int(version)] = int(count)
        cur.execute(sql.UNHASHED)
        row = cur.fetchone()
    conn.rollback()
    out["unhashed"] = {0: sum(int(n) for n in row)} if row else {0: 0}
    return out
