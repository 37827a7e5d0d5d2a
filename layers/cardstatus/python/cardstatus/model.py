"""Domain vocabulary shared by ingestion and the API."""

from __future__ import annotations

import re
from enum import StrEnum
from functools import cache

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


# -- phones in free text (issue 18 N12) ------------------------------------------------------
# A phone in free text: 7 to 15 digits in groups, the groups joined by up to three separator
# characters among space, '(', ')', '.', '-', '/', '_', en and em dashes and no-break spaces
# ('058/594/9014', '058_594_9014', '058\u2013594\u20139014', '058.594.9014',
# '+971 (58) 594-9014'),
# not glued to a letter or digit on either side.
_SEP = r"[ \u00a0\u2009().\-/_\u2013\u2014]"
_PHONE_RUN = rf"\+?\(?\d+(?:{_SEP}{{1,3}}\d+)*"
# What is never a phone, whatever its digits: kept as is (tried first, left to right).
_UUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
_DAY = r"(?:0?[1-9]|[12]\d|3[01])"
_MONTH = r"(?:0?[1-9]|1[0-2])"
_YEAR = r"(?:1[89]|2[01])\d{2}"
# ISO dates and times (plausible months and days only: '0585-94-9014' is no date).
_TIMESTAMP = (
    rf"{_YEAR}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?(?![\d])"
)
_DATE = rf"(?:{_DAY}[-/.]{_DAY}[-/.]{_YEAR}|{_YEAR}[-/.]{_MONTH}[-/.]{_DAY})(?![\d])"
_LONG_UNITS = (
    r"(?:bytes?|[kKMGT]i?B|rows?|lines?|records?|cells?|chars?|characters?|columns?|"
    r"files?|cards?|events?|ms|seconds?|secs?|minutes?|hours?|days?)"
)
_SHORT_UNITS = r"(?:s|B|%)"  # only glued to the number: '0585949014 s' stays a phone
_KEYS = (
    r"(?:bytes?|size(?:_bytes)?|rows?(?:_\w+)?|lines?|count|total|accepted|rejected|"
    r"duplicates?|warnings?|ids?|file_id|files?|version|card_version|attempts|"
    r"duration(?:_ms)?|took|offset|limit|chunk|pid|port|sha256|etag)"
)
_NOT_A_PHONE = (
    rf"{_UUID}"
    rf"|\(?{_TIMESTAMP}"  # also in brackets: 'first pickup (2026-12-03)'
    rf"|\(?{_DATE}"
    rf"|\d[\d,]*(?:\.\d+)?(?:[ \u00a0]?{_LONG_UNITS}|{_SHORT_UNITS})(?![A-Za-z0-9])"
    rf"|(?<![A-Za-z0-9_]){_KEYS}[\"']?\s*[=:]\s*\"?\d+"  # rows=1200000, "file_id": 123456789
    r"|(?<![A-Za-z0-9_])(?:line|lines|row|rows) #?\d+"  # line 1234567
    # A decimal number: one dot, not part of a longer run of digit groups ('058.594 9014').
    rf"|(?<![\d.])(?<!\d{_SEP})\d+\.\d+(?![\d.])(?!{_SEP}{{1,3}}\d)"
)
PHONE_MIN_DIGITS, PHONE_MAX_DIGITS = 7, 15
# Text with fewer digits than a phone has nothing to mask (most log messages, most comments).
_ENOUGH_DIGITS = re.compile(rf"\d(?:\D*+\d){{{PHONE_MIN_DIGITS - 1}}}")  # linear: no backtracking


@cache
def _free_text() -> re.Pattern[str]:
    """The free-text pattern, compiled on first use: its compilation is ~13 ms of every cold
    import of a module using this one, and a lookup's log lines seldom need it."""
    return re.compile(
        rf"(?P<keep>{_NOT_A_PHONE})|(?<![A-Za-z0-9])(?P<phone>{_PHONE_RUN})(?![A-Za-z0-9])",
        re.IGNORECASE,
    )


def _mask_run(run: str) -> str:
    digits = [c for c in run if c.isdigit()]
    if len(digits) < PHONE_MIN_DIGITS:
        return run
    if len(digits) > PHONE_MAX_DIGITS:
        # Longer than any phone. One number without separators is a long id: kept. Else it
        # is several phones side by side: each part on its own when every space-separated part
        # is a phone ('0585949014 0545576586'), otherwise all but the run's last 4 digits.
        parts = [part for part in re.split(r"\s+", run) if part]
        if len(parts) == 1 and run.isdigit():
            return run
        sizes = [sum(c.isdigit() for c in part) for part in parts]
        if len(parts) > 1 and all(PHONE_MIN_DIGITS <= n <= PHONE_MAX_DIGITS for n in sizes):
            return re.sub(r"\S+", lambda m: _mask_run(m.group(0)), run)
    return "*" * (len(digits) - 4) + "".join(digits[-4:])


def redact_phones(text: str, keep: tuple[str, ...] = ()) -> str:
    """Mask anything in free text that could be a phone number (7-15 digits, any of the usual
    separators), keeping the last 4 digits; never numbers that are not phones: byte and row
    counts with their unit or key, ids after their key, timestamps, dates, UUIDs, decimals.
    Occurrences of the `keep` texts (a row's timestamp cell: never a phone) stay as they are."""
    if _ENOUGH_DIGITS.search(text) is None:
        return text  # every phone run would be shorter than a phone: kept as it is
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

    def _sub(match: re.Match[str]) -> str:
        if match.group("keep") is not None:
            return match.group("keep")
        return _mask_run(match.group("phone"))

    return _free_text().sub(_sub, text)
