"""Phone numbers → E.164 (README "Domain rules"), with a fast path property-tested against
phonenumbers."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberFormat

from cardstatus.model import mask_phone
from cardstatus.normalise._text import _TRIM_CHARS


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
    """E.164 phone for a partner's raw value in its region (README "Domain rules"); never raises.

    Absent/blank → Phone(None, None); refused → Phone(None, <warning without the number>).
    Results are cached (bounded) on (raw, region); see ``_normalise_phone_reference``.
    """
    if not raw:
        return _PHONE_ABSENT
    return _normalise_phone_cached(raw, region.upper())
