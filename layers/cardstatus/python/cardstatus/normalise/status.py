"""Event types named by a Status/Event cell or by a file name: the status vocabulary
(README "Partner files and reports").

A text is cut into words by ``cardstatus.words`` (NFKC, case-folded, letters and digits of
any script kept, plurals taken back to the singular) and joined ("Picked up" → "pickedup",
"تم التوصيل" → "تمالتوصيل"), then searched for the vocabulary's words, longest first; a word
found is removed from the text before shorter ones are looked for, so "undelivered" is never
read as "delivered". An accented word keeps its accents ("livré" is not "livr"), so it never
matches inside another word ("Livraison échouée").

* Words of 3 characters or fewer (``rto``) count only as a whole word of the text.
* A word ending in ``*`` counts only at the start of the text (``attempt*``: "Attempted -
  no answer" is an exception, "Delivered at 2nd attempt" is not).
* A tracked word right after "not", "non" or "un" ("Not collected") is not that status:
  the text names a state this model does not track.
* An exception word outranks "delivered" ("Delivered exceptions.csv" is exceptions); the
  negated forms of delivered ("not delivered") only count when nothing else is named
  ("Returned - not delivered" is RETURNED).
* Two event types left → the text is ambiguous ("Delivered and Returned.csv").
* No tracked word but an untracked one ("In transit", "Out for delivery") → not tracked.
* A non-blank status cell that names nothing the vocabulary knows ("Cancelled") is rejected:
  it is never guessed, and the file name does not stand in for it (only a blank cell does).

Per-partner words (``PARTNER_CONFIG`` ``status_words``) are added to the defaults and win
over a default word written the same way. Their value is a status name or ``UNTRACKED``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from cardstatus.model import CardStatus, FileRejected, RowError
from cardstatus.normalise._text import _show
from cardstatus.words import word_key, words

UNTRACKED = "UNTRACKED"

_PICKED_UP = CardStatus.PICKED_UP
_EXCEPTION = CardStatus.DELIVERY_EXCEPTION
_DELIVERED = CardStatus.DELIVERED
_RETURNED = CardStatus.RETURNED

DEFAULT_STATUS_WORDS: dict[str, str] = {
    **dict.fromkeys(
        ("pickup", "picked up", "pick up", "collected", "picked", "shipped"), _PICKED_UP.value
    ),
    **dict.fromkeys(
        (
            "exception",
            "delivery failed",
            "failed delivery",
            "delivery failure",
            "attempt*",
            "undeliverable",
            "failed attempt",
        ),
        _EXCEPTION.value,
    ),
    "delivered": _DELIVERED.value,
    **dict.fromkeys(
        ("return", "rto", "rto delivered", "return to origin", "returned to sender"),
        _RETURNED.value,
    ),
    **dict.fromkeys(
        (
            "in transit",
            "transit",
            "out for delivery",
            "at hub",
            "arrived at hub",
            "on hold",
            "pending",
            "label created",
            "manifested",
        ),
        UNTRACKED,
    ),
}
# "Not delivered" and friends: an exception only when the text names nothing else.
_WEAK_EXCEPTION_WORDS = ("undelivered", "notdelivered", "nondelivered")
_NEGATIONS = ("not", "non", "un")


def _key(word: str) -> str:
    return word_key(word)


@dataclass(frozen=True, slots=True)
class _Entry:
    key: str
    status: CardStatus | None  # None: a state this model does not track
    prefix_only: bool
    whole_word: bool
    weak: bool  # "not delivered": an exception only when nothing else is named


@dataclass(frozen=True, slots=True)
class StatusMatch:
    """What a text names: its event types and whether it names an untracked state."""

    statuses: frozenset[CardStatus]
    untracked: bool

    @property
    def status(self) -> CardStatus | None:
        """The one event type named, else None (none, or ambiguous)."""
        return next(iter(self.statuses)) if len(self.statuses) == 1 else None


def _status_of(value: str) -> CardStatus | None:
    name = _key(value)
    if name == _key(UNTRACKED) or name == "nottracked":
        return None
    for status in CardStatus:
        if _key(status.value) == name:
            return status
    raise ValueError(f"unknown status {value!r}: use one of {[s.value for s in CardStatus]}")


class StatusVocabulary:
    """The words that name event types: the defaults plus one partner's words."""

    __slots__ = ("_entries",)

    def __init__(self, extra: Iterable[tuple[str, str]] = ()) -> None:
        words: dict[str, _Entry] = {}
        for word, value in [*DEFAULT_STATUS_WORDS.items(), *extra]:
            prefix_only = word.endswith("*")
            key = _key(word)
            if not key:
                raise ValueError(f"status word {word!r} has no letter or digit in any script")
            words[key] = _Entry(key, _status_of(value), prefix_only, len(key) <= 3, False)
        for key in _WEAK_EXCEPTION_WORDS:
            words.setdefault(key, _Entry(key, _EXCEPTION, False, False, True))
        # Longest first: a longer word is consumed before the shorter words inside it.
        self._entries = sorted(words.values(), key=lambda e: -len(e.key))

    def match(self, text: str) -> StatusMatch:
        """The event types (and untracked states) that a text names."""
        found_words = words(text)
        t = "".join(found_words)
        whole = set(found_words)
        found: set[CardStatus] = set()
        untracked = weak = False
        for entry in self._entries:
            key = entry.key
            if entry.whole_word:
                if key not in whole:
                    continue
                whole.discard(key)
                at = t.find(key)
            elif entry.prefix_only:
                if not t.startswith(key):
                    continue
                at = 0
            else:
                at = t.find(key)
                if at < 0:
                    continue
            if entry.weak:
                weak = True
            elif entry.status is None or (at > 0 and t[:at].endswith(_NEGATIONS)):
                untracked = True
            else:
                found.add(entry.status)
            if at >= 0:
                t = t.replace(key, "|")
        if weak and not found:
            found.add(_EXCEPTION)
        if _EXCEPTION in found:
            found.discard(_DELIVERED)
        return StatusMatch(frozenset(found), untracked and not found)

    def from_value(self, raw: str | None) -> CardStatus | None:
        """The event type a Status/Event cell names; None when blank.

        RowError when the cell names a state that is not tracked, several event types, or
        nothing the vocabulary knows (never guessed).
        """
        if not raw or raw.isspace():
            return None
        m = self.match(raw)
        if len(m.statuses) == 1:
            return next(iter(m.statuses))
        if m.statuses:
            names = ", ".join(sorted(s.value for s in m.statuses))
            raise RowError(f"status {_show(raw.strip())} names more than one event type ({names})")
        if m.untracked:
            raise RowError(
                f"status {_show(raw.strip())} is not tracked "
                "(only pickup, delivery exception, delivered and returned are)"
            )
        raise RowError(
            f"unknown status {_show(raw.strip())}: add it to the partner's status words "
            "(PARTNER_CONFIG status_words)"
        )

    def from_filename(self, name: str) -> CardStatus | None:
        """The event type a file's base name names ('… - Delivery exceptions.csv'), else None."""
        status, _why = self.file_event_type(name)
        return status

    def file_event_type(self, name: str) -> tuple[CardStatus | None, str | None]:
        """(event type named by the file's base name, None) or (None, why there is none)."""
        base = name.replace("\\", "/").rsplit("/", 1)[-1]
        m = self.match(base)
        if len(m.statuses) == 1:
            return next(iter(m.statuses)), None
        if m.statuses:
            names = " and ".join(sorted(s.value for s in m.statuses))
            return None, f"the file name names more than one event type ({names})"
        if m.untracked:
            return None, "the file name names a status that is not tracked"
        return None, "the file name mentions none of pickup, exception, delivered, return"

    def require_file_event_type(self, name: str) -> CardStatus:
        """Event type of a file without a Status/Event column (from its name), else FileRejected."""
        status, why = self.file_event_type(name)
        if status is None:
            raise FileRejected(f"cannot tell the event type: no Status/Event column, and {why}")
        return status


@lru_cache(maxsize=64)
def vocabulary(extra: tuple[tuple[str, str], ...] = ()) -> StatusVocabulary:
    """The vocabulary of the defaults plus a partner's words (cached per word list)."""
    return StatusVocabulary(extra)


def event_type_from_value(raw: str | None) -> CardStatus | None:
    """CardStatus named by a Status/Event cell ('Picked up', 'DELIVERY_EXCEPTION'); None blank.

    RowError for a state that is not tracked ('In transit'), several event types or an
    unknown word ('Cancelled').
    """
    return vocabulary().from_value(raw)


def event_type_from_filename(name: str) -> CardStatus | None:
    """CardStatus named by a file's base name ('… - Delivery exceptions.csv'), else None."""
    return vocabulary().from_filename(name)
