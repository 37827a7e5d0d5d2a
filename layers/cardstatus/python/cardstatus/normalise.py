"""Per-row field normalisation for partner CSV files (SPEC §2).

Pure functions only: no database, no AWS, no I/O. Every regular expression is compiled
once: at import time, or (a phone region's validity pattern) on the region's first use.
The hot paths (phone numbers and timestamps, called once per row of files with millions
of rows) have fast paths for the dominant forms; each fast path is property-tested to
give exactly the same result as the general/reference implementation
(``_normalise_phone_reference`` and ``TimestampParser._parse_general``).

Decisions where SPEC §2 is silent (see also the tests):

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
  ``non-delivered``) never counts as DELIVERED.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberFormat

from cardstatus.model import CARD_ID_RE, CardStatus, FileRejected, RowError, mask_phone

__all__ = [
    "CARD_ID_RE",
    "COMMENT_MAX_CHARS",
    "HeaderMap",
    "Phone",
    "TimestampParser",
    "classify_reason",
    "clean_comment",
    "event_type_from_filename",
    "event_type_from_value",
    "map_headers",
    "normalise_card_id",
    "normalise_header",
    "normalise_phone",
]

# ---------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------
# Phones
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Phone:
    """Result of phone normalisation: E.164 or None, and why a non-empty value was refused."""

    e164: str | None
    warning: str | None


_PHONE_ABSENT = Phone(None, None)
_PHONE_MAX_CHARS = 40  # after trimming; E.164 has at most 15 digits, formatting adds a few
_PHONE_PLACEHOLDERS = frozenset({"-", "--", "—", "n/a", "na", "null", "none", "nil", "#n/a"})
# Spreadsheet damage: 9.7E+11, 9.71585E+11, 5,85949E+08 (comma decimal locales).
_PHONE_SCIENTIFIC_RE = re.compile(r"[+]?[0-9]+(?:[.,][0-9]*)?[eE][+-]?[0-9]+")
# A number turned into a float and printed back: 585949014.0
_PHONE_FLOAT_RE = re.compile(r"[+]?[0-9]{6,}\.0+")
# Excel's text-formula trick to keep leading zeros: ="0585949014"
_PHONE_FORMULA_RE = re.compile(r'=\s*"([^"]*)"')
# Separators tolerated between digits: whitespace, dashes, brackets, dots.
_PHONE_SEPARATORS_RE = re.compile(r"[\s\-\u2010-\u2015().]+")
_WARN_SCIENTIFIC = "phone looks spreadsheet-mangled (scientific notation); left unset"
_WARN_FLOAT = "phone looks spreadsheet-mangled (decimal number); left unset"
_WARN_LETTERS = "phone contains letters; left unset"
_WARN_CHARS = "phone contains unexpected characters; left unset"
_WARN_LONG = "phone is too long; left unset"
_WARN_PLUS = "phone has a '+' that is not at the start; left unset"
_WARN_NO_DIGITS = "phone has no digits; left unset"


def _invalid_warning(digits: str, region: str) -> str:
    return f"phone {mask_phone(digits) or ''} is not a valid number for region {region}; left unset"


def _to_ascii_digits(text: str) -> str:
    """Map any Unicode decimal digit (Arabic-Indic, full-width, ...) to ASCII 0-9."""
    return "".join(c if "0" <= c <= "9" else str(unicodedata.decimal(c)) for c in text)


def _clean_phone(raw: str) -> Phone | tuple[bool, str]:
    """Shared pre-cleaning of both phone paths.

    Returns a final Phone (absent or refused) or ``(plus, ascii_digits)`` to be validated.
    """
    s = raw.strip()
    m = _PHONE_FORMULA_RE.fullmatch(s)
    if m is not None:
        s = m.group(1)
    s = s.strip().strip(_TRIM_CHARS).strip()
    if not s:
        return _PHONE_ABSENT
    if len(s) > _PHONE_MAX_CHARS:
        return Phone(None, _WARN_LONG)
    if s.lower() in _PHONE_PLACEHOLDERS:
        return _PHONE_ABSENT
    if _PHONE_SCIENTIFIC_RE.fullmatch(s):
        return Phone(None, _WARN_SCIENTIFIC)
    if _PHONE_FLOAT_RE.fullmatch(s):
        return Phone(None, _WARN_FLOAT)
    compact = _PHONE_SEPARATORS_RE.sub("", s)
    plus = compact.startswith("+")
    body = compact[1:] if plus else compact
    if not body.isdecimal():
        if not body:
            return Phone(None, _WARN_NO_DIGITS)
        if any(c.isalpha() for c in body):
            return Phone(None, _WARN_LETTERS)
        if "+" in body:
            return Phone(None, _WARN_PLUS)
        return Phone(None, _WARN_CHARS)
    if not body.isascii():
        body = _to_ascii_digits(body)
    return plus, body


def _phonenumbers_e164(plus: bool, digits: str, region: str) -> str | None:
    """The plain phonenumbers path: parse in the region, retry with '+' for own-country digits."""
    try:
        num = phonenumbers.parse(("+" if plus else "") + digits, region)
        if phonenumbers.is_valid_number(num):
            return phonenumbers.format_number(num, PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        pass
    if plus or digits.startswith("0"):
        return None
    cc = phonenumbers.country_code_for_region(region)
    if cc and digits.startswith(str(cc)):
        try:
            num = phonenumbers.parse("+" + digits, region)
        except phonenumbers.NumberParseException:
            return None
        if phonenumbers.is_valid_number(num):
            return phonenumbers.format_number(num, PhoneNumberFormat.E164)
    return None


def _normalise_phone_reference(raw: str | None, region: str = "AE") -> Phone:
    """Reference implementation (no cache, no fast path): what normalise_phone must equal."""
    if raw is None:
        return _PHONE_ABSENT
    region = region.upper()
    cleaned = _clean_phone(raw)
    if isinstance(cleaned, Phone):
        return cleaned
    plus, digits = cleaned
    e164 = _phonenumbers_e164(plus, digits, region)
    if e164 is None:
        return Phone(None, _invalid_warning(digits, region))
    return Phone(e164, None)


class _RegionFastPath:
    """Validity of a national significant number for one region without phonenumbers' parse.

    A replica of ``phonenumbers.phonenumberutil._number_type_helper(...) != UNKNOWN`` with
    the region's patterns compiled once. Only built for regions whose rules are simple
    enough that the digit-shape rules in ``_phone_fast`` reproduce phonenumbers exactly:
    the country code belongs to this region alone, the national prefix is a plain '0'
    without transform rule (or there is none), the international prefix is '00'.
    """

    __slots__ = ("cc", "general", "national_prefix", "valid_re")

    _TYPES = (
        "premium_rate",
        "toll_free",
        "shared_cost",
        "voip",
        "personal_number",
        "pager",
        "uan",
        "voicemail",
        "fixed_line",
        "mobile",
    )

    def __init__(self, md: PhoneMetadata) -> None:
        self.cc = str(md.country_code)
        self.national_prefix = md.national_prefix == "0"

        def desc_re(desc: object) -> str | None:
            # phonenumbers' _is_number_matching_desc: length in possible_length (when
            # given) and a full match of national_number_pattern (when non-empty).
            pattern = getattr(desc, "national_number_pattern", None)
            if desc is None or not pattern:
                return None
            lengths = sorted(set(getattr(desc, "possible_length", ()) or ()))
            if any(n < 1 for n in lengths):
                return None  # (-1,) marks "no numbers of this type"
            length = f"(?=(?:{'|'.join(f'[0-9]{{{n}}}' for n in lengths)})\\Z)" if lengths else ""
            return f"{length}(?=(?:{pattern})\\Z)"

        general = desc_re(md.general_desc)
        if general is None:
            raise ValueError("region without a general pattern")
        self.general = re.compile(general + "[0-9]*")
        types = [r for r in (desc_re(getattr(md, t, None)) for t in self._TYPES) if r]
        if not types:
            raise ValueError("region without number types")
        # One C-level match: general pattern AND any type pattern, all as full matches.
        self.valid_re = re.compile(general + "(?:" + "|".join(types) + ")[0-9]*")

    def valid(self, nsn: str) -> bool:
        """phonenumbers' ``_number_type_helper(nsn, metadata) != UNKNOWN``."""
        return self.valid_re.fullmatch(nsn) is not None

    def general_match(self, digits: str) -> bool:
        return self.general.fullmatch(digits) is not None


@lru_cache(maxsize=64)
def _fast_path_for(region: str) -> _RegionFastPath | None:
    md = PhoneMetadata.metadata_for_region(region)
    if md is None or md.country_code is None:
        return None
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(md.country_code, ())
    if len(regions) != 1:
        return None
    prefix = md.national_prefix
    if not (
        (prefix == "0" and md.national_prefix_for_parsing in (None, "0"))
        or (prefix is None and md.national_prefix_for_parsing is None)
    ):
        return None
    if md.national_prefix_transform_rule or md.international_prefix != "00" or md.leading_digits:
        return None
    try:
        return _RegionFastPath(md)
    except ValueError:
        return None


def _phone_fast(plus: bool, digits: str, region: str) -> str | None:
    """E.164 for the dominant digit shapes when certainly valid; None means "ask phonenumbers".

    Shapes: ``+<cc><nsn>``, ``0<nsn>``, ``<nsn>``, ``<cc><nsn>`` with nsn not starting with 0.
    Mirrors phonenumbers' parse: country-code extraction for '+', national-prefix stripping
    for a leading '0', and the own-country-code rule for bare digits (strip the code only
    when the full digits do not fit the region's general pattern and the rest is valid).
    """
    fp = _fast_path_for(region)
    if fp is None or len(digits) < 3:
        return None
    cc = fp.cc
    if plus:
        if not digits.startswith(cc):
            return None
        nsn = digits[len(cc) :]
    elif digits[0] == "0":
        if not fp.national_prefix or digits[1:2] in ("0", ""):
            return None  # '00…' is an international prefix: leave it to phonenumbers
        nsn = digits[1:]
    elif digits.startswith(cc):
        if fp.general_match(digits):
            return None  # could be a national number that happens to start with the code
        nsn = digits[len(cc) :]
    else:
        nsn = digits
    if not nsn or nsn[0] == "0" or not fp.valid(nsn):
        return None
    return "+" + cc + nsn


def _normalise_phone_uncached(raw: str, region: str) -> Phone:
    # Fast exit for the commonest shapes: bare ASCII digits, possibly quoted or '+'-prefixed.
    s = raw.strip(_TRIM_CHARS)
    if s.isdigit() and s.isascii() and len(s) <= _PHONE_MAX_CHARS:
        plus, digits = False, s
    elif s[:1] == "+" and s[1:].isdigit() and s.isascii() and len(s) <= _PHONE_MAX_CHARS:
        plus, digits = True, s[1:]
    else:
        cleaned = _clean_phone(raw)
        if isinstance(cleaned, Phone):
            return cleaned
        plus, digits = cleaned
    e164 = _phone_fast(plus, digits, region)
    if e164 is None:
        e164 = _phonenumbers_e164(plus, digits, region)
        if e164 is None:
            return Phone(None, _invalid_warning(digits, region))
    return Phone(e164, None)


@lru_cache(maxsize=8192)
def _normalise_phone_cached(raw: str, region: str) -> Phone:
    return _normalise_phone_uncached(raw, region)


def normalise_phone(raw: str | None, region: str = "AE") -> Phone:
    """E.164 phone for a partner's raw value in its region (SPEC §2); never raises.

    Absent/blank → Phone(None, None); refused → Phone(None, <warning without the number>).
    Results are cached (bounded) on (raw, region); see ``_normalise_phone_reference``.
    """
    if not raw:
        return _PHONE_ABSENT
    return _normalise_phone_cached(raw, region.upper())


# ---------------------------------------------------------------------------------------
# Timestamps
# ---------------------------------------------------------------------------------------

_TS_TIME = (
    r"(?P<H>[0-9]{1,2}):(?P<M>[0-9]{2})(?::(?P<S>[0-9]{2})(?:[.,](?P<F>[0-9]{1,9}))?)?"
    r"(?:[ \t]*(?P<AP>[AaPp])\.?[ \t]?[Mm]\.?)?"
    r"(?:[ \t]*(?P<Z>[Zz]|UTC|GMT|utc|gmt|[+-][0-9]{2}(?::?[0-9]{2})?))?"
)
_TS_YMD_RE = re.compile(
    r"(?P<y>[0-9]{4})(?P<sep>[-/.])(?P<m>[0-9]{1,2})(?P=sep)(?P<d>[0-9]{1,2})"
    r"(?:[Tt]|[ \t]+|,[ \t]*)" + _TS_TIME
)
_TS_DMY_RE = re.compile(
    r"(?P<a>[0-9]{1,2})(?P<sep>[-/.])(?P<b>[0-9]{1,2})(?P=sep)(?P<y>[0-9]{4})"
    r"(?:[Tt]|[ \t]+|,[ \t]*)" + _TS_TIME
)
# Fast-path shapes (ASCII digits only, fixed width).
_TS_FAST_Z_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_TS_FAST_YMD_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}(?::[0-9]{2})?")
_TS_FAST_DMY_RE = re.compile(r"[0-9]{2}([-/.])[0-9]{2}\1[0-9]{4} [0-9]{2}:[0-9]{2}(?::[0-9]{2})?")
_TS_DATE_ONLY_RE = re.compile(
    r"[0-9]{4}[-/.][0-9]{1,2}[-/.][0-9]{1,2}|[0-9]{1,2}[-/.][0-9]{1,2}[-/.][0-9]{4}"
)
_MIN_YEAR = 2000
_MAX_OFFSET_HOURS = 18


def _zone_offset(z: str) -> timezone:
    if z in ("Z", "z", "UTC", "GMT", "utc", "gmt"):
        return UTC
    sign = -1 if z[0] == "-" else 1
    body = z[1:].replace(":", "")
    hours = int(body[:2])
    minutes = int(body[2:4]) if len(body) > 2 else 0
    if hours > _MAX_OFFSET_HOURS or minutes > 59:
        raise RowError(f"timestamp offset {z!r} out of range")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


class TimestampParser:
    """Parses one partner's timestamps to aware UTC datetimes (SPEC §2).

    Create one per file: ``now`` is read once, here, for the "not more than a day in the
    future" bound.
    """

    __slots__ = ("_day_first", "_latest", "_latest_year", "_tz", "timezone")

    def __init__(
        self,
        timezone: str = "Asia/Dubai",
        day_first: bool = True,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        try:
            self._tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {timezone!r}") from exc
        self.timezone = timezone
        self._day_first = day_first
        current = (now or (lambda: datetime.now(UTC)))()
        if current.tzinfo is None:
            current = current.replace(tzinfo=UTC)
        self._latest = current.astimezone(UTC) + timedelta(days=1)
        self._latest_year = self._latest.year

    # -- public -------------------------------------------------------------------------

    def parse(self, raw: str) -> datetime:
        """Aware UTC datetime, or RowError with the reason."""
        s = raw
        # Trimming only ever removes non-alphanumeric characters: skip it when both ends
        # are alphanumeric (the usual case).
        if not (s[:1].isalnum() and s[-1:].isalnum()):
            s = s.strip().strip(_TRIM_CHARS).strip()
        fast = self._parse_fast(s, raw)
        if fast is not None:
            return fast
        return self._parse_stripped(s, raw)

    # -- general parser (reference for the fast path) ------------------------------------

    def _parse_general(self, raw: str) -> datetime:
        return self._parse_stripped(raw.strip().strip(_TRIM_CHARS).strip(), raw)

    def _parse_stripped(self, s: str, raw: str) -> datetime:
        if not s:
            raise RowError("timestamp is empty")
        if len(s) > 64:
            raise RowError(f"unrecognised timestamp {_show(raw)}")
        m = _TS_YMD_RE.fullmatch(s)
        if m is not None:
            y, mo, d = int(m["y"]), int(m["m"]), int(m["d"])
        else:
            m = _TS_DMY_RE.fullmatch(s)
            if m is None:
                if _TS_DATE_ONLY_RE.fullmatch(s):
                    raise RowError(f"timestamp {_show(raw)} has no time of day")
                raise RowError(f"unrecognised timestamp {_show(raw)}")
            a, b, y = int(m["a"]), int(m["b"]), int(m["y"])
            d, mo = (a, b) if self._day_first else (b, a)
        hour = int(m["H"])
        ap = m["AP"]
        if ap is not None:
            if not 1 <= hour <= 12:
                raise RowError(f"hour out of range for AM/PM in timestamp {_show(raw)}")
            hour = hour % 12 + (12 if ap in "Pp" else 0)
        sec = m["S"]
        frac = m["F"]
        micro = int(frac[:6].ljust(6, "0")) if frac else 0
        zone = m["Z"]
        return self._finish(
            raw,
            y,
            mo,
            d,
            hour,
            int(m["M"]),
            int(sec) if sec else 0,
            micro,
            _zone_offset(zone) if zone else None,
        )

    # -- fast path: fixed-width common forms ------------------------------------------

    def _parse_fast(self, s: str, raw: str) -> datetime | None:
        """The dominant fixed-width forms; None → use the general parser.

        2023-11-13T09:34:56Z, 2023-11-13 09:34[:56], 13-11-2023 14:00[:05] (also with '/'
        or '.' in a day-first/month-first date). The shape is checked by one regex (ASCII
        digits only), then C ``datetime.fromisoformat`` does the arithmetic. Any doubt (an
        invalid day, hour 24, out of bounds) defers to the general parser so that errors
        are reported identically.
        """
        if _TS_FAST_Z_RE.fullmatch(s) is not None:
            if s[11:13] > "23":
                return None
            try:
                value = datetime.fromisoformat(s)
            except ValueError:
                return None
            if value.year < _MIN_YEAR or value > self._latest:
                return None
            return value
        if _TS_FAST_YMD_RE.fullmatch(s) is not None:
            iso = s
        elif _TS_FAST_DMY_RE.fullmatch(s) is not None:
            if self._day_first:
                iso = f"{s[6:10]}-{s[3:5]}-{s[0:2]}T{s[11:]}"
            else:
                iso = f"{s[6:10]}-{s[0:2]}-{s[3:5]}T{s[11:]}"
        else:
            return None
        if s[11:13] > "23":
            return None
        try:
            naive = datetime.fromisoformat(iso)
        except ValueError:
            return None
        if naive.year < _MIN_YEAR or naive.year > self._latest_year + 1:
            return None
        # Local wall time minus the zone's offset at that wall time (fold=0, as in the
        # general parser): fromisoformat + subtraction is much cheaper than
        # replace(tzinfo=...).astimezone(UTC) and gives the same instant.
        offset = self._tz.utcoffset(naive)
        if offset is None:
            return None
        value = datetime.fromisoformat(iso + "+00:00") - offset
        if value > self._latest:
            return None
        return value

    # -- shared validation and conversion -------------------------------------------------

    def _finish(
        self,
        raw: str,
        y: int,
        mo: int,
        d: int,
        h: int,
        mi: int,
        sec: int,
        micro: int,
        tz: timezone | None,
    ) -> datetime:
        if y < _MIN_YEAR:
            raise RowError(f"timestamp {_show(raw)} is before {_MIN_YEAR}")
        if y > self._latest_year + 1:
            raise RowError(f"timestamp {_show(raw)} is more than a day in the future")
        try:
            # fold=0: ambiguous/non-existent local times take the pre-transition offset.
            value = datetime(y, mo, d, h, mi, sec, micro, self._tz if tz is None else tz)
            if tz is not UTC:
                value = value.astimezone(UTC)
        except ValueError:
            raise RowError(f"invalid date or time in timestamp {_show(raw)}") from None
        if value > self._latest:
            raise RowError(f"timestamp {_show(raw)} is more than a day in the future")
        return value


# ---------------------------------------------------------------------------------------
# Card ids and comments
# ---------------------------------------------------------------------------------------


def normalise_card_id(raw: str | None) -> str:
    """Trimmed, unquoted card id matching ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$, else RowError."""
    if raw is None:
        raise RowError("card id is missing")
    s = raw.strip(_TRIM_CHARS)
    if CARD_ID_RE.fullmatch(s) is not None and s.isascii():
        return s
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
    return s


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


# ---------------------------------------------------------------------------------------
# Event types
# ---------------------------------------------------------------------------------------

_NON_ALNUM_RE = re.compile(r"[^a-z0-9]+")
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


# ---------------------------------------------------------------------------------------
# Headers
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HeaderMap:
    """0-based column indexes of the fields in a file's header row."""

    card_id: int
    timestamp: int
    phone: int | None
    comment: int | None
    row_id: int | None
    status: int | None
    width: int


# Normalised header (lower-case, only [a-z0-9]) → field. Two tiers: a column with a
# strong name wins over one with a weak name; within a tier, the first column wins.
# 'id' alone is the partner's row id, never the card id.
_HEADER_SYNONYMS: dict[str, tuple[str, str]] = {
    # field: (strong names, weak names)
    "card_id": (
        "cardid cardidentifier cardref cardreference cardcode",
        "cardnumber cardno cardnum card",
    ),
    "timestamp": (
        "timestamp datetime dateandtime datentime eventtime eventdatetime eventtimestamp "
        "statustime statusdatetime occurredat",
        "date time eventdate statusdate updatedat",
    ),
    "phone": (
        "usercontact usermobile userphone phone phonenumber phoneno mobile mobilenumber "
        "mobileno contactnumber contactno msisdn telephone customermobile customerphone "
        "customercontact",
        "contact tel mobilephone",
    ),
    "comment": (
        "comment comments reason remarks remark notes note",
        "description exceptionreason statusreason",
    ),
    "row_id": ("id rowid ref reference recordid refno", "no sno srno serial rowno"),
    "status": ("status event eventtype eventstatus deliverystatus", "statuscode type"),
}
_HEADER_STRONG: dict[str, str] = {
    name: field for field, (strong, _) in _HEADER_SYNONYMS.items() for name in strong.split()
}
_HEADER_WEAK: dict[str, str] = {
    name: field for field, (_, weak) in _HEADER_SYNONYMS.items() for name in weak.split()
}
_HEADER_FIELDS = ("card_id", "timestamp", "phone", "comment", "row_id", "status")


def normalise_header(name: str) -> str:
    """'  Card_ID ' → 'cardid': lower-case, only [a-z0-9] kept (drops BOM remnants, spaces)."""
    return _NON_ALNUM_RE.sub("", name.lower())


def map_headers(header: Sequence[str]) -> HeaderMap:
    """Column indexes of the known fields; FileRejected without card id and timestamp."""
    strong: dict[str, int] = {}
    weak: dict[str, int] = {}
    for index, name in enumerate(header):
        key = normalise_header(name or "")
        field = _HEADER_STRONG.get(key)
        if field is not None:
            strong.setdefault(field, index)
            continue
        field = _HEADER_WEAK.get(key)
        if field is not None:
            weak.setdefault(field, index)
    found = {f: strong.get(f, weak.get(f)) for f in _HEADER_FIELDS}
    card_id, timestamp = found["card_id"], found["timestamp"]
    if card_id is None or timestamp is None:
        missing = [
            label for label, idx in (("card id", card_id), ("timestamp", timestamp)) if idx is None
        ]
        shown = ", ".join(_show(h or "")[:32] for h in list(header)[:12])
        if len(header) > 12:
            shown += f", … ({len(header)} columns)"
        raise FileRejected(
            f"missing required column(s): {', '.join(missing)}; found: {shown or '(no columns)'}"
        )
    return HeaderMap(
        card_id=card_id,
        timestamp=timestamp,
        phone=found["phone"],
        comment=found["comment"],
        row_id=found["row_id"],
        status=found["status"],
        width=len(header),
    )
