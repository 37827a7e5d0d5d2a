"""Helpers shared by the normalise modules: trimming and safe rendering of untrusted text."""

from __future__ import annotations

import re

# Characters trimmed from both ends of a field: whitespace (incl. NBSP, zero-width space,
# BOM) and straight or typographic quote characters a CSV round-trip or a spreadsheet left.
_TRIM_CHARS = " \t\r\n\v\f\u00a0\u2007\u202f\u200b\ufeff\"'\u201c\u201d\u2018\u2019"

_SHOW_MAX = 40
_SHOW_MAX_ESCAPED = 64


def _show(raw: str) -> str:
    """A bounded, control-character-escaped rendering of untrusted input for messages.

    At most 40 characters of the input, repr-escaped, and at most 64 characters of output.
    """
    shown = repr(raw[:_SHOW_MAX])
    if len(shown) > _SHOW_MAX_ESCAPED:
        return shown[:_SHOW_MAX_ESCAPED] + "…"
    return shown + "…" if len(raw) > _SHOW_MAX else shown


_NON_ALNUM_RE = re.compile(r"[^a-z0-9]+")
