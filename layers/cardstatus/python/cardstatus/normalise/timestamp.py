"""Timestamps → aware UTC datetimes (README "Partner files and reports"), with a fast path
for the dominant forms."""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cardstatus.errors import DateOrderEvidence
from cardstatus.model import RowError
from cardstatus.normalise._text import _TRIM_CHARS, _show

_TS_TIME = (
    r"(?P<H>[0-9]{1,2}):(?P<M>[0-9]{2})(?::(?P<S>[0-9]{2})(?:[.,](?P<F>[0-9]{1,9}))?)?"
    r"(?:[ \t]*(?P<AP>[AaPp])\.?[ \t]?[Mm]\.?)?"
    r"(?:[ \t]*(?P<Z>[Zz]|(?:UTC|GMT|utc|gmt)(?:[ \t]*[+-][0-9]{1,2}(?::?[0-9]{2})?)?"
    r"|[+-][0-9]{2}(?::?[0-9]{2})?))?"
)
# Digits partners write in Arabic: Arabic-Indic (U+0660-0669) and Eastern Arabic-Indic
# (U+06F0-06F9); also the Arabic comma and the full-width colon a spreadsheet may leave.
_DIGITS = str.maketrans(
    {
        **{chr(0x0660 + i): str(i) for i in range(10)},
        **{chr(0x06F0 + i): str(i) for i in range(10)},
        "\u060c": ",",
        "\uff1a": ":",
    }
)
# Java's ZonedDateTime: 2024-06-03T10:00:00+04:00[Asia/Dubai]; the zone id in brackets.
_TS_ZONE_ID_RE = re.compile(
    r"(?P<ts>.*?)[ \t]*\[(?P<zone>[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+)*)\]"
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
# English month names or abbreviations, any case (README "Partner files and reports"):
# 05-Apr-2024 10:00 AM, 3 Apr 2024 9:15 AM, Apr 3, 2024 14:30, April 3, 2024 4:50 PM,
# 2024-Apr-03 16:45. An optional leading weekday ("Wed, 3 Apr 2024 …") is ignored, not checked.
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            "jan january",
            "feb february",
            "mar march",
            "apr april",
            "may",
            "jun june",
            "jul july",
            "aug august",
            "sep sept september",
            "oct october",
            "nov november",
            "dec december",
        ),
        start=1,
    )
    for name in names.split()
}
_TS_WEEKDAY = r"(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]{0,6}\.?,?[ \t]+)?"
_TS_DAY = r"(?P<d>[0-9]{1,2})(?:st|nd|rd|th)?"
_TS_MON = r"(?P<mon>[a-z]{3,9})\.?"
_TS_MONTH_DATES = (
    _TS_WEEKDAY + _TS_DAY + r"[-/. ]+" + _TS_MON + r"[-/., ]+(?P<y>[0-9]{4})",
    _TS_WEEKDAY + _TS_MON + r"[-/. ]+" + _TS_DAY + r"[-/., ]+(?P<y>[0-9]{4})",
    r"(?P<y>[0-9]{4})[-/. ]+" + _TS_MON + r"[-/. ]+" + _TS_DAY,
)
_TS_MONTH_RES = tuple(
    re.compile(date + r"(?:[Tt]|[ \t]+|,[ \t]*)" + _TS_TIME, re.IGNORECASE)
    for date in _TS_MONTH_DATES
)
_TS_MONTH_DATE_ONLY_RES = tuple(re.compile(date, re.IGNORECASE) for date in _TS_MONTH_DATES)
_MIN_YEAR = 2000
_MAX_OFFSET_HOURS = 18


class _Parts(NamedTuple):
    """The fields of a timestamp as written; tz None means the partner's local time."""

    year: int
    month: int
    day: int
    hour: int
    minute: int
    second: int
    micro: int
    tz: timezone | None


def _zone_offset(z: str) -> timezone:
    """'Z', 'UTC', 'GMT', '+04', '+0400', '+04:00', 'GMT+4', 'UTC+04:00', 'UTC -3:30'."""
    if z[:3].upper() in ("UTC", "GMT"):
        z = z[3:].strip(" \t")
    if z in ("Z", "z", ""):
        return UTC
    sign = -1 if z[0] == "-" else 1
    hh, colon, mm = z[1:].partition(":")
    if not colon:
        hh, mm = (hh[:-2], hh[-2:]) if len(hh) > 2 else (hh, "")
    hours = int(hh)
    minutes = int(mm) if mm else 0
    if hours > _MAX_OFFSET_HOURS or minutes > 59:
        raise RowError(f"timestamp offset {z!r} out of range")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


class TimestampParser:
    """Parses one partner's timestamps to aware UTC datetimes (README "Partner files and reports").

    Create one per file: ``now`` is read once, here, for the "not more than a day in the
    future" bound.
    """

    __slots__ = ("_day_first", "_latest", "_latest_year", "_tz", "timezone")

    def __init__(
        self,
        timezone: str | tzinfo = "Asia/Dubai",
        day_first: bool = True,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        """``timezone``: an IANA name, or a tzinfo (a header that names a fixed offset)."""
        if isinstance(timezone, tzinfo):
            self._tz: tzinfo = timezone
        else:
            try:
                self._tz = ZoneInfo(timezone)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown timezone {timezone!r}") from exc
        self.timezone = str(timezone)
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
        if not s.isascii():
            s = s.translate(_DIGITS)
        zone_id: tzinfo | None = None
        if s[-1] == "]":
            bracketed = _TS_ZONE_ID_RE.fullmatch(s)
            if bracketed is not None:
                s = bracketed["ts"]
                zone_id = _zone_named(bracketed["zone"], raw)
        m, y, mo, d = self._date(s, raw)
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
        if zone_id is not None and not zone:  # no offset written: the bracketed zone's
            return self._finish(
                raw,
                _Parts(y, mo, d, hour, int(m["M"]), int(sec) if sec else 0, micro, None),
                zone_id,
            )
        return self._finish(
            raw,
            _Parts(
                y,
                mo,
                d,
                hour,
                int(m["M"]),
                int(sec) if sec else 0,
                micro,
                _zone_offset(zone) if zone else None,
            ),
        )

    def _date(self, s: str, raw: str) -> tuple[re.Match[str], int, int, int]:
        """The layout's match and the date as written (year, month, day)."""
        m = _TS_YMD_RE.fullmatch(s)
        if m is not None:
            return m, int(m["y"]), int(m["m"]), int(m["d"])
        m = _TS_DMY_RE.fullmatch(s)
        if m is not None:
            a, b, y = int(m["a"]), int(m["b"]), int(m["y"])
            day, month = (a, b) if self._day_first else (b, a)
            if month > 12 and _valid_date(y, day, month):  # valid only in the other order
                order = "month-first" if self._day_first else "day-first"
                raise DateOrderEvidence(
                    f"date in timestamp {_show(raw)} is valid only {order}", raw
                )
            return m, y, month, day
        for month_re in _TS_MONTH_RES:
            m = month_re.fullmatch(s)
            if m is not None:
                named = _MONTHS.get(m["mon"].lower())
                if named is None:
                    break
                return m, int(m["y"]), named, int(m["d"])
        if _TS_DATE_ONLY_RE.fullmatch(s) or any(r.fullmatch(s) for r in _TS_MONTH_DATE_ONLY_RES):
            raise RowError(f"timestamp {_show(raw)} has no time of day")
        raise RowError(f"unrecognised timestamp {_show(raw)}")

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

    def _finish(self, raw: str, p: _Parts, local: tzinfo | None = None) -> datetime:
        y = p.year
        if y < _MIN_YEAR:
            raise RowError(f"timestamp {_show(raw)} is before {_MIN_YEAR}")
        if y > self._latest_year + 1:
            raise RowError(f"timestamp {_show(raw)} is more than a day in the future")
        try:
            # fold=0: ambiguous/non-existent local times take the pre-transition offset.
            tz = p.tz
            value = datetime(
                y,
                p.month,
                p.day,
                p.hour,
                p.minute,
                p.second,
                p.micro,
                (local or self._tz) if tz is None else tz,
            )
            if tz is not UTC:
                value = value.astimezone(UTC)
        except ValueError:
            raise RowError(f"invalid date or time in timestamp {_show(raw)}") from None
        if value > self._latest:
            raise RowError(f"timestamp {_show(raw)} is more than a day in the future")
        return value


def _zone_named(name: str, raw: str) -> tzinfo:
    """The zone of a Java-style ``[Asia/Dubai]`` suffix; RowError when unknown."""
    if name.upper() in ("UTC", "Z", "GMT"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise RowError(f"unknown time zone {name!r} in timestamp {_show(raw)}") from None


# Zones a header may name in brackets ("Timestamp (UTC)", "Time (GST)", "Date (UTC+4)").
_HEADER_ZONE_ABBREVIATIONS: dict[str, str] = {
    "UTC": "UTC",
    "GMT": "UTC",
    "Z": "UTC",
    "GST": "Asia/Dubai",  # Gulf Standard Time, UTC+4
}
_HEADER_OFFSET_RE = re.compile(r"(?:UTC|GMT)?[ \t]*[+-][0-9]{1,2}(?::?[0-9]{2})?", re.IGNORECASE)
_HEADER_ZONE_LIKE_RE = re.compile(r"[A-Z]{2,5}|(?:UTC|GMT)[ \t]*[+-].*")


def header_zone(note: str) -> tzinfo | None:
    """The zone a header's bracketed note names ('UTC', 'GST', 'UTC+4', 'Asia/Dubai'); None
    when the note is not a zone ('dd/mm/yyyy', 'local'); ValueError for a zone-like note
    that is not known ('EST': abbreviations are ambiguous, so only these few are read)."""
    text = note.strip()
    known = _HEADER_ZONE_ABBREVIATIONS.get(text.upper())
    if known is not None:
        return UTC if known == "UTC" else ZoneInfo(known)
    if _HEADER_OFFSET_RE.fullmatch(text):
        try:
            return _zone_offset(text.replace(" ", ""))
        except (RowError, ValueError):
            raise ValueError(f"time zone {note!r} is out of range") from None
    if "/" in text:
        try:
            return ZoneInfo(text)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    if _HEADER_ZONE_LIKE_RE.fullmatch(text):
        raise ValueError(
            f"time zone {note!r} is not one this service reads; write UTC, GST, UTC+04:00 or "
            "a zone name such as Asia/Dubai"
        )
    return None


def _valid_date(year: int, month: int, day: int) -> bool:
    """Whether (year, month, day) is a calendar date."""
    return 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]
