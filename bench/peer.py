"""The peer most projects write: pandas ``read_csv`` + vectorised cleanup + ``to_sql``.

Loads the whole file into a DataFrame, cleans it the usual way (strip quotes, map statuses,
simple UAE phone rules, ``to_datetime`` with ``format="mixed"``, drop bad rows and
duplicates) and appends the events to ``card_event`` with SQLAlchemy. It does less than the
pipeline (no card projection, no per-row reject report, cruder phone and time rules) and is
measured only as the common baseline. Prints one JSON line: rows, seconds (read_csv to
commit, pandas import excluded).
Usage: ``python -m bench.peer DATABASE_URL PARTNER_CSV [--method multi|default]``.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta

import pandas as pd
import psycopg2
import sqlalchemy as sa

# The rows' source file (card_event.source_file_id), as the pipeline would have created it.
BENCH_FILE_ROW = (
    "INSERT INTO ingested_file (id, object_key, partner, outcome, report, started_at)"
    " VALUES (1, 'bench', 'default', 'applied', '{}', now())"
)

STATUS_WORDS = (
    ("pick", "PICKED_UP"),
    ("exception", "DELIVERY_EXCEPTION"),
    ("deliver", "DELIVERED"),
    ("return", "RETURNED"),
)
REASONS = (
    ("not available|no answer|unavailable", "recipient_unavailable"),
    ("declined|refused", "refused"),
    ("address|not found", "address_problem"),
)


def clean(df: pd.DataFrame) -> pd.DataFrame:
    df.columns = [c.strip().lower().replace(" ", "_") for c in df.columns]
    df = df.rename(columns={"id": "partner_row_id", "user_contact": "phone", "timestamp": "ts"})
    df["source_line"] = df.index + 2
    df["card_id"] = df["card_id"].str.strip().str.strip("\"'")
    df = df[df["card_id"].str.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", na=False)]

    low = df["status"].str.lower()
    status = pd.Series(pd.NA, index=df.index, dtype="object")
    for word, value in reversed(STATUS_WORDS):
        status = status.mask(low.str.contains(word, na=False), value)
    df = df.assign(status=status).dropna(subset=["status"])

    digits = df["phone"].str.replace(r"\D", "", regex=True)
    digits = digits.str.replace(r"^(00971|971|0)", "", regex=True)
    ok = digits.str.fullmatch(r"5[0-9]{8}", na=False) & ~df["phone"].str.contains("E", na=False)
    df["phone"] = ("+971" + digits).where(ok, None)

    ts = df["ts"].str.strip()
    utc = ts.str.endswith("Z", na=False)
    occurred = pd.Series(pd.NaT, index=df.index, dtype="datetime64[us, UTC]")
    occurred[utc] = pd.to_datetime(ts[utc], utc=True, errors="coerce")
    local = pd.to_datetime(ts[~utc], format="mixed", dayfirst=True, errors="coerce")
    occurred[~utc] = local.dt.tz_localize("Asia/Dubai").dt.tz_convert("UTC")
    latest = pd.Timestamp(datetime.now(UTC) + timedelta(days=1))
    df["occurred_at"] = occurred
    df = df[(occurred >= pd.Timestamp("2000-01-01", tz="UTC")) & (occurred <= latest)]

    df["comment"] = df["comment"].str.strip().replace("", None)
    reason = pd.Series(None, index=df.index, dtype="object")
    is_exc = df["status"] == "DELIVERY_EXCEPTION"
    reason[is_exc] = "other"
    lowc = df["comment"].str.lower()
    for pattern, value in reversed(REASONS):
        reason = reason.mask(is_exc & lowc.str.contains(pattern, na=False), value)
    df["reason"] = reason
    df = df.drop_duplicates(subset=["card_id", "status", "occurred_at"])
    df["partner"] = "default"
    df["source_file_id"] = 1
    return df[
        [
            "card_id",
            "status",
            "occurred_at",
            "comment",
            "reason",
            "phone",
            "partner",
            "source_file_id",
            "source_line",
            "partner_row_id",
        ]
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("path")
    parser.add_argument("--method", choices=("multi", "default"), default="default")
    args = parser.parse_args()
    # The URL may be a libpq key=value DSN: let psycopg2 parse it, SQLAlchemy only drives it.
    engine = sa.create_engine("postgresql+psycopg2://", creator=lambda: psycopg2.connect(args.url))
    with engine.begin() as conn:
        conn.exec_driver_sql(BENCH_FILE_ROW)
    started = time.perf_counter()
    df = pd.read_csv(args.path, dtype=str, keep_default_na=False, on_bad_lines="skip")
    df = clean(df)
    with engine.begin() as conn:
        df.to_sql(
            "card_event",
            conn,
            if_exists="append",
            index=False,
            method="multi" if args.method == "multi" else None,
            chunksize=1000,
        )
    seconds = time.perf_counter() - started
    print(json.dumps({"rows": len(df), "seconds": seconds, "method": args.method}))


if __name__ == "__main__":
    main()
