"""Card ids, comments and exception reasons (README "Partner files and reports", "Domain
rules")."""

from __future__ import annotations

import re
from collections.abc import Mapping

from cardstatus.model import CARD_ID_RE, RowError
from cardstatus.normalise._text import _TRIM_CHARS, _show


def normalise_card_id(raw: str | None) -> str:
    """Trimmed, unquoted, upper-case card id matching ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$.

    Card ids are case-insensitive (README "Partner files and reports"): 'zyw7631' is stored
    as 'ZYW7631'. Else RowError.
    """
    if raw is None:
        raise RowError("card id is missing")
    s = raw.strip(_TRIM_CHARS)
    if CARD_ID_RE.fullmatch(s) is not None and s.isascii():
        return s.upper()
    s = raw.strip().strip(_TRIM_CHARS).strip()
    if not s:
        raise RowError("card id is empty")
    if CARD_ID_RE.fullmatch(s) is None or not s.isascii():
        if len(s) > 64:
            raise RowError(f"card id {_show(s)} is longer than 64 characters")
        raise RowError(
            f"card id {_show(s)} is not 1-64 letters, digits, '-' or '_' "
            "starting with a letter or digit"
        )
    return s.upper()


COMMENT_MAX_CHARS = 500
# C0 controls (incl. tab, CR, LF), DEL, C1 controls, line/paragraph separators, bidi
# embedding/override/isolate controls, BOM/zero-width no-break space: become a space.
_COMMENT_CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]")
_WHITESPACE_RUN_RE = re.compile(r"\s+")


def clean_comment(raw: str | None) -> str | None:
    """Trimmed, control characters removed, whitespace collapsed, ≤ 500 chars; empty → None.

    Stored as plain text: formulas such as '=HYPERLINK(...)' are kept as written (exports
    escape them; ingestion never interprets them).
    """
    if raw is None:
        return None
    if raw.isascii() and raw.isprintable() and "  " not in raw:
        s = raw.strip()
    else:
        s = _WHITESPACE_RUN_RE.sub(" ", _COMMENT_CONTROL_RE.sub(" ", raw)).strip()
    if len(s) > COMMENT_MAX_CHARS:
        s = s[:COMMENT_MAX_CHARS].rstrip()
    return s or None


def classify_reason(comment: str | None, keywords: Mapping[str, str]) -> str:
    """Exception reason: the first keyword (in mapping order) found in the comment, else 'other'."""
    if not comment:
        return "other"
    text = comment.lower()
    for keyword, reason in keywords.items():
        if keyword and keyword.lower() in text:
            return reason
    return "other"
