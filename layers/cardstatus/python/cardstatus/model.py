"""Domain vocabulary shared by ingestion and the API."""

from __future__ import annotations

import re
from enum import StrEnum

# Re-exported for the modules that still import them from here (normalise, decode).
from cardstatus.errors import FileRejected, RowError

__all__ = [
    "CARD_ID_RE",
    "STATUS_RANK",
    "CardStatus",
    "ExceptionReason",
    "FileRejected",
    "RowError",
    "mask_phone",
    "redact_phones",
]


class CardStatus(StrEnum):
    PICKED_UP = "PICKED_UP"
    DELIVERY_EXCEPTION = "DELIVERY_EXCEPTION"
    DELIVERED = "DELIVERED"
    RETURNED = "RETURNED"


# On equal times the higher rank is the current status (README "Domain rules"); matches the
# SQL enum order.
STATUS_RANK: dict[CardStatus, int] = {
    CardStatus.PICKED_UP: 0,
    CardStatus.DELIVERY_EXCEPTION: 1,
    CardStatus.DELIVERED: 2,
    CardStatus.RETURNED: 3,
}

# A card id as stored (README "Domain rules"); ingestion and the API both validate with it.
CARD_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


class ExceptionReason(StrEnum):
    """Normalised reason of a DELIVERY_EXCEPTION event (from the partner's comment)."""

    RECIPIENT_UNAVAILABLE = "recipient_unavailable"
    REFUSED = "refused"
    ADDRESS_PROBLEM = "address_problem"
    OTHER = "other"


def mask_phone(phone: str | None) -> str | None:
    """Only the last 4 digits survive: '+971585949014' -> '********9014'."""
    if not phone:
        return None
    digits = [c for c in phone if c.isdigit()]
    if len(digits) <= 4:
        return "*" * len(digits)
    return "*" * (len(digits) - 4) + "".join(digits[-4:])


_DIGIT_RUN = re.compile(r"\+?\(?\d[\d ().-]{5,}\d")
# A date at the start of a digit run (4-digit year first or last) is kept; '+971-58-594-9014'
# and '971-58-594-9014' are phones, not dates.
_DATE_LIKE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?!\d)|\d{1,2}[-/.]\d{1,2}[-/.]\d{4}(?!\d)")


def redact_phones(text: str, keep: tuple[str, ...] = ()) -> str:
    """Mask anything in free text that could be a phone number (7+ digits), keeping the last 4.
    Occurrences of the `keep` texts (a row's timestamp cell: never a phone) stay as they are."""
    kept = [k for k in keep if k]
    if kept:
        pattern = re.compile("|".join(re.escape(k) for k in sorted(kept, key=len, reverse=True)))
        parts, last = [], 0
        for match in pattern.finditer(text):
            parts.append(redact_phones(text[last : match.start()]))
            parts.append(match.group(0))
            last = match.end()
        parts.append(redact_phones(text[last:]))
        return "".join(parts)

    def _mask(match: re.Match[str]) -> str:
        run = match.group(0)
        bracket = run[:1] == "("  # '(2026-12-03' is a date in brackets, '(050) 111' a phone
        date = None if run[0] == "+" else _DATE_LIKE.match(run, int(bracket))
        if date is not None:  # keep the date, still mask a phone that follows it
            return run[: date.end()] + _DIGIT_RUN.sub(_mask, run[date.end() :])
        digits = [c for c in run if c.isdigit()]
        if len(digits) < 7:
            return run
        return "*" * (len(digits) - 4) + "".join(digits[-4:])

    return _DIGIT_RUN.sub(_mask, text)
