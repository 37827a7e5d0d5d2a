"""Event types named by a Status/Event cell or by a file name (SPEC §2)."""

from __future__ import annotations

import re

from cardstatus.model import CardStatus
from cardstatus.normalise._text import _NON_ALNUM_RE

_NEGATED_DELIVERED_RE = re.compile(r"(?:un|not|non)delivered")


def _event_type(text: str) -> CardStatus | None:
    t = _NON_ALNUM_RE.sub("", text.lower())
    if not t:
        return None
    if "pickup" in t or "pickedup" in t:
        return CardStatus.PICKED_UP
    if "exception" in t:
        return CardStatus.DELIVERY_EXCEPTION
    if "delivered" in _NEGATED_DELIVERED_RE.sub("", t):
        return CardStatus.DELIVERED
    if "return" in t:
        return CardStatus.RETURNED
    return None


def event_type_from_value(raw: str | None) -> CardStatus | None:
    """CardStatus named by a Status/Event cell ('Picked up', 'DELIVERY_EXCEPTION'), else None."""
    if not raw:
        return None
    return _event_type(raw)


def event_type_from_filename(name: str) -> CardStatus | None:
    """CardStatus named by a file's base name ('… - Delivery exceptions.csv'), else None."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return _event_type(base)
