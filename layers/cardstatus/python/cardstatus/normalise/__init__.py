"""Per-row field normalisation for partner CSV files (README "Partner files and reports"), one
concern per module:

* ``phone``: phone numbers → E.164; ``timestamp``: ``TimestampParser``;
* ``fields``: card ids, comments, exception reasons; ``status``: event types (vocabulary);
* ``headers``: header row → ``HeaderMap``; ``_text``: shared trimming and message helpers.

Pure functions only: no database, no AWS, no I/O. Every regular expression is compiled
once: at import time, or (a phone region's validity pattern) on the region's first use.
The hot paths (phone numbers and timestamps, called once per row of files with millions
of rows) have fast paths for the dominant forms; each fast path is property-tested to
give exactly the same result as the general/reference implementation
(``_normalise_phone_reference`` and ``TimestampParser._parse_general``).

Decisions the README leaves open (see also the tests):

* Phones: only ASCII/Unicode decimal digits, a single leading ``+``, and the separators
  space, dash, brackets and dot are accepted; anything else (letters, ``ext``, ``/``,
  ``;``) is "not accepted" with a warning, never guessed. A number without ``+`` is read
  in the partner's region; when that is invalid and the digits begin with the region's
  own country code, it is retried as ``+<digits>`` (``971585949014`` in ``AE``). Digits
  that begin with *another* country's code are not retried (that would be a guess).
  A spreadsheet's ``="0585949014"`` text-formula wrapper is unwrapped. Placeholders that
  mean "no phone" (``-``, ``N/A``, ``null``, ``none``, ``nil``, ``#N/A``) are absent,
  not warnings.
* Timestamps: a time of day is required (a bare date is rejected rather than guessed as
  midnight). An explicit ``Z``/``UTC``/``GMT``/``±HH[:MM]`` suffix is honoured on any of
  the accepted layouts. Local wall-clock times that are ambiguous (the repeated hour when
  DST ends) or non-existent (the skipped hour when DST starts) are resolved with
  ``fold=0`` (PEP 495): the offset in force *before* the transition is used. The "before
  2000" bound applies to the calendar year as written; the "more than a day in the
  future" bound to the UTC instant, against a ``now`` captured once per parser.
* Event types: an explicitly negated "delivered" (``undelivered``, ``not delivered``,
  ``non-delivered``) never counts as DELIVERED; see ``status`` for the vocabulary rules.
* Card ids are case-insensitive: stored upper-case.
"""

from __future__ import annotations

from cardstatus.model import CARD_ID_RE
from cardstatus.normalise.fields import (
    COMMENT_MAX_CHARS,
    classify_reason,
    clean_comment,
    normalise_card_id,
)
from cardstatus.normalise.headers import HeaderMap, find_header, map_headers, normalise_header
from cardstatus.normalise.phone import (
    Phone,
    _normalise_phone_reference,
    _normalise_phone_uncached,
    _phone_fast,
    normalise_phone,
)
from cardstatus.normalise.status import (
    UNTRACKED,
    StatusVocabulary,
    event_type_from_filename,
    event_type_from_value,
    vocabulary,
)
from cardstatus.normalise.timestamp import TimestampParser

__all__ = [
    "CARD_ID_RE",
    "COMMENT_MAX_CHARS",
    "UNTRACKED",
    "HeaderMap",
    "Phone",
    "StatusVocabulary",
    "TimestampParser",
    "_normalise_phone_reference",
    "_normalise_phone_uncached",
    "_phone_fast",
    "classify_reason",
    "clean_comment",
    "event_type_from_filename",
    "event_type_from_value",
    "find_header",
    "map_headers",
    "normalise_card_id",
    "normalise_header",
    "normalise_phone",
    "vocabulary",
]
