"""A file's header row → column indexes of the fields (README "Partner files and reports")."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import tzinfo

from cardstatus.model import FileRejected
from cardstatus.normalise._text import _NON_ALNUM_RE, _show
from cardstatus.normalise.timestamp import header_zone


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
    # Separate date and time columns ("Date", "Time"): ``timestamp`` is the date column and
    # ``time`` the time-of-day column; the row's timestamp is the two cells joined.
    time: int | None = None
    # The zone the timestamp header names ("Timestamp (UTC)", "Time (GST)"): it overrides the
    # partner's zone for that column. None: the partner's zone.
    timestamp_zone: tzinfo | None = None


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


# Spaces a spreadsheet or a web page leaves in a header cell that NFKC does not map to ' '.
_HEADER_SPACES = str.maketrans(
    dict.fromkeys("\u00a0\u2007\u202f\u200b\u200c\u200d\u2060\ufeff", " ")
)


def normalise_header(name: str) -> str:
    """'  Card_ID ' → 'cardid': lower-case, only [a-z0-9] kept (drops BOM remnants, spaces).

    Compared after Unicode normalisation (NFKC: full-width letters are plain letters), with
    non-breaking and zero-width spaces treated as spaces.
    """
    if not name.isascii():
        name = unicodedata.normalize("NFKC", name.translate(_HEADER_SPACES))
    return _NON_ALNUM_RE.sub("", name.lower())


# A header cell with a bracketed note: "Timestamp (UTC)", "Card ID [16 chars]".
_HEADER_NOTE_RE = re.compile(r"(?s)(?P<name>.*?)[ \t]*[(\[](?P<note>[^()\[\]]*)[)\]][ \t]*")
# Columns that hold only a date or only a time of day: combined when both are present and
# no column holds both ("Date", "Time" → "Date Time"). "Event time" and "Status time" are full
# timestamps (strong names), never a time of day alone.
_DATE_ONLY = frozenset(["date", "eventdate", "statusdate", "deliverydate", "pickupdate"])
_TIME_ONLY = frozenset(["time", "deliverytime", "pickuptime"])


def _header_key(name: str) -> tuple[str, str | None]:
    """(normalised name, bracketed note or None): the note is dropped when the whole cell is
    not a known name but the part before the brackets is ("Timestamp (UTC)")."""
    key = normalise_header(name)
    if key in _HEADER_STRONG or key in _HEADER_WEAK or ("(" not in name and "[" not in name):
        return key, None
    m = _HEADER_NOTE_RE.fullmatch(name)
    if m is None:
        return key, None
    base = normalise_header(m["name"])
    return (base, m["note"]) if base in _HEADER_STRONG or base in _HEADER_WEAK else (key, None)


def _find_columns(header: Sequence[str]) -> dict[str, int | None]:
    strong: dict[str, int] = {}
    weak: dict[str, int] = {}
    dates: list[int] = []
    times: list[int] = []
    for index, name in enumerate(header):
        key, _note = _header_key(name or "")
        if key in _DATE_ONLY:
            dates.append(index)
        elif key in _TIME_ONLY:
            times.append(index)
        field = _HEADER_STRONG.get(key)
        if field is not None:
            strong.setdefault(field, index)
            continue
        field = _HEADER_WEAK.get(key)
        if field is not None:
            weak.setdefault(field, index)
    found: dict[str, int | None] = {f: strong.get(f, weak.get(f)) for f in _HEADER_FIELDS}
    found["time"] = None
    ts = found["timestamp"]
    if dates and times and (ts is None or ts in dates or ts in times):
        found["timestamp"], found["time"] = dates[0], times[0]
    return found


def _timestamp_zone(header: Sequence[str], columns: Sequence[int | None]) -> tzinfo | None:
    """The zone the timestamp (or date/time) header names; FileRejected for an unknown one."""
    for index in columns:
        if index is None:
            continue
        _key, note = _header_key(header[index] or "")
        if note is None:
            continue
        try:
            zone = header_zone(note)
        except ValueError as exc:
            raise FileRejected(f"header {_show(header[index])}: {exc}") from None
        if zone is not None:
            return zone
    return None


_DATA_DIGITS = re.compile(r"\d.*\d.*\d")


def looks_like_data(record: Sequence[str]) -> bool:
    """A record that is data, not column names: a cell with 3+ digits (an id, a date, a
    phone, a house number) or an e-mail address."""
    return any(_DATA_DIGITS.search(cell or "") or "@" in (cell or "") for cell in record)


def map_headers(header: Sequence[str]) -> HeaderMap:
    """Column indexes of the known fields; FileRejected without card id and timestamp."""
    found = _find_columns(header)
    card_id, timestamp = found["card_id"], found["timestamp"]
    if card_id is None or timestamp is None:
        missing = [
            label for label, idx in (("card id", card_id), ("timestamp", timestamp)) if idx is None
        ]
        if looks_like_data(header):
            # A file without a header row: its first record is a customer's data (name,
            # address, phone, e-mail), which must not reach a reason (issue 18 N12).
            raise FileRejected(
                f"missing required column(s): {', '.join(missing)}; no header row found: the "
                f"first row looks like data ({len(header)} columns), so it is not shown; a "
                "file needs a header row naming its columns"
            )
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
        time=found["time"],
        timestamp_zone=_timestamp_zone(header, (timestamp, found["time"])),
    )


HEADER_SEARCH_RECORDS = 20


def find_header(records: Iterator[tuple[int, list[str]]]) -> tuple[HeaderMap, list[int]]:
    """The header among the first 20 non-blank records, and the lines skipped before it.

    Portal exports put title lines ("Returns report", "Generated on …") above the header:
    the header is the first non-blank record that maps a card-id and a timestamp column.
    Consumes ``records`` up to and including the header. FileRejected when there is none;
    the message shows the record that came closest (else the first one).
    """
    skipped: list[int] = []
    closest: Sequence[str] | None = None
    closest_score = -1
    after_closest = 0  # non-blank records after the closest candidate: its data rows
    for line, record in records:
        if not record or not any(cell.strip() for cell in record):
            continue  # blank lines are neither a header nor a title
        found = _find_columns(record)
        if found["card_id"] is not None and found["timestamp"] is not None:
            return map_headers(record), skipped
        score = sum(v is not None for v in found.values())
        if score > closest_score:
            closest, closest_score, after_closest = record, score, 0
        else:
            after_closest += 1
        skipped.append(line)
        if len(skipped) >= HEADER_SEARCH_RECORDS:
            break
    if closest is None:
        raise FileRejected("file is empty: no header row")
    try:
        map_headers(closest)  # raises with the missing columns
    except FileRejected as exc:
        raise FileRejected(str(exc), rows_read=after_closest) from None
    raise AssertionError("unreachable")  # pragma: no cover
