"""Words compared the same way in any script (README "Partner files and reports": status
words in any language). Pure, stdlib only: the configuration validates partner words with it
at start, the status vocabulary matches cells and file names with it.

A text is NFKC-normalised (full-width and compatibility forms become plain letters, an
accent written as a combining mark is composed), case-folded, and cut into words of letters
and digits of every script (``تم التوصيل`` → ``["تم", "التوصيل"]``, ``Livré`` → ``["livré"]``);
everything else (spaces, punctuation, ``_``, combining marks left over) separates words.
A plural ``-s``/``-ies`` of a Latin word is taken back to its singular (``deliveries`` →
``delivery``, ``returns`` → ``return``; not ``-ss``: ``address``), so the built-in words
and a partner's words match their plurals.
"""

from __future__ import annotations

import re
import unicodedata

_WORD_RE = re.compile(r"[^\W_]+")


def _singular(word: str) -> str:
    if len(word) > 4 and word.endswith("ies") and word.isascii():
        return word[:-3] + "y"
    if len(word) > 3 and word[-1] == "s" and word[-2] != "s" and word.isascii():
        return word[:-1]
    return word


def words(text: str) -> list[str]:
    """The words of a text as compared: NFKC, case-folded, letters and digits of any script."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return [_singular(w) for w in _WORD_RE.findall(text.casefold())]


def word_key(text: str) -> str:
    """The words of a text joined without separators ("Picked-up" → "pickedup"); "" when the
    text has no letter or digit of any script."""
    return "".join(words(text))
