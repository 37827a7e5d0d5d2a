"""File identity = bytes + meaning (README "Partner files and reports").

The same bytes mean something else when they are read differently: under another partner
(timezone, date order, phone region, status words) or with another event type taken from the
file name (`… Pickup.csv` renamed `… Delivered.csv`). Such a file is a new file and is applied;
the same bytes with the same meaning are a `duplicate_file`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

from cardstatus.config import PartnerSettings
from cardstatus.model import CardStatus

_NOT_READING = frozenset({"name", "group", "handover_to"})


def partner_fingerprint(partner: PartnerSettings) -> str:
    """sha256 of every setting that affects how the partner's files are read.

    All fields of PartnerSettings except its name (the partner itself is a separate part of
    the meaning) and the ownership group (who may share cards, not how a file is read): a
    setting added later is part of the fingerprint without a change here.
    """
    fields = {
        f.name: getattr(partner, f.name)
        for f in dataclasses.fields(partner)
        if f.name not in _NOT_READING
    }
    text = json.dumps(fields, sort_keys=True, default=_jsonable, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _jsonable(value: object) -> object:
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    if isinstance(value, tuple):
        return list(value)
    return str(value)


def meaning_key(
    content_sha256: str,
    partner_name: str,
    partner: PartnerSettings,
    name_event_type: CardStatus | None,
) -> str:
    """sha256(content sha256, partner, partner-settings fingerprint, event type from the name)."""
    parts = [
        "cardstatus-meaning-v1",
        content_sha256,
        partner_name,
        partner_fingerprint(partner),
        name_event_type.value if name_event_type is not None else "",
    ]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()
