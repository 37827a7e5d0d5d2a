"""Shared helpers of the partner feed health tests: configuration and files at chosen times."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from cardstatus.config import Settings, load_settings

# Dubai (UTC+4, no daylight saving). 2026-12-03 is a Thursday, 2026-12-04 a Friday.
SPEEDY_FEED = {"every_hours": 24, "grace_hours": 2, "quiet_days": ["fri"], "max_reject_rate": 0.1}
PARTNER_CONFIG = {
    "default": {"timezone": "Asia/Dubai"},
    "speedy": {"timezone": "Asia/Dubai", "feed": SPEEDY_FEED},
    "acme": {"timezone": "Asia/Dubai"},
    "newco": {"timezone": "Asia/Dubai", "feed": {"every_hours": 12}},
}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def partner_settings(monkeypatch: Any, config: dict[str, Any] | None = None) -> Settings:
    from cardstatus import config as cfg_module

    monkeypatch.setenv("PARTNER_CONFIG", json.dumps(config or PARTNER_CONFIG))
    cfg_module.reset_settings_cache()
    return load_settings()


def add_file(
    conn: Any,
    partner: str,
    finished_at: str | datetime,
    *,
    rows: int = 10,
    rejected: int = 0,
    outcome: str = "applied",
    voided: bool = False,
    key: str | None = None,
) -> int:
    """One ingested_file row as ingestion leaves it (counts only: health reads nothing else)."""
    at = utc(finished_at) if isinstance(finished_at, str) else finished_at
    with conn.cursor() as cur:
        cur.execute(
            """INSERT INTO ingested_file (object_key, partner, outcome, rows_total, rows_accepted,
                   rows_rejected, report, started_at, finished_at, voided_at)
               VALUES (%s, %s, %s, %s, %s, %s, '{}', %s, %s, %s) RETURNING id""",
            (
                key or f"incoming/{partner}/file-{at.isoformat()}.csv",
                partner,
                outcome,
                rows,
                rows - rejected if outcome == "applied" else 0,
                rejected if outcome == "applied" else rows,
                at,
                at,
                at if voided else None,
            ),
        )
        file_id = int(cur.fetchone()[0])
    conn.commit()
    return file_id
