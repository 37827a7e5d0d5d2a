"""Table-driven unit tests for cardstatus.normalise (README "Partner files and reports"):
every accepted and rejected form."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

import pytest
from phonenumbers import PhoneMetadata, PhoneNumberDesc, PhoneNumberType, phonenumberutil

from cardstatus.config import DEFAULT_REASON_KEYWORDS
from cardstatus.model import CardStatus, FileRejected, RowError
from cardstatus.normalise import (
    COMMENT_MAX_CHARS,
    HeaderMap,
    Phone,
    StatusVocabulary,
    TimestampParser,
    _normalise_phone_reference,
    _normalise_phone_uncached,
    _phone_fast,
    classify_reason,
    clean_comment,
    event_type_from_filename,
    event_type_from_value,
    map_headers,
    normalise_card_id,
    normalise_phone,
    vocabulary,
)
from cardstatus.normalise import phone as phone_module
from fixture_paths import PARTNER_SAMPLES

SAMPLES = PARTNER_SAMPLES
NOW = datetime(2024, 1, 1, tzinfo=UTC)

# --------------------------------------------------------------------------- phones

PHONE_ACCEPTED_AE = [
    # national, trunk-prefixed, country-prefixed
    ("585949014", "+971585949014"),
    ("0585949014", "+971585949014"),
    ("971585949014", "+971585949014"),
    ("+971585949014", "+971585949014"),
    ("00971585949014", "+971585949014"),
    ("971534534534", "+971534534534"),  # sample: Returned.csv
    ("534534534", "+971534534534"),  # sample: Pickup.csv
    # spaces, dashes, brackets, dots
    ("+971 58 594 9014", "+971585949014"),
    ("+971-58-594-9014", "+971585949014"),
    ("058-594-9014", "+971585949014"),
    ("(058) 594-9014", "+971585949014"),
    ("(+971) 58 594 9014", "+971585949014"),
    ("058.594.9014", "+971585949014"),
    ("00 971 58 594 9014", "+971585949014"),
    ("058\u2013594\u20139014", "+971585949014"),  # en dash from a word processor
    # literal quotes: csv yields '"0585949014"' for the sample's """0585949014"""
    ('"0585949014"', "+971585949014"),
    ("'0585949014'", "+971585949014"),
    ('"""0585949014"""', "+971585949014"),
    ("\u201c0585949014\u201d", "+971585949014"),
    ('="0585949014"', "+971585949014"),  # spreadsheet text-formula wrapper
    ("  0585949014  ", "+971585949014"),
    ("0585949014\u00a0", "+971585949014"),
    ("\ufeff0585949014", "+971585949014"),
    # non-ASCII decimal digits
    ("\u0660\u0665\u0668\u0665\u0669\u0664\u0669\u0660\u0661\u0664", "+971585949014"),
    # landline and toll-free in AE
    ("042345678", "+97142345678"),
    ("42345678", "+97142345678"),
    ("97142345678", "+97142345678"),
    # an explicit international number of another country is exact
    ("+44 20 7946 0958", "+442079460958"),
    ("0044 20 7946 0958", "+442079460958"),
]


@pytest.mark.parametrize(("raw", "e164"), PHONE_ACCEPTED_AE)
def test_phone_accepted_ae(raw: str, e164: str) -> None:
    assert normalise_phone(raw) == Phone(e164, None)
    assert normalise_phone(raw, "AE") == Phone(e164, None)
    assert _normalise_phone_reference(raw, "AE") == Phone(e164, None)


@pytest.mark.parametrize("raw", [None, "", "   ", '""', "''", '""""""', "-", "N/A", "null", "#N/A"])
def test_phone_absent(raw: str | None) -> None:
    assert normalise_phone(raw) == Phone(None, None)
    assert _normalise_phone_reference(raw) == Phone(None, None)


PHONE_REFUSED_AE = [
    # (raw, substring expected in the warning)
    ("9.7E+11", "scientific notation"),
    ("9.71585E+11", "scientific notation"),
    ("9.71585e11", "scientific notation"),
    ("5,85949E+08", "scientific notation"),
    ('"9.71585E+11"', "scientific notation"),
    ("585949014.0", "decimal number"),
    ("abc", "letters"),
    ("058594abc9014", "letters"),  # phonenumbers alone would read letters as keypad digits
    ("0585949014 ext 5", "letters"),
    ("tel:+971585949014", "letters"),
    ("058 594 9014 #", "unexpected characters"),
    ("0585949014;", "unexpected characters"),
    ("0585949014 / 0545576586", "unexpected characters"),
    ("971+585949014", "'+' that is not at the start"),
    ("+", "no digits"),
    ("()", "no digits"),
    ("1" * 41, "too long"),
    ("12", "not a valid number for region AE"),
    ("12345", "not a valid number for region AE"),
    ("05859490141", "not a valid number for region AE"),  # one digit too many
    ("058594901", "not a valid number for region AE"),  # one digit too few
    ("1234567890123456789", "not a valid number for region AE"),
    ("+971 12", "not a valid number for region AE"),
    # another country's code without '+' is not guessed (valid as +966 501234567)
    ("966501234567", "not a valid number for region AE"),
]


@pytest.mark.parametrize(("raw", "reason"), PHONE_REFUSED_AE)
def test_phone_refused_ae(raw: str, reason: str) -> None:
    result = normalise_phone(raw)
    assert result.e164 is None
    assert result.warning is not None
    assert reason in result.warning
    assert "left unset" in result.warning
    assert _normalise_phone_reference(raw) == result


def test_phone_warning_masks_the_number() -> None:
    result = normalise_phone("05859490141")
    assert result.warning is not None
    assert "*******0141" in result.warning
    assert "5859490141" not in result.warning
    assert "585949" not in result.warning


PHONE_OTHER_REGIONS = [
    ("SA", "0501234567", "+966501234567"),
    ("SA", "501234567", "+966501234567"),
    ("SA", "966501234567", "+966501234567"),
    ("SA", "+966 50 123 4567", "+966501234567"),
    ("SA", "00966501234567", "+966501234567"),
    ("SA", "0585949014", "+966585949014"),  # the same digits mean a Saudi number in SA
    ("SA", "+971585949014", "+971585949014"),
    ("GB", "07911 123456", "+447911123456"),
    ("GB", "7911123456", "+447911123456"),
    ("GB", "447911123456", "+447911123456"),
    ("GB", "+44 7911 123456", "+447911123456"),
    ("GB", "00447911123456", "+447911123456"),
    ("GB", "020 7946 0958", "+442079460958"),
    ("gb", "07911123456", "+447911123456"),  # region case-insensitive
    ("US", "(212) 555-0123", "+12125550123"),
    ("US", "12125550123", "+12125550123"),
    ("IN", "09876543210", "+919876543210"),
    ("IN", "919876543210", "+919876543210"),
    ("QA", "33123456", "+97433123456"),  # no national prefix in QA
    ("QA", "97433123456", "+97433123456"),
]


@pytest.mark.parametrize(("region", "raw", "e164"), PHONE_OTHER_REGIONS)
def test_phone_other_regions(region: str, raw: str, e164: str) -> None:
    assert normalise_phone(raw, region) == Phone(e164, None)
    assert _normalise_phone_reference(raw, region) == Phone(e164, None)


@pytest.mark.parametrize(
    ("region", "raw"),
    [
        ("GB", "585949014"),  # a UAE national number is not a GB number
        ("GB", "0585949014"),
        ("SA", "971585949014"),  # UAE code without '+' is not guessed in SA
        ("US", "0585949014"),
        ("XX", "0585949014"),  # unknown region: only '+' numbers could be read
    ],
)
def test_phone_invalid_in_other_regions(region: str, raw: str) -> None:
    result = normalise_phone(raw, region)
    assert result.e164 is None
    assert result.warning is not None
    assert "not a valid number" in result.warning
    assert _normalise_phone_reference(raw, region) == result


def test_phone_unknown_region_still_reads_international() -> None:
    assert normalise_phone("+971585949014", "XX") == Phone("+971585949014", None)


def test_phone_fast_path_is_used_for_the_dominant_forms() -> None:
    # If these return None the fast path silently degraded to the slow path.
    assert _phone_fast(False, "585949014", "AE") == "+971585949014"
    assert _phone_fast(False, "0585949014", "AE") == "+971585949014"
    assert _phone_fast(False, "971585949014", "AE") == "+971585949014"
    assert _phone_fast(True, "971585949014", "AE") == "+971585949014"
    assert _phone_fast(False, "0501234567", "SA") == "+966501234567"
    # … and defers when it cannot be certain.
    assert _phone_fast(False, "00971585949014", "AE") is None
    assert _phone_fast(True, "442079460958", "AE") is None
    assert _phone_fast(False, "05859490141", "AE") is None
    assert _phone_fast(False, "07911123456", "GB") is None  # +44 is shared by GB/GG/IM/JE


def test_phone_dominant_forms_are_answered_without_phonenumbers_parse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # cardstatus.normalise: the hot paths (one call per row) have fast paths for the dominant
    # forms; these never reach phonenumbers' parser, however _normalise_phone_uncached gets them.
    def no_parse(*args: object, **kwargs: object) -> object:
        raise AssertionError(f"phonenumbers.parse{args} on the fast path")

    monkeypatch.setattr(phone_module.phonenumbers, "parse", no_parse)
    for raw in ("585949014", "0585949014", "971585949014", "+971585949014", "058 594 9014"):
        assert _normalise_phone_uncached(raw, "AE") == Phone("+971585949014", None)
    assert _normalise_phone_uncached("0501234567", "SA") == Phone("+966501234567", None)


def _desc(pattern: str | None, lengths: tuple[int, ...] = ()) -> PhoneNumberDesc:
    return PhoneNumberDesc(national_number_pattern=pattern, possible_length=lengths)


def test_phone_region_fast_path_validity_is_phonenumbers_own_rule() -> None:
    # _RegionFastPath.valid replicates phonenumbers' _number_type_helper(nsn) != UNKNOWN:
    # a type matches when the length is one of its possible lengths (any length when it lists
    # none; no number when it lists -1) and its pattern matches in full.
    md = PhoneMetadata(
        "ZZ",
        country_code=999,
        general_desc=_desc(r"[1-9]\d{0,7}", (1, 6, 7, 8)),
        mobile=_desc(r"5\d{5,7}", (8,)),  # the pattern admits 6-8 digits, the lengths only 8
        fixed_line=_desc(r"[1-4]\d{5,7}"),  # no lengths of its own: the pattern decides
        toll_free=_desc(r"8\d{5,7}", (-1,)),  # -1: no toll-free numbers
        uan=_desc("7", (1,)),  # one-digit numbers
        voip=_desc(None),
        register=False,
    )
    fast = phone_module._RegionFastPath(md)
    numbers = [
        first + rest * (length - 1)
        for first in "0123456789"
        for rest in "03"
        for length in range(1, 10)
    ]
    for nsn in numbers:
        expected = phonenumberutil._number_type_helper(nsn, md) != PhoneNumberType.UNKNOWN
        assert fast.valid(nsn) is expected, nsn
    assert fast.valid("51234567") and not fast.valid("5123456")  # lengths, not the pattern
    assert fast.valid("1234567") and fast.valid("7") and not fast.valid("81234567")


def test_phone_cache_returns_same_result_for_repeated_calls() -> None:
    first = normalise_phone("0545576586")
    assert normalise_phone("0545576586") is first
    assert normalise_phone("0545576586", "SA") == Phone("+966545576586", None)


# --------------------------------------------------------------------------- timestamps

TS_ACCEPTED_DUBAI = [
    # ISO with Z or offset: exact
    ("2023-11-13T09:34:56Z", "2023-11-13T09:34:56+00:00"),  # sample: Delivered.csv
    ("2023-11-14T12:34:56Z", "2023-11-14T12:34:56+00:00"),
    ("2023-11-13T09:34:56z", "2023-11-13T09:34:56+00:00"),
    ("2023-11-13 09:34:56Z", "2023-11-13T09:34:56+00:00"),
    ("2023-11-13T09:34:56 UTC", "2023-11-13T09:34:56+00:00"),
    ("2023-11-13T09:34:56+04:00", "2023-11-13T05:34:56+00:00"),
    ("2023-11-13T09:34:56+0400", "2023-11-13T05:34:56+00:00"),
    ("2023-11-13T09:34:56+04", "2023-11-13T05:34:56+00:00"),
    ("2023-11-13T09:34:56-05:30", "2023-11-13T15:04:56+00:00"),
    ("2023-11-13T09:34:56.123Z", "2023-11-13T09:34:56.123000+00:00"),
    ("2023-11-13T09:34:56,5Z", "2023-11-13T09:34:56.500000+00:00"),
    ("2023-11-13T09:34:56.123456789Z", "2023-11-13T09:34:56.123456+00:00"),
    ("2023-11-13T09:34Z", "2023-11-13T09:34:00+00:00"),
    ("2023-11-13T09:34:56.5+04:00", "2023-11-13T05:34:56.500000+00:00"),
    # ISO without offset: partner local time (Asia/Dubai = UTC+4, no DST)
    ("2023-11-13T09:34:56", "2023-11-13T05:34:56+00:00"),
    ("2023-11-13 09:34:56", "2023-11-13T05:34:56+00:00"),
    ("2023-11-13 09:34", "2023-11-13T05:34:00+00:00"),
    ("2023/11/13 09:34:56", "2023-11-13T05:34:56+00:00"),
    ("2023.11.13 09:34", "2023-11-13T05:34:00+00:00"),
    ("2023-1-3 9:05", "2023-01-03T05:05:00+00:00"),
    # day-first local forms
    ("13-11-2023 14:00", "2023-11-13T10:00:00+00:00"),  # sample: Delivery exceptions.csv
    ("13-11-2023 16:00", "2023-11-13T12:00:00+00:00"),
    ("13/11/2023 14:00", "2023-11-13T10:00:00+00:00"),
    ("13.11.2023 14:00", "2023-11-13T10:00:00+00:00"),
    ("13-11-2023 14:00:30", "2023-11-13T10:00:30+00:00"),
    ("13/11/2023 14:00:30", "2023-11-13T10:00:30+00:00"),
    ("3-1-2023 9:05", "2023-01-03T05:05:00+00:00"),
    ("13-11-2023T14:00", "2023-11-13T10:00:00+00:00"),
    ("13-11-2023, 14:00", "2023-11-13T10:00:00+00:00"),
    ("13-11-2023  14:00", "2023-11-13T10:00:00+00:00"),
    # 12-hour clock, with and without the space (samples: Pickup.csv, Returned.csv)
    ("12-11-2023 11:59 PM", "2023-11-12T19:59:00+00:00"),
    ("12-11-2023 3:45 AM", "2023-11-11T23:45:00+00:00"),
    ("13-11-2023 11:02 AM", "2023-11-13T07:02:00+00:00"),
    ("14-11-2023 12:00PM", "2023-11-14T08:00:00+00:00"),
    ("14-11-2023 12:00 AM", "2023-11-13T20:00:00+00:00"),  # 12 AM = 00
    ("14-11-2023 12:30am", "2023-11-13T20:30:00+00:00"),
    ("14-11-2023 1:15 p.m.", "2023-11-14T09:15:00+00:00"),
    ("14-11-2023 11:59:59 PM", "2023-11-14T19:59:59+00:00"),
    ("14/11/2023 01:05 pm", "2023-11-14T09:05:00+00:00"),
    # an explicit offset on a local layout is honoured
    ("13-11-2023 14:00 +00:00", "2023-11-13T14:00:00+00:00"),
    ("13-11-2023 14:00Z", "2023-11-13T14:00:00+00:00"),
    # surrounding whitespace and quotes
    ("  13-11-2023 14:00  ", "2023-11-13T10:00:00+00:00"),
    ('"13-11-2023 14:00"', "2023-11-13T10:00:00+00:00"),
    ("'2023-11-13T09:34:56Z'", "2023-11-13T09:34:56+00:00"),
    ("\ufeff13-11-2023 14:00\r", "2023-11-13T10:00:00+00:00"),
    # leap day, bounds
    ("29-02-2020 10:00", "2020-02-29T06:00:00+00:00"),
    ("2000-01-01T00:00:00Z", "2000-01-01T00:00:00+00:00"),
    ("2024-01-02T00:00:00Z", "2024-01-02T00:00:00+00:00"),  # exactly now + 1 day
]


@pytest.mark.parametrize(("raw", "iso"), TS_ACCEPTED_DUBAI)
def test_timestamp_accepted_dubai_day_first(raw: str, iso: str) -> None:
    parser = TimestampParser("Asia/Dubai", day_first=True, now=lambda: NOW)
    value = parser.parse(raw)
    assert value.isoformat() == iso
    assert value.tzinfo is UTC
    assert parser._parse_general(raw) == value


TS_REJECTED_DUBAI = [
    ("", "empty"),
    ("   ", "empty"),
    ('""', "empty"),
    ("garbage", "unrecognised"),
    ("13-11-2023", "no time of day"),
    ("2023-11-13", "no time of day"),
    ("13-11-23 14:00", "unrecognised"),  # two-digit year is not guessed
    ("13-11-2023 14", "unrecognised"),
    ("13-11-2023 14:00 XYZ", "unrecognised"),
    ("13-11/2023 14:00", "unrecognised"),  # mixed separators
    ("1700000000", "unrecognised"),  # epoch seconds are not guessed
    ("\u0967\u0969-11-2023 14:00", "unrecognised"),  # Devanagari digits are not read
    ("13-11-2023 14:00\x00", "unrecognised"),
    ("1" * 200, "unrecognised"),
    ("31-02-2023 10:00", "invalid date"),
    ("29-02-2023 10:00", "invalid date"),  # not a leap year
    ("00-11-2023 10:00", "invalid date"),
    ("13-13-2023 10:00", "invalid date"),
    ("11/13/2023 10:00", "valid only month-first"),  # evidence of the other date order
    ("02/30/2023 10:00", "invalid date"),  # 30 February either way
    ("13-11-2023 25:00", "invalid date"),
    ("13-11-2023 24:00", "invalid date"),
    ("13-11-2023 14:60", "invalid date"),
    ("13-11-2023 14:00:60", "invalid date"),
    ("2023-11-13T25:00:00Z", "invalid date"),
    ("13-11-2023 13:00 PM", "AM/PM"),
    ("13-11-2023 0:30 AM", "AM/PM"),
    ("2023-11-13T09:34:56+25:00", "offset"),
    ("2023-11-13T09:34:56+04:99", "offset"),
    ("1999-12-31T23:59:59Z", "before 2000"),
    ("31-12-1999 23:59", "before 2000"),
    ("0001-01-01T00:00:00Z", "before 2000"),
    ("2024-01-02T00:00:01Z", "future"),  # now + 1 day + 1 s
    ("02-01-2024 04:00:01", "future"),  # the same instant in Dubai local time
    ("9999-12-31 23:59", "future"),
    ("31-12-9999 11:59 PM", "future"),
]


@pytest.mark.parametrize(("raw", "reason"), TS_REJECTED_DUBAI)
def test_timestamp_rejected(raw: str, reason: str) -> None:
    parser = TimestampParser(now=lambda: NOW)
    with pytest.raises(RowError, match=reason):
        parser.parse(raw)
    with pytest.raises(RowError, match=reason):
        parser._parse_general(raw)


def test_timestamp_reason_is_bounded_and_escaped() -> None:
    parser = TimestampParser(now=lambda: NOW)
    with pytest.raises(RowError) as info:
        parser.parse("x\x1b[31m" + "y" * 500)
    message = str(info.value)
    assert len(message) < 120
    assert "\x1b" not in message
    assert "\\x1b" in message


@pytest.mark.parametrize(
    ("raw", "iso"),
    [
        ("11-13-2023 14:00", "2023-11-13T10:00:00+00:00"),
        ("11/13/2023 2:00 PM", "2023-11-13T10:00:00+00:00"),
        ("11/13/2023 14:00:30", "2023-11-13T10:00:30+00:00"),
        ("03-04-2023 10:00", "2023-03-04T06:00:00+00:00"),  # 4 March, not 3 April
        ("2023-11-13 14:00", "2023-11-13T10:00:00+00:00"),  # year-first is unaffected
        ("2023-11-13T09:34:56Z", "2023-11-13T09:34:56+00:00"),
    ],
)
def test_timestamp_month_first_partner(raw: str, iso: str) -> None:
    parser = TimestampParser("Asia/Dubai", day_first=False, now=lambda: NOW)
    assert parser.parse(raw).isoformat() == iso
    assert parser._parse_general(raw).isoformat() == iso


def test_timestamp_month_first_rejects_day_first_value_as_evidence() -> None:
    from cardstatus.errors import DateOrderEvidence

    parser = TimestampParser(day_first=False, now=lambda: NOW)
    with pytest.raises(DateOrderEvidence, match="valid only day-first") as raised:
        parser.parse(" 13-11-2023 14:00")
    assert raised.value.raw == " 13-11-2023 14:00"
    with pytest.raises(RowError, match="invalid date"):
        parser.parse("13-31-2023 14:00")  # neither order
    with pytest.raises(RowError, match="invalid date"):
        parser.parse("30-02-2024 14:00")  # 30 February, the other order, is no date either
    day_first = TimestampParser(now=lambda: NOW)
    with pytest.raises(DateOrderEvidence, match="valid only month-first"):
        day_first.parse("02/29/2024 10:00")  # a leap day, month-first
    with pytest.raises(RowError, match="invalid date"):
        day_first.parse("02/29/2023 10:00")


def test_timestamp_day_first_default_reads_day_first() -> None:
    assert TimestampParser(now=lambda: NOW).parse("03-04-2023 10:00").isoformat() == (
        "2023-04-03T06:00:00+00:00"
    )


@pytest.mark.parametrize(
    ("raw", "iso"),
    [
        ("15-01-2023 12:00", "2023-01-15T12:00:00+00:00"),  # GMT
        ("15-07-2023 12:00", "2023-07-15T11:00:00+00:00"),  # BST
        ("26-03-2023 00:30", "2023-03-26T00:30:00+00:00"),  # before spring-forward
        # 01:30 does not exist on 26 March (01:00 GMT → 02:00 BST): fold=0 reads it
        # with the offset before the transition (GMT).
        ("26-03-2023 01:30", "2023-03-26T01:30:00+00:00"),
        ("26-03-2023 02:30", "2023-03-26T01:30:00+00:00"),
        # 01:30 happens twice on 29 October: fold=0 is the first one (BST).
        ("29-10-2023 01:30", "2023-10-29T00:30:00+00:00"),
        ("29-10-2023 02:30", "2023-10-29T02:30:00+00:00"),
        ("29-10-2023 12:30 AM", "2023-10-28T23:30:00+00:00"),
        ("2023-07-15T12:00:00Z", "2023-07-15T12:00:00+00:00"),  # explicit zone: exact
        ("2023-07-15T12:00:00", "2023-07-15T11:00:00+00:00"),
    ],
)
def test_timestamp_partner_timezone_with_dst(raw: str, iso: str) -> None:
    parser = TimestampParser("Europe/London", now=lambda: NOW)
    assert parser.parse(raw).isoformat() == iso


def test_timestamp_new_york_month_first() -> None:
    parser = TimestampParser("America/New_York", day_first=False, now=lambda: NOW)
    assert parser.parse("11/13/2023 9:00 AM").isoformat() == "2023-11-13T14:00:00+00:00"
    assert parser.parse("07/04/2023 9:00 AM").isoformat() == "2023-07-04T13:00:00+00:00"


def test_timestamp_now_is_read_once_per_parser() -> None:
    calls = []

    def now() -> datetime:
        calls.append(1)
        return NOW

    parser = TimestampParser(now=now)
    for _ in range(5):
        parser.parse("13-11-2023 14:00")
        parser.parse("2023-11-13T09:34:56Z")
    with pytest.raises(RowError):
        parser.parse("2030-01-01T00:00:00Z")
    assert len(calls) == 1


def test_timestamp_naive_now_is_taken_as_utc() -> None:
    parser = TimestampParser(now=lambda: datetime(2024, 1, 1))
    assert parser.parse("2024-01-02T00:00:00Z").isoformat() == "2024-01-02T00:00:00+00:00"
    with pytest.raises(RowError, match="future"):
        parser.parse("2024-01-02T00:00:01Z")


def test_timestamp_default_now_is_the_clock() -> None:
    parser = TimestampParser()
    with pytest.raises(RowError, match="future"):
        parser.parse(f"{datetime.now(UTC).year + 1}-12-31T00:00:00Z")
    assert parser.parse("2023-11-13T09:34:56Z").year == 2023


def test_timestamp_unknown_timezone_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="unknown timezone"):
        TimestampParser("Mars/Olympus_Mons")


# --------------------------------------------------------------------------- card ids


@pytest.mark.parametrize(
    ("raw", "card_id"),
    [
        ("ZYW8827", "ZYW8827"),
        ("  ZYW8827  ", "ZYW8827"),
        ('"ZYW8827"', "ZYW8827"),
        ("'ZYW8827'", "ZYW8827"),
        ('"""ZYW8827"""', "ZYW8827"),
        ("\ufeffZYW8827", "ZYW8827"),
        ("ZYW8827\t", "ZYW8827"),
        ("zyw8827", "ZYW8827"),  # case-insensitive: stored upper-case (README)
        ("Zyw8827", "ZYW8827"),
        ("\u3000zyw8827\x85", "ZYW8827"),  # whitespace outside the trim set: second pass
        ("A", "A"),
        ("7", "7"),
        ("ABC_123-x", "ABC_123-X"),
        ("A" * 64, "A" * 64),
        ("1234567890123456", "1234567890123456"),
    ],
)
def test_card_id_accepted(raw: str, card_id: str) -> None:
    assert normalise_card_id(raw) == card_id


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "missing"),
        ("", "empty"),
        ("   ", "empty"),
        ('""', "empty"),
        ("-ABC", "not 1-64"),
        ("_ABC", "not 1-64"),
        ("ZYW 8827", "not 1-64"),
        ("ZYW/8827", "not 1-64"),
        ("ZYW8827!", "not 1-64"),
        ("ZYW.8827", "not 1-64"),
        ("ZYWé827", "not 1-64"),
        ("ZYW\uff18827", "not 1-64"),  # full-width digit
        ("ZYW\x00", "not 1-64"),
        ("A\nB", "not 1-64"),
        ('=HYPERLINK("http://x")', "not 1-64"),
        ("A" * 65, "longer than 64"),
    ],
)
def test_card_id_rejected(raw: str | None, reason: str) -> None:
    with pytest.raises(RowError, match=reason):
        normalise_card_id(raw)


def test_card_id_reason_is_bounded_and_escaped() -> None:
    with pytest.raises(RowError) as info:
        normalise_card_id("BAD\x00" + "x" * 5000)
    message = str(info.value)
    assert len(message) < 160
    assert "\x00" not in message
    assert "\\x00" in message
    assert "x" * 41 not in message


def _card_id_reason(raw: str | None) -> str:
    with pytest.raises(RowError) as info:
        normalise_card_id(raw)
    return str(info.value)


def test_card_id_reasons_in_full() -> None:
    # The reasons a rejected row carries into the report and `cardstatus rejects`.
    assert _card_id_reason(None) == "card id is missing"
    assert _card_id_reason(' "" ') == "card id is empty"
    assert _card_id_reason("ZYW 8827") == (
        "card id 'ZYW 8827' is not 1-64 letters, digits, '-' or '_' starting with a letter or digit"
    )
    # 64 characters is within the length limit: the reason is the shape, not the length
    assert _card_id_reason("A" * 63 + "!").endswith(
        "is not 1-64 letters, digits, '-' or '_' starting with a letter or digit"
    )
    assert _card_id_reason("A" * 65) == f"card id {'A' * 40!r}… is longer than 64 characters"


def test_untrusted_values_in_reasons_show_40_characters_and_mark_the_cut() -> None:
    # _text._show: at most 40 characters of the value, repr-escaped, at most 64 characters
    # of escaped text; '…' only where something was cut off.
    def shown(raw: str) -> str:
        reason = _card_id_reason(raw)
        assert reason.startswith("card id ")
        return reason.removeprefix("card id ").split(" is not 1-64")[0]

    forty = "A" * 39 + "!"
    assert shown(forty) == repr(forty)  # exactly 40 characters: nothing cut
    assert shown(forty + "B") == repr(forty) + "…"
    nul_64 = "\x00" * 15 + "ab"  # repr is exactly 64 characters: nothing cut
    assert len(repr(nul_64)) == 64
    assert shown(nul_64) == repr(nul_64)
    nul_65 = nul_64 + "c"  # repr of 65 characters: cut to 64
    assert shown(nul_65) == repr(nul_65)[:64] + "…"


# --------------------------------------------------------------------------- comments


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("\t\r\n", None),
        ("\x00\x07", None),
        ("User not available", "User not available"),
        ("  User not available  ", "User not available"),
        ("DELIVERED", "DELIVERED"),
        ("a  b", "a b"),
        ("line1\r\nline2", "line1 line2"),
        ("line1\rline2\nline3", "line1 line2 line3"),
        ("tab\there", "tab here"),
        ("\x00\x07bell", "bell"),
        ("a\x7fb", "a b"),
        ("a\x85b", "a b"),  # C1 next-line
        ("a\x9bb", "a b"),  # C1 CSI
        ("a\u2028b", "a b"),
        ("abc\u202edef", "abc def"),  # bidi override
        ("\ufeffcomment", "comment"),
        ('=HYPERLINK("http://evil","x")', '=HYPERLINK("http://evil","x")'),
        ("+cmd|' /C calc'!A0", "+cmd|' /C calc'!A0"),
        (
            "\u062a\u0645 \u0627\u0644\u062a\u0633\u0644\u064a\u0645",
            "\u062a\u0645 \u0627\u0644\u062a\u0633\u0644\u064a\u0645",
        ),
        ("\U0001f4e6 ok", "\U0001f4e6 ok"),
        ("caf\u00e9", "caf\u00e9"),
    ],
)
def test_clean_comment(raw: str | None, cleaned: str | None) -> None:
    assert clean_comment(raw) == cleaned


def test_clean_comment_truncates_to_500() -> None:
    assert clean_comment("x" * 600) == "x" * COMMENT_MAX_CHARS
    assert COMMENT_MAX_CHARS == 500
    assert clean_comment("x" * 500) == "x" * 500
    # no trailing blank left by the cut
    assert clean_comment("a" * 499 + " " + "b" * 10) == "a" * 499
    # the limit applies after cleaning, not before
    assert clean_comment("  " + "\n" * 100 + "y" * 500) == "y" * 500


# --------------------------------------------------------------------------- reasons


@pytest.mark.parametrize(
    ("comment", "reason"),
    [
        ("User not available", "recipient_unavailable"),  # sample
        ("User declined to accept package", "refused"),  # sample
        ("USER NOT AVAILABLE", "recipient_unavailable"),
        ("customer unreachable, no answer", "recipient_unavailable"),
        ("Refused by customer", "refused"),
        ("Wrong address", "address_problem"),
        ("Location could not be found", "address_problem"),
        ("Damaged in transit", "other"),
        ("DELIVERED", "other"),
        ("", "other"),
        (None, "other"),
    ],
)
def test_classify_reason_default_keywords(comment: str | None, reason: str) -> None:
    assert classify_reason(comment, DEFAULT_REASON_KEYWORDS) == reason


def test_classify_reason_mapping_order_and_case() -> None:
    assert classify_reason("not available", {"not": "a", "not available": "b"}) == "a"
    assert classify_reason("not available", {"not available": "b", "not": "a"}) == "b"
    assert classify_reason("refused by customer", {"Refused": "refused"}) == "refused"
    assert classify_reason("anything", {"": "x"}) == "other"  # empty keyword never matches
    assert classify_reason("anything", {}) == "other"


# --------------------------------------------------------------------------- event types


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("Picked up", CardStatus.PICKED_UP),
        ("PICKED_UP", CardStatus.PICKED_UP),
        ("picked-up", CardStatus.PICKED_UP),
        ("pickup", CardStatus.PICKED_UP),
        ("Pick Up", CardStatus.PICKED_UP),
        ("Delivery exception", CardStatus.DELIVERY_EXCEPTION),
        ("DELIVERY_EXCEPTION", CardStatus.DELIVERY_EXCEPTION),
        ("exception", CardStatus.DELIVERY_EXCEPTION),
        ("Exception - user not available", CardStatus.DELIVERY_EXCEPTION),
        ("Delivered", CardStatus.DELIVERED),
        (" DELIVERED ", CardStatus.DELIVERED),
        ("delivered", CardStatus.DELIVERED),
        ("returned", CardStatus.RETURNED),
        ("Return", CardStatus.RETURNED),
        ("RETURNED", CardStatus.RETURNED),
        ("Returned to sender", CardStatus.RETURNED),
        ("Returned - not delivered", CardStatus.RETURNED),
        (None, None),
        ("", None),
        ("   ", None),
        # the vocabulary (README "Partner files and reports")
        ("Undelivered", CardStatus.DELIVERY_EXCEPTION),
        ("not delivered", CardStatus.DELIVERY_EXCEPTION),
        ("Non-delivered", CardStatus.DELIVERY_EXCEPTION),
        ("Collected", CardStatus.PICKED_UP),
        ("Picked", CardStatus.PICKED_UP),
        ("SHIPPED", CardStatus.PICKED_UP),
        ("Delivery failed", CardStatus.DELIVERY_EXCEPTION),
        ("Failed delivery", CardStatus.DELIVERY_EXCEPTION),
        ("Attempted \u2013 no answer", CardStatus.DELIVERY_EXCEPTION),
        ("attempted", CardStatus.DELIVERY_EXCEPTION),
        ("Undeliverable", CardStatus.DELIVERY_EXCEPTION),
        ("RTO", CardStatus.RETURNED),
        ("rto", CardStatus.RETURNED),
        ("RTO Delivered", CardStatus.RETURNED),
        ("Return to origin", CardStatus.RETURNED),
        ("Delivered at 2nd attempt", CardStatus.DELIVERED),  # 'attempt' only at the start
        ("Shipment delivered", CardStatus.DELIVERED),
        # plurals and simple inflections of the built-in words
        ("Failed deliveries", CardStatus.DELIVERY_EXCEPTION),
        ("Delivery failures", CardStatus.DELIVERY_EXCEPTION),
        ("Returns", CardStatus.RETURNED),
        ("Pickups", CardStatus.PICKED_UP),
        ("Pick-ups", CardStatus.PICKED_UP),
        ("RTOs", CardStatus.RETURNED),
        ("Exceptions", CardStatus.DELIVERY_EXCEPTION),
        ("Failed attempts", CardStatus.DELIVERY_EXCEPTION),
        # words in any script, compared after NFKC + casefold
        (
            "\uff24\uff25\uff2c\uff29\uff36\uff25\uff32\uff25\uff24",
            CardStatus.DELIVERED,
        ),  # full-width
        ("DELIVERED\u00a0", CardStatus.DELIVERED),
    ],
)
def test_event_type_from_value(raw: str | None, status: CardStatus | None) -> None:
    assert event_type_from_value(raw) is status


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("Sample Card Status Info - Pickup.csv", CardStatus.PICKED_UP),
        ("Sample Card Status Info - Delivery exceptions.csv", CardStatus.DELIVERY_EXCEPTION),
        ("Sample Card Status Info - Delivered.csv", CardStatus.DELIVERED),
        ("Sample Card Status Info - Returned.csv", CardStatus.RETURNED),
        ("incoming/acme/2023/11/Sample Card Status Info - Pickup.csv", CardStatus.PICKED_UP),
        ("C:\\exports\\picked up 2023-11-13.csv", CardStatus.PICKED_UP),
        ("PICKED_UP_20231113.csv", CardStatus.PICKED_UP),
        ("delivered-exceptions.csv", CardStatus.DELIVERY_EXCEPTION),  # exception first
        ("returns.csv", CardStatus.RETURNED),
        ("DELIVERED.CSV", CardStatus.DELIVERED),
        ("report.csv", None),
        ("deliveries.csv", None),
        ("undelivered.csv", CardStatus.DELIVERY_EXCEPTION),
        ("Delivered and Returned.csv", None),  # ambiguous
        ("pickup-delivered.csv", None),
        ("In transit.csv", None),
        ("acme RTO 2024-04-01.csv", CardStatus.RETURNED),
        ("acme Collected.csv", CardStatus.PICKED_UP),
        ("C:\\exports\\delivered\\report.csv", None),  # only the base name counts
        ("C:\\exports\\RTO 2024-04-01.csv", CardStatus.RETURNED),  # Windows names, short word
        ("C:\\exports\\Attempted deliveries.csv", CardStatus.DELIVERY_EXCEPTION),  # prefix word
        ("acme Failed deliveries.csv", CardStatus.DELIVERY_EXCEPTION),
        ("acme Pickups.csv", CardStatus.PICKED_UP),
        ("incoming/delivered/report.csv", None),  # only the base name counts
        ("", None),
    ],
)
def test_event_type_from_filename(name: str, status: CardStatus | None) -> None:
    assert event_type_from_filename(name) is status


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("in transit", "is not tracked"),
        ("In Transit", "is not tracked"),
        ("Out for delivery", "is not tracked"),
        ("Not collected", "is not tracked"),
        ("Not picked up", "is not tracked"),
        ("Delivered and Returned", "more than one event type (DELIVERED, RETURNED)"),
        ("Picked up / returned", "more than one event type"),
        # unknown is never guessed (README "Partner files and reports")
        ("Cancelled", "unknown status 'Cancelled': add it to the partner's status words"),
        ("unknown", "unknown status 'unknown'"),
        ("Delivery", "unknown status 'Delivery'"),
        ("Reported", "unknown status"),  # 'rto' only as a whole word
        ("Deliveries", "unknown status"),
        ("#", "unknown status '#'"),
        ("Not collected, collected later", "is not tracked"),
        ("not RTO, RTO", "is not tracked"),
    ],
)
def test_event_type_from_value_rejects_untracked_and_ambiguous(raw: str, reason: str) -> None:
    with pytest.raises(RowError, match=re.escape(reason)):
        event_type_from_value(raw)


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("Delivered and Returned.csv", "names more than one event type (DELIVERED and RETURNED)"),
        ("Out for delivery.csv", "names a status that is not tracked"),
        ("report.csv", "mentions none of pickup, exception, delivered, return"),
    ],
)
def test_file_event_type_says_why_not(name: str, why: str) -> None:
    status, got = vocabulary().file_event_type(name)
    assert status is None
    assert got is not None and why in got
    with pytest.raises(FileRejected, match=re.escape(why)):
        vocabulary().require_file_event_type(name)


def test_partner_status_words_extend_and_override_the_defaults() -> None:
    words = vocabulary(
        (("handed over", "DELIVERED"), ("Parked", "UNTRACKED"), ("RTO", "DELIVERED"))
    )
    assert words.from_value("Handed over to guard") is CardStatus.DELIVERED
    assert words.from_value("RTO") is CardStatus.DELIVERED  # the partner's word wins
    assert words.from_filename("acme handed-over 2024.csv") is CardStatus.DELIVERED
    with pytest.raises(RowError, match="is not tracked"):
        words.from_value("parked")
    with pytest.raises(RowError, match="unknown status"):
        event_type_from_value("Handed over")  # only for that partner
    with pytest.raises(ValueError, match="unknown status"):
        StatusVocabulary([("x", "LOST")])


# --------------------------------------------------------------------------- headers

SAMPLE_HEADERS = [
    # the four real files' header rows
    (["ID ", "Card ID", "User contact", "Timestamp", "Comment"], HeaderMap(1, 3, 2, 4, 0, None, 5)),
    (["ID ", "Card ID", "User Mobile", "Timestamp"], HeaderMap(1, 3, 2, None, 0, None, 4)),
    (["ID ", "Card ID", "User contact", "Timestamp"], HeaderMap(1, 3, 2, None, 0, None, 4)),
]


@pytest.mark.parametrize(("header", "expected"), SAMPLE_HEADERS)
def test_map_headers_samples(header: list[str], expected: HeaderMap) -> None:
    assert map_headers(header) == expected


@pytest.mark.parametrize(
    ("card", "field_name"),
    [
        (name, "card_id")
        for name in [
            "Card ID",
            "CardID",
            "card_id",
            "CARD ID ",
            " card-id",
            "\ufeffCard ID",
            "\u00ef\u00bb\u00bfCard ID",  # UTF-8 BOM read as Windows-1252
            "Card Number",
            "Card No",
            "Card No.",
        ]
    ],
)
def test_map_headers_card_id_synonyms(card: str, field_name: str) -> None:
    hm = map_headers(["x", card, "Timestamp"])
    assert getattr(hm, field_name) == 1


@pytest.mark.parametrize(
    ("name", "field_name"),
    [
        *[
            (n, "phone")
            for n in [
                "User contact",
                "User Mobile",
                "Phone",
                "Mobile",
                "Phone Number",
                "Contact",
                "MSISDN",
                "mobile_no",
            ]
        ],
        *[(n, "comment") for n in ["Comment", "Comments", "Reason", "Remarks", "Remark", "Notes"]],
        *[(n, "row_id") for n in ["ID", "ID ", "id", "Row ID", "Ref"]],
        *[(n, "status") for n in ["Status", "Event", "Event Type", "event_type"]],
    ],
)
def test_map_headers_optional_synonyms(name: str, field_name: str) -> None:
    hm = map_headers(["Card ID", "Timestamp", "Unknown extra", name])
    assert getattr(hm, field_name) == 3
    others = {"phone", "comment", "row_id", "status"} - {field_name}
    assert all(getattr(hm, o) is None for o in others)
    assert hm.width == 4


@pytest.mark.parametrize(
    "name",
    [
        "Timestamp",
        "Date",
        "Date Time",
        "DateTime",
        "date_time",
        "Event Time",
        "Time",
        "TIMESTAMP  ",
    ],
)
def test_map_headers_timestamp_synonyms(name: str) -> None:
    assert map_headers(["Card ID", name]).timestamp == 1


def test_map_headers_duplicates_first_wins() -> None:
    hm = map_headers(["Card ID", "Timestamp", "Phone", "Mobile", "card_id", "Date"])
    assert (hm.card_id, hm.timestamp, hm.phone) == (0, 1, 2)


def test_map_headers_specific_name_beats_generic_one() -> None:
    hm = map_headers(["Card Number", "Date", "Card ID", "Timestamp", "Contact", "Phone"])
    assert (hm.card_id, hm.timestamp, hm.phone) == (2, 3, 5)


def test_map_headers_trailing_blank_columns_count_in_width() -> None:
    hm = map_headers(["Card ID", "Timestamp", "", "  "])
    assert hm == HeaderMap(0, 1, None, None, None, None, 4)


def test_map_headers_id_is_never_the_card_id() -> None:
    with pytest.raises(FileRejected, match=r"missing required column\(s\): card id;"):
        map_headers(["ID ", "User contact", "Timestamp"])


@pytest.mark.parametrize(
    ("header", "missing"),
    [
        (["Card ID", "Phone"], "timestamp"),
        (["Timestamp", "Phone"], "card id"),
        (["Foo", "Bar"], "card id, timestamp"),
        ([], "card id, timestamp"),
    ],
)
def test_map_headers_missing_required(header: list[str], missing: str) -> None:
    with pytest.raises(FileRejected) as info:
        map_headers(header)
    message = str(info.value)
    assert message.startswith(f"missing required column(s): {missing}; found: ")
    for name in header:
        assert name in message


def test_map_headers_rejection_lists_found_headers_truncated() -> None:
    header = [f"column {i} " + "z" * 100 for i in range(50)]
    with pytest.raises(FileRejected) as info:
        map_headers(header)
    message = str(info.value)
    assert "'column 0 " in message
    assert "(50 columns)" in message
    assert len(message) < 800
    assert "z" * 60 not in message


@pytest.mark.parametrize(
    "first_row",
    [
        ["Jane Doe", "Main St 123", ""],  # a cell with 3+ digits
        ["Jane Doe", "jane@example.com", ""],  # an e-mail address, no digits
    ],
)
def test_map_headers_a_first_row_of_data_is_not_shown(first_row: list[str]) -> None:
    # A file without a header row is rejected without putting its first row (a customer's
    # name, address, phone, e-mail) in the reason (headers.map_headers, issue 18 N12).
    with pytest.raises(FileRejected) as info:
        map_headers(first_row)
    assert str(info.value) == (
        "missing required column(s): card id, timestamp; no header row found: the first row "
        "looks like data (3 columns), so it is not shown; a file needs a header row naming "
        "its columns"
    )


def test_map_headers_column_names_with_few_digits_are_shown() -> None:
    with pytest.raises(FileRejected) as info:
        map_headers(["Name", "Street 12", "Mail (at) office"])
    assert "'Street 12'" in str(info.value)


# --------------------------------------------------------------------------- real samples


def _sample_rows() -> list[tuple[str, list[str], list[list[str]]]]:
    if not SAMPLES.is_dir():
        return []
    out = []
    for path in sorted(SAMPLES.glob("*.csv")):
        text = path.read_bytes().decode("utf-8-sig")
        rows = list(csv.reader(io.StringIO(text, newline="")))
        out.append((path.name, rows[0], rows[1:]))
    return out


EXPECTED_SAMPLES = {
    # (file event type, card, phone, utc time, reason or None)
    "Sample Card Status Info - Delivered.csv": [
        (CardStatus.DELIVERED, "ZYW8827", "+971585949014", "2023-11-13T09:34:56+00:00", None),
        (CardStatus.DELIVERED, "ZYW7631", "+971545576586", "2023-11-14T12:34:56+00:00", None),
    ],
    "Sample Card Status Info - Delivery exceptions.csv": [
        (
            CardStatus.DELIVERY_EXCEPTION,
            "ZYW8890",
            "+971534534534",
            "2023-11-13T10:00:00+00:00",
            "recipient_unavailable",
        ),
        (
            CardStatus.DELIVERY_EXCEPTION,
            "ZYW7631",
            "+971545576586",
            "2023-11-13T12:00:00+00:00",
            "refused",
        ),
    ],
    "Sample Card Status Info - Pickup.csv": [
        (CardStatus.PICKED_UP, "ZYW8827", "+971585949014", "2023-11-12T19:59:00+00:00", None),
        (CardStatus.PICKED_UP, "ZYW8890", "+971534534534", "2023-11-11T23:45:00+00:00", None),
        (CardStatus.PICKED_UP, "ZYW7631", "+971545576586", "2023-11-13T07:02:00+00:00", None),
    ],
    "Sample Card Status Info - Returned.csv": [
        (CardStatus.RETURNED, "ZYW8890", "+971534534534", "2023-11-14T08:00:00+00:00", None),
    ],
}


def test_real_partner_samples_normalise_as_expected() -> None:
    samples = _sample_rows()
    assert {name for name, _, _ in samples} == set(EXPECTED_SAMPLES)
    parser = TimestampParser("Asia/Dubai", day_first=True, now=lambda: NOW)
    for name, header, rows in samples:
        hm = map_headers(header)
        assert hm.status is None
        status = event_type_from_filename(name)
        got = []
        for row in rows:
            comment = clean_comment(row[hm.comment]) if hm.comment is not None else None
            phone = normalise_phone(row[hm.phone] if hm.phone is not None else None)
            assert phone.warning is None
            got.append(
                (
                    status,
                    normalise_card_id(row[hm.card_id]),
                    phone.e164,
                    parser.parse(row[hm.timestamp]).isoformat(),
                    classify_reason(comment, DEFAULT_REASON_KEYWORDS)
                    if status is CardStatus.DELIVERY_EXCEPTION
                    else None,
                )
            )
        assert got == EXPECTED_SAMPLES[name], name


def test_sample_quoted_phone_as_the_csv_module_yields_it() -> None:
    (row,) = csv.reader(['A883,ZYW8827,"""0585949014""",2023-11-13T09:34:56Z,DELIVERED'])
    assert row[2] == '"0585949014"'
    assert normalise_phone(row[2]) == Phone("+971585949014", None)


@pytest.mark.parametrize(
    "raw",
    [
        "2023-11-13T09:34:56Z",
        "2023-11-13 09:34:56",
        "2023-11-13 09:34",
        "13-11-2023 14:00",
        "13/11/2023 14:00:05",
        "13.11.2023 14:00",
    ],
)
def test_timestamp_fast_path_is_used_for_the_dominant_forms(raw: str) -> None:
    # If this returns None the fast path silently degraded to the general parser.
    parser = TimestampParser(now=lambda: NOW)
    fast = parser._parse_fast(raw, raw)
    assert fast is not None
    assert fast == parser._parse_general(raw)


@pytest.mark.parametrize(
    "raw", ["31-02-2023 10:00", "13-11-2023 24:00", "1999-12-31T23:59:59Z", "2030-01-01 00:00"]
)
def test_timestamp_fast_path_defers_doubtful_values(raw: str) -> None:
    assert TimestampParser(now=lambda: NOW)._parse_fast(raw, raw) is None
