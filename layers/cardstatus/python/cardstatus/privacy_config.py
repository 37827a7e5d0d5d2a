"""Retention settings (README "Privacy"), read from environment variables; re-exported by
`cardstatus.config` (a module of their own so that the functions that do not apply
retention, the api, do not build this class at import: cold start)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class PrivacySettings:
    """Retention periods, in days: cards after their latest event (CARD_RETENTION_DAYS; 0 or
    unset = keep forever: the stack sets it from cdk.json, 730 by default), lookup audit rows
    (AUDIT_RETENTION_DAYS); cards deleted per batch (RETENTION_BATCH)."""

    card_retention_days: int = 0
    audit_retention_days: int = 400
    retention_batch: int = 500


def load_privacy_settings() -> PrivacySettings:
    env = os.environ
    cards = int(env.get("CARD_RETENTION_DAYS", "0"))
    audit = int(env.get("AUDIT_RETENTION_DAYS", "400"))
    batch = int(env.get("RETENTION_BATCH", "500"))
    if cards < 0 or audit < 1 or not 1 <= batch <= 10_000:
        raise ValueError(
            "CARD_RETENTION_DAYS must be >= 0, AUDIT_RETENTION_DAYS >= 1 and RETENTION_BATCH "
            f"1-10000; got {cards}, {audit}, {batch}"
        )
    return PrivacySettings(cards, audit, batch)
