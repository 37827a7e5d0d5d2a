"""Limits that fit together (README "Limits"): a file the function cannot finish in time is
rejected up front with what to do, never left to time out into the dead-letter queue.

    function timeout (cdk.json functions.ingest.timeoutSeconds, 300 s)
      > statement timeout of the ingest transaction (function timeout - STATEMENT_MARGIN_S)
    largest file = measured rate x function timeout x RATE_MARGIN (README "Limits")

The measured rate (bench, 1M-row file, 2-core machine) is MEASURED_BYTES_PER_S /
MEASURED_ROWS_PER_S; RATE_MARGIN leaves room for a slower Lambda CPU, a busy database and a
retry after a deadlock.
"""

from __future__ import annotations

import os

from cardstatus.config import Settings

FUNCTION_TIMEOUT_S = int(os.environ.get("INGEST_FUNCTION_TIMEOUT_S", "300"))
STATEMENT_MARGIN_S = 60  # the statement gives up this long before the function is killed
# `make bench` on a busy 2-core machine: 200k-row file (73 bytes/row), ~10k rows/s end to end.
MEASURED_ROWS_PER_S = 10_000
MEASURED_BYTES_PER_S = 730_000
RATE_MARGIN = 0.5
MAX_ROWS = int(MEASURED_ROWS_PER_S * FUNCTION_TIMEOUT_S * RATE_MARGIN)  # 1.5 M rows
MAX_OBJECT_BYTES = int(MEASURED_BYTES_PER_S * FUNCTION_TIMEOUT_S * RATE_MARGIN)  # 109.5 MB


def statement_timeout_ms(cfg: Settings) -> int:
    """Statement timeout of the ingest transaction: the configured one, never above the
    function timeout minus a margin (a database statement must not outlive its function)."""
    ceiling = (FUNCTION_TIMEOUT_S - STATEMENT_MARGIN_S) * 1000
    configured = cfg.db_statement_timeout_ms
    return min(configured, ceiling) if configured > 0 else ceiling


def max_object_bytes(cfg: Settings) -> int:
    return min(cfg.max_object_bytes, MAX_OBJECT_BYTES)


def max_rows(cfg: Settings) -> int:
    return MAX_ROWS


def too_big_message(size: int, limit: int) -> str:
    return (
        f"file is {size / 1e6:,.1f} MB, larger than the limit of {limit / 1e6:,.0f} MB for one "
        f"file (what ingests within the function timeout); split it into files of at most "
        f"{limit // 1_000_000:,} MB"
    )
