"""A card id that is a phone is not a card id (SPEC §2 "Card ids are not phones", README
"Partner files and reports").

On top of the built-in card-id shape (cardstatus.normalise.fields.normalise_card_id):

- a card-id cell of 9 or more digits (optionally with a leading '+', separators '-' '_' or
  spaces between them) is a phone number, whatever its region;
- a card-id cell of digits that is a valid phone number for the partner's phone region
  (national, trunk-prefixed or country-prefixed form: `585949014`, `0585949014`, `971…`) is a
  phone number;

either rejects the row ("the card-id column holds a phone number: are the columns swapped?").
A deployment may also set its own card-id pattern (CARD_ID_PATTERN, cardstatus.config): the
whole upper-cased card id must match it, else the row is rejected.

Card ids with a letter never reach the phone checks (one `str.isdigit` on the hot path).
"""

from __future__ import annotations

import re

from cardstatus.model import RowError
from cardstatus.normalise._text import _TRIM_CHARS
from cardstatus.normalise.fields import normalise_card_id
from cardstatus.normalise.phone import normalise_phone

PHONE_IN_CARD_ID = "the card-id column holds a phone number: are the columns swapped?"
PHONE_MIN_DIGITS = 9
# Digits with the separators a phone is written with ('-', '_', spaces, dots, brackets), an
# optional leading '+' or '00'.
_PHONE_SHAPED_RE = re.compile(r"\+?\(?[0-9][0-9 ._()\-]*")
_SEPARATORS_RE = re.compile(r"[ ._()\-]+")


class CardIdRule:
    """Card-id cell → card id (upper-case), or RowError. One per file (region and pattern)."""

    __slots__ = ("_pattern", "_region")

    def __init__(self, region: str, pattern: str | None = None) -> None:
        self._region = region
        self._pattern = re.compile(pattern) if pattern else None

    def __call__(self, raw: str | None) -> str:
        try:
            card_id = normalise_card_id(raw)
        except RowError:
            if raw is not None and self.is_phone(raw.strip().strip(_TRIM_CHARS).strip()):
                raise RowError(PHONE_IN_CARD_ID) from None
            raise
        if (card_id.isdigit() or card_id[0].isdigit()) and self.is_phone(card_id):
            raise RowError(PHONE_IN_CARD_ID)
        if self._pattern is not None and self._pattern.fullmatch(card_id) is None:
            raise RowError(
                f"card id {card_id[:64]!r} does not match this deployment's card-id pattern "
                "(CARD_ID_PATTERN)"
            )
        return card_id

    def is_phone(self, cell: str) -> bool:
        """Whether a (trimmed) card-id cell is a phone number (see the module docstring)."""
        if not _PHONE_SHAPED_RE.fullmatch(cell):
            return False
        digits = _SEPARATORS_RE.sub("", cell).lstrip("+")
        if not digits.isdigit():
            return False
        if len(digits) >= PHONE_MIN_DIGITS:
            return True
        return normalise_phone(cell, self._region).e164 is not None
