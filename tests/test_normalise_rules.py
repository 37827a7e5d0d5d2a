"""The parsing rules of README "Partner files and reports" (header search, NFKC headers, month
names, partner status words) and the edge cases mutation testing found unpinned
(shared/reviews/mutation.md)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from cardstatus.config import PartnerSettings, _parse_partners
from cardstatus.model import CardStatus, FileRejected, RowError
from cardstatus.normalise import (
    TimestampParser,
    _normalise_phone_reference,
    _normalise_phone_uncached,
    clean_comment,
    event_type_from_filename,
    find_header,
    map_headers,
    normalise_card_id,
    normalise_header,
    normalise_phone,
)

NOW = datetime(2024, 6, 1, tzinfo=UTC)
NOW_2026 = datetime(2026, 12, 6, tzinfo=UTC)

# --------------------------------------------------------------------------- header synonyms

# Every documented header name, as a person writes it: (field, strong names, weak names).
SYNONYMS = {
    "card_id": (
        ["Card ID", "Card Identifier", "Card Ref", "Card Reference", "Card Code"],
        ["Card Number", "Card No", "Card Num", "Card"],
    ),
    "timestamp": (
        [
            "Timestamp",
            "Date Time",
            "Date and Time",
            "Date n Time",
            "Event Time",
            "Event Date Time",
            "Event Timestamp",
            "Status Time",
            "Status Date Time",
            "Occurred At",
        ],
        ["Date", "Time", "Event Date", "Status Date", "Updated At"],
    ),
    "phone": (
        [
            "User contact",
            "User Mobile",
            "User Phone",
            "Phone",
            "Phone Number",
            "Phone No",
            "Mobile",
            "Mobile Number",
            "Mobile No",
            "Contact Number",
            "Contact No",
            "MSISDN",
            "Telephone",
            "Customer Mobile",
            "Customer Phone",
            "Customer Contact",
        ],
        ["Contact", "Tel", "Mobile Phone"],
    ),
    "comment": (
        ["Comment", "Comments", "Reason", "Remarks", "Remark", "Notes", "Note"],
        ["Description", "Exception Reason", "Status Reason"],
    ),
    "row_id": (
        ["ID", "Row ID", "Ref", "Reference", "Record ID", "Ref No"],
        ["No", "S.No", "Sr No", "Serial", "Row No"],
    ),
    "status": (
        ["Status", "Event", "Event Type", "Event Status", "Delivery Status"],
        ["Status Code", "Type"],
    ),
}
FILLER = {"card_id": "Card ID", "timestamp": "Timestamp"}


def _header_with(field: str, *names: str) -> list[str]:
    """A header with the given names for one field, after the required columns it lacks."""
    required = [FILLER[f] for f in ("card_id", "timestamp") if f != field]
    return [*required, *names]


@pytest.mark.parametrize(
    ("field", "name"),
    [(f, n) for f, (strong, weak) in SYNONYMS.items() for n in [*strong, *weak]],
)
def test_every_header_synonym_maps_to_its_field(field: str, name: str) -> None:
    header = _header_with(field, "Unknown", name)
    assert getattr(map_headers(header), field) == len(header) - 1


@pytest.mark.parametrize(
    ("field", "name"), [(f, n) for f, (_, weak) in SYNONYMS.items() for n in weak]
)
def test_a_weak_header_name_loses_to_a_strong_one_after_it(field: str, name: str) -> None:
    strong = SYNONYMS[field][0][0]
    header = _header_with(field, name, strong)
    assert getattr(map_headers(header), field) == len(header) - 1


@pytest.mark.parametrize(
    ("field", "name"), [(f, n) for f, (strong, _) in SYNONYMS.items() for n in strong]
)
def test_a_strong_header_name_beats_a_weak_one_before_it(field: str, name: str) -> None:
    weak = SYNONYMS[field][1][0]
    header = _header_with(field, weak, name)
    assert getattr(map_headers(header), field) == len(header) - 1


# --------------------------------------------------------------------------- NFKC headers


@pytest.mark.parametrize(
    "name",
    [
        "Card\u00a0ID",  # non-breaking space
        "Card\u202fID",  # narrow no-break space
        "Card\u2007ID",  # figure space
        "Card\u200bID",  # zero-width space
        "\u200dCard ID\u2060",  # zero-width joiner, word joiner
        "Ｃａｒｄ ＩＤ",  # full-width letters (NFKC)
        "Ｃａｒｄ\u3000ＩＤ",  # ideographic space
        "Card\u00a0\u00a0ID\u00a0",
    ],
)
def test_header_cells_compared_after_nfkc(name: str) -> None:
    assert normalise_header(name) == "cardid"
    assert map_headers([name, "Time\u00a0stamp"]).card_id == 0


# --------------------------------------------------------------------------- title lines


def _records(*rows: list[str]) -> list[tuple[int, list[str]]]:
    return list(enumerate(rows, start=1))


def test_title_lines_before_the_header_are_skipped() -> None:
    records = iter(
        _records(
            ["Returns report"],
            ["Generated on 2024-04-03 10:00", ""],
            [],
            ["", "", ""],
            ["ID", "Card ID", "Timestamp"],
            ["1", "A1", "03-04-2024 10:00"],
        )
    )
    header, skipped = find_header(records)
    assert (header.card_id, header.timestamp, header.row_id) == (1, 2, 0)
    assert skipped == [1, 2]  # blank lines are not counted
    assert next(records) == (6, ["1", "A1", "03-04-2024 10:00"])  # the rows are left


def test_header_on_the_first_line_skips_nothing() -> None:
    header, skipped = find_header(iter(_records(["Card ID", "Timestamp"], ["A1", "x"])))
    assert header.width == 2
    assert skipped == []


def test_header_is_searched_in_the_first_20_non_blank_records_only() -> None:
    titles = [[f"title {i}"] for i in range(19)]
    header, skipped = find_header(iter(_records(*titles, ["Card ID", "Timestamp"])))
    assert len(skipped) == 19
    assert header.timestamp == 1
    titles = [[f"title {i}"] for i in range(20)]
    with pytest.raises(FileRejected, match="missing required column"):
        find_header(iter(_records(*titles, ["Card ID", "Timestamp"])))


def test_a_title_line_with_only_a_timestamp_name_is_not_the_header() -> None:
    header, skipped = find_header(iter(_records(["Date", "2024-04-01"], ["Card ID", "Date"])))
    assert (header.card_id, header.timestamp, skipped) == (0, 1, [1])


def test_no_header_rejection_shows_the_closest_record() -> None:
    with pytest.raises(FileRejected) as info:
        find_header(iter(_records(["Returns report"], ["Card ID", "Phone"], ["x", "y", "z"])))
    message = str(info.value)
    assert message.startswith("missing required column(s): timestamp; found: 'Card ID'")
    with pytest.raises(FileRejected, match=r"card id, timestamp; found: 'Returns report'"):
        find_header(iter(_records(["Returns report"], ["Generated"])))


@pytest.mark.parametrize("rows", [[], [[]], [[""], ["  ", " "]]])
def test_no_header_at_all_is_an_empty_file(rows: list[list[str]]) -> None:
    with pytest.raises(FileRejected, match="file is empty: no header row"):
        find_header(iter(_records(*rows)))


# --------------------------------------------------------------------------- month names

TS_MONTH_ACCEPTED = [
    ("05-Apr-2024 10:00 AM", "2024-04-05T06:00:00+00:00"),
    ("3 Apr 2024 9:15 AM", "2024-04-03T05:15:00+00:00"),
    ("Apr 3, 2024 14:30", "2024-04-03T10:30:00+00:00"),
    ("April 3, 2024 4:50 PM", "2024-04-03T12:50:00+00:00"),
    ("03-APR-2024 16:45", "2024-04-03T12:45:00+00:00"),
    ("03-apr-2024 16:45", "2024-04-03T12:45:00+00:00"),
    ("3-aPrIl-2024 16:45:30", "2024-04-03T12:45:30+00:00"),
    ("2024-Apr-03 16:45", "2024-04-03T12:45:00+00:00"),
    ("2024 April 3 16:45", "2024-04-03T12:45:00+00:00"),
    ("Wed, 3 Apr 2024 14:30:00 GMT", "2024-04-03T14:30:00+00:00"),
    ("Wednesday, April 3, 2024 4:50 PM", "2024-04-03T12:50:00+00:00"),
    ("3rd April 2024 10:00", "2024-04-03T06:00:00+00:00"),
    ("Apr. 3, 2024 10:00", "2024-04-03T06:00:00+00:00"),
    ("3 Sept 2023 10:00", "2023-09-03T06:00:00+00:00"),
    ("1 Jan 2024, 10:00", "2024-01-01T06:00:00+00:00"),
    ("15 Feb 2024 10:00", "2024-02-15T06:00:00+00:00"),
    ("15 Mar 2024 10:00", "2024-03-15T06:00:00+00:00"),
    ("15 May 2024 10:00", "2024-05-15T06:00:00+00:00"),
    ("15 June 2023 10:00", "2023-06-15T06:00:00+00:00"),
    ("15 Jul 2023 10:00", "2023-07-15T06:00:00+00:00"),
    ("15 August 2023 10:00", "2023-08-15T06:00:00+00:00"),
    ("15 Oct 2023 10:00", "2023-10-15T06:00:00+00:00"),
    ("15 November 2023 10:00", "2023-11-15T06:00:00+00:00"),
    ("15 Dec 2023 10:00", "2023-12-15T06:00:00+00:00"),
    ("Dec 15 2023 10:00", "2023-12-15T06:00:00+00:00"),
    ("03-Apr-2024T16:45Z", "2024-04-03T16:45:00+00:00"),
]


@pytest.mark.parametrize(("raw", "iso"), TS_MONTH_ACCEPTED)
def test_timestamp_english_month_names(raw: str, iso: str) -> None:
    parser = TimestampParser("Asia/Dubai", day_first=True, now=lambda: NOW)
    assert parser.parse(raw).isoformat() == iso
    # the month names the day: the date order of the partner does not matter
    month_first = TimestampParser("Asia/Dubai", day_first=False, now=lambda: NOW)
    assert month_first.parse(raw).isoformat() == iso


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("05-Apr-2024", "no time of day"),
        ("Apr 3, 2024", "no time of day"),
        ("2024-Apr-03", "no time of day"),
        ("05-Foo-2024 10:00", "unrecognised"),
        ("05-Ap-2024 10:00", "unrecognised"),  # two letters are not a month
        ("31-Apr-2024 10:00", "invalid date"),
        ("05-Apr-24 10:00", "unrecognised"),  # two-digit year is not guessed
        ("05-Apr-1999 10:00", "before 2000"),
        ("05-Apr-2099 10:00", "future"),
        ("Apr 3, 2024 13:00 PM", "AM/PM"),
    ],
)
def test_timestamp_month_names_rejected(raw: str, reason: str) -> None:
    parser = TimestampParser("Asia/Dubai", day_first=True, now=lambda: NOW)
    with pytest.raises(RowError, match=reason):
        parser.parse(raw)


# --------------------------------------------------------------------------- timestamps: gaps


@pytest.mark.parametrize(
    ("raw", "iso"),
    [
        ("2023-11-13T09:34:56 GMT", "2023-11-13T09:34:56+00:00"),
        ("2023-11-13T09:34:56 gmt", "2023-11-13T09:34:56+00:00"),
        ("2023-11-13T09:34:56 utc", "2023-11-13T09:34:56+00:00"),
        ("2023-11-13 09:34 UTC", "2023-11-13T09:34:00+00:00"),
        ("2023-11-13t09:34:56z", "2023-11-13T09:34:56+00:00"),
        ("2023-11-13, 09:34", "2023-11-13T05:34:00+00:00"),
        ("13-11-2023 1:15 p m", "2023-11-13T09:15:00+00:00"),
        ("13-11-2023 1:15  PM", "2023-11-13T09:15:00+00:00"),
        ("13-11-2023 1:15 p.m.", "2023-11-13T09:15:00+00:00"),
        ("13-11-2023 14:00\r", "2023-11-13T10:00:00+00:00"),  # junk on one side only
        ("\ufeff2023-11-13T09:34:56Z", "2023-11-13T09:34:56+00:00"),
        ("2023-11-13T09:34:56+18:00", "2023-11-12T15:34:56+00:00"),  # the largest offset
        ("2023-11-13T09:34:56-18:00", "2023-11-14T03:34:56+00:00"),
        ("2023-11-13T09:34:56+0530", "2023-11-13T04:04:56+00:00"),
        ("2023-11-13T09:34:56+04:59", "2023-11-13T04:35:56+00:00"),
        ("2023-11-13T09:34:56.1234567Z", "2023-11-13T09:34:56.123456+00:00"),
    ],
)
def test_timestamp_forms_the_layouts_accept(raw: str, iso: str) -> None:
    parser = TimestampParser("Asia/Dubai", now=lambda: NOW)
    assert parser.parse(raw).isoformat() == iso
    assert parser._parse_general(raw).isoformat() == iso


@pytest.mark.parametrize(
    "raw", ["2023-11-13T09:34:56+04:60", "2023-11-13T09:34:56+19:00", "2023-11-13T09:34:56+18:60"]
)
def test_timestamp_offset_bounds(raw: str) -> None:
    with pytest.raises(RowError, match="offset"):
        TimestampParser(now=lambda: NOW).parse(raw)


def test_timestamp_of_exactly_64_characters_is_parsed_and_65_is_not() -> None:
    parser = TimestampParser("Asia/Dubai", now=lambda: NOW)
    base = "2023-11-13T09:34:56."
    raw = base + "1" * 9 + " " * (64 - len(base) - 9 - 1) + "Z"
    assert len(raw) == 64
    assert parser.parse(raw) == datetime(2023, 11, 13, 9, 34, 56, 111111, tzinfo=UTC)
    with pytest.raises(RowError, match="unrecognised"):
        parser.parse(raw[:-1] + " Z")


def test_timestamp_near_new_year_local_year_ahead_of_utc() -> None:
    # now = 30 Dec 23:00 UTC; 1 Jan 02:00 in Dubai is 31 Dec 22:00 UTC: less than a day ahead.
    now = datetime(2024, 12, 30, 23, 0, tzinfo=UTC)
    parser = TimestampParser("Asia/Dubai", now=lambda: now)
    assert parser.parse("1-1-2025 2:00 AM") == datetime(2024, 12, 31, 22, 0, tzinfo=UTC)
    assert parser.parse("01-01-2025 02:00") == datetime(2024, 12, 31, 22, 0, tzinfo=UTC)
    with pytest.raises(RowError, match="future"):
        parser.parse("1-1-2026 2:00 AM")


def test_timestamp_aware_now_in_another_zone_is_converted() -> None:
    now = datetime(2024, 1, 1, 4, 0, tzinfo=timezone(timedelta(hours=4)))  # = 00:00 UTC
    parser = TimestampParser("Asia/Dubai", now=lambda: now)
    assert parser.parse("2024-01-02T00:00:00Z") == datetime(2024, 1, 2, tzinfo=UTC)
    with pytest.raises(RowError, match="future"):
        parser.parse("2024-01-02T02:00:00Z")


def test_timestamp_parser_keeps_its_timezone_name() -> None:
    assert TimestampParser("Europe/London").timezone == "Europe/London"


# --------------------------------------------------------------------------- phones: gaps


@pytest.mark.parametrize("raw", ["+971", "+9", "+", "971", "0", "00", "+0585949014"])
def test_phone_never_raises_on_short_or_code_only_values(raw: str) -> None:
    for region in ("AE", "QA", "GB", "US"):
        result = normalise_phone(raw, region)
        assert result.e164 is None
        assert result == _normalise_phone_reference(raw, region)


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("55800123456", "BR", "+55800123456"),  # own country code retried with '+'
        ('= "0585949014"', "AE", "+971585949014"),
        ("058\t594\t9014", "AE", "+971585949014"),
        ("058\u00a0594\u00a09014", "AE", "+971585949014"),
        ("\u200b0585949014", "AE", "+971585949014"),
        ("\u20180585949014\u2019", "AE", "+971585949014"),
        ("' \" 0585949014 \" '", "AE", "+971585949014"),
        ("\uff10\uff15\uff18\uff15\uff19\uff14\uff19\uff10\uff11\uff14", "AE", "+971585949014"),
    ],
)
def test_phone_forms_accepted(raw: str, region: str, e164: str) -> None:
    assert normalise_phone(raw, region).e164 == e164
    assert _normalise_phone_reference(raw, region).e164 == e164


@pytest.mark.parametrize(
    ("raw", "region", "warning"),
    [
        ("033123456", "QA", "not a valid number"),  # QA has no trunk prefix
        ("01919123456", "IL", "not a valid number"),  # 019 is an international prefix in IL
        ("++971585949014", "AE", "'+' that is not at the start"),
        ("\u0661\u0662\u0663\u0664\u0665", "AE", "phone *2345 is not"),  # digits made ASCII
    ],
)
def test_phone_forms_refused(raw: str, region: str, warning: str) -> None:
    assert normalise_phone(raw, region).e164 is None
    assert warning in (normalise_phone(raw, region).warning or "")
    assert _normalise_phone_uncached(raw, region) == _normalise_phone_reference(raw, region)


@pytest.mark.parametrize("raw", ["--", "\u2014", "na", "NA", "None", "nil", "NIL", "n/a", "Null"])
def test_phone_placeholders_are_absent_not_warnings(raw: str) -> None:
    assert normalise_phone(raw).e164 is None
    assert normalise_phone(raw).warning is None


def test_phone_length_limit_is_40_characters_after_trimming() -> None:
    at_limit = "+971" + " " * 25 + "58 594 9014"
    assert len(at_limit) == 40
    assert normalise_phone(f"  {at_limit}  ").e164 == "+971585949014"
    over = "+971" + " " * 26 + "58 594 9014"
    assert normalise_phone(over).warning == "phone is too long; left unset"


# --------------------------------------------------------------------------- card ids, comments


@pytest.mark.parametrize(
    ("raw", "card_id"),
    [
        ("ZYW8827\u200b", "ZYW8827"),
        ("\u3000ZYW8827", "ZYW8827"),
        ("ZYW8827\x85", "ZYW8827"),
        ("\u2018zyw8827\u2019", "ZYW8827"),
        ("A" * 64, "A" * 64),
    ],
)
def test_card_id_wrappers_and_case(raw: str, card_id: str) -> None:
    assert normalise_card_id(raw) == card_id


@pytest.mark.parametrize("raw", ["A" * 65, "\u3000" + "A" * 65])
def test_card_id_over_64_characters(raw: str) -> None:
    with pytest.raises(RowError, match="longer than 64"):
        normalise_card_id(raw)


@pytest.mark.parametrize("control", [*"\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"])
def test_comment_bidi_controls_removed(control: str) -> None:
    assert clean_comment(f"left{control} at door") == "left at door"


# --------------------------------------------------------------------------- file names


def test_event_type_from_filename_only_reads_the_base_name() -> None:
    assert event_type_from_filename("C:\\exports\\delivered\\report.csv") is None
    assert event_type_from_filename("C:\\exports\\x\\Delivered.csv") is CardStatus.DELIVERED


# --------------------------------------------------------------------------- partner config


def test_partner_status_words_from_partner_config() -> None:
    raw = json.dumps(
        {"acme": {"status_words": {"handed over": "DELIVERED", "parked": "untracked"}}}
    )
    acme = _parse_partners(raw)["acme"]
    assert acme.status_words == (("handed over", "DELIVERED"), ("parked", "UNTRACKED"))
    assert PartnerSettings("x").status_words == ()
    hash(acme)  # settings stay hashable


@pytest.mark.parametrize("words", [{"x": "LOST"}, ["handed over"], {"x": ""}])
def test_partner_status_words_must_name_a_status(words: object) -> None:
    with pytest.raises(ValueError, match=re.escape("status_words")):
        _parse_partners(json.dumps({"acme": {"status_words": words}}))


def test_partner_status_words_accept_spaced_status_names() -> None:
    raw = json.dumps({"acme": {"status_words": {"gone back": "returned", "lifted": "picked up"}}})
    assert _parse_partners(raw)["acme"].status_words == (
        ("gone back", "RETURNED"),
        ("lifted", "PICKED_UP"),
    )


# --------------------------------------------------------------------------- API / CLI lookups


@pytest.mark.parametrize(("raw", "card_id"), [("zyw7631", "ZYW7631"), ("Zyw-7_a", "ZYW-7_A")])
def test_api_and_cli_lookups_upper_case_the_card_id(raw: str, card_id: str) -> None:
    from cardstatus.cards import status_query, validate_card_id

    assert validate_card_id(raw) == card_id
    assert status_query(raw, None) == (card_id, None)


# --------------------------------------------------------------------------- vocabulary edges


def test_vocabulary_short_words_and_word_boundaries() -> None:
    from cardstatus.normalise import StatusVocabulary

    with pytest.raises(RowError, match="unknown status"):
        vocabulary_value("Sent to Porto hub")  # 'rto' only as a whole word
    words = StatusVocabulary([("OK", "DELIVERED"), ("held", "UNTRACKED")])
    assert words.from_value("ok") is CardStatus.DELIVERED  # a 2-letter partner word
    assert words.from_value("Delivered OK") is CardStatus.DELIVERED
    with pytest.raises(RowError, match="is not tracked"):
        words.from_value("Withheld")  # a 4-letter word matches inside a longer one
    parked = StatusVocabulary([("parked", "not tracked")])
    with pytest.raises(RowError, match="is not tracked"):
        parked.from_value("Parked at depot")


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("Parcel not delivered", CardStatus.DELIVERY_EXCEPTION),
        ("Attempt 1 - undelivered", CardStatus.DELIVERY_EXCEPTION),
        ("Shipment undelivered, returned", CardStatus.RETURNED),
    ],
)
def test_negated_delivered_anywhere_in_the_text(raw: str, status: CardStatus) -> None:
    assert vocabulary_value(raw) is status


def vocabulary_value(raw: str) -> CardStatus | None:
    from cardstatus.normalise import event_type_from_value

    return event_type_from_value(raw)


# --------------------------------------------------------------------------- words in any script


def test_arabic_partner_words_match_cells_and_file_names() -> None:
    from cardstatus.normalise import StatusVocabulary

    raw = json.dumps(
        {
            "acme": {
                "status_words": {
                    "\u062a\u0645 \u0627\u0644\u062a\u0648\u0635\u064a\u0644": "DELIVERED",
                    "\u0645\u0631\u062a\u062c\u0639": "RETURNED",
                }
            }
        }
    )
    words = StatusVocabulary(_parse_partners(raw)["acme"].status_words)
    assert (
        words.from_value("\u062a\u0645 \u0627\u0644\u062a\u0648\u0635\u064a\u0644")
        is CardStatus.DELIVERED
    )
    assert (
        words.from_value(" \u062a\u0645  \u0627\u0644\u062a\u0648\u0635\u064a\u0644.")
        is CardStatus.DELIVERED
    )
    assert words.from_value("\u0645\u0631\u062a\u062c\u0639") is CardStatus.RETURNED
    assert (
        words.from_filename("acme \u062a\u0645 \u0627\u0644\u062a\u0648\u0635\u064a\u0644.csv")
        is CardStatus.DELIVERED
    )
    assert len(words._entries) == len(StatusVocabulary()._entries) + 2  # none dropped


def test_accented_partner_words_are_not_cut_short() -> None:
    from cardstatus.normalise import StatusVocabulary

    words = StatusVocabulary(
        [("livr\u00e9", "DELIVERED"), ("Livraison \u00e9chou\u00e9e", "DELIVERY_EXCEPTION")]
    )
    assert words.from_value("Livraison \u00e9chou\u00e9e") is CardStatus.DELIVERY_EXCEPTION
    assert words.from_value("LIVR\u00c9") is CardStatus.DELIVERED
    assert words.from_value("livre\u0301") is CardStatus.DELIVERED  # a combining accent, composed
    only_livre = StatusVocabulary([("livr\u00e9", "DELIVERED")])
    with pytest.raises(RowError, match="unknown status"):
        only_livre.from_value("Livraison \u00e9chou\u00e9e")  # not 'livr' + anything


@pytest.mark.parametrize("word", ["--", "\u200b", "\u0651", "..."])
def test_a_configured_word_that_normalises_to_nothing_is_refused_at_start(word: str) -> None:
    with pytest.raises(
        ValueError, match=re.escape(f"status_words[{word!r}] has no letter or digit")
    ):
        _parse_partners(json.dumps({"acme": {"status_words": {word: "DELIVERED"}}}))
    from cardstatus.normalise import StatusVocabulary

    with pytest.raises(ValueError, match="has no letter or digit"):
        StatusVocabulary([(word, "DELIVERED")])


def test_the_negation_applies_to_the_first_occurrence_of_a_word() -> None:
    assert vocabulary_value("Collected - not collected on 1st visit") is CardStatus.PICKED_UP


# --------------------------------------------------------------------------- timestamps, round 3


@pytest.mark.parametrize(
    ("raw", "utc"),
    [
        (
            "\u0662\u0660\u0662\u0664-\u0660\u0666-\u0660\u0663 \u0661\u0660:\u0660\u0660",
            "2024-06-03T06:00:00+00:00",
        ),  # Arabic-Indic
        (
            "\u06f0\u06f3/\u06f0\u06f6/\u06f2\u06f0\u06f2\u06f4 \u06f1\u06f0:\u06f0\u06f0",
            "2024-06-03T06:00:00+00:00",
        ),  # Eastern
        ("2024-06-03 10:00 GMT+4", "2024-06-03T06:00:00+00:00"),
        ("03-06-2024 10:00 UTC+04:00", "2024-06-03T06:00:00+00:00"),
        ("2024-06-03 10:00 UTC +4", "2024-06-03T06:00:00+00:00"),
        ("2024-06-03 10:00 gmt-3:30", "2024-06-03T13:30:00+00:00"),
        ("2024-06-03 10:00 UTC+0530", "2024-06-03T04:30:00+00:00"),
        ("2024-06-03 10:00 GMT", "2024-06-03T10:00:00+00:00"),
        ("2024-06-03T10:00:00+04:00[Asia/Dubai]", "2024-06-03T06:00:00+00:00"),
        ("2024-06-03T10:00:00Z[UTC]", "2024-06-03T10:00:00+00:00"),
        ("2024-06-03T10:00:00[Europe/London]", "2024-06-03T09:00:00+00:00"),  # the zone's time
        ("2024-06-03T10:00:00 [UTC]", "2024-06-03T10:00:00+00:00"),
    ],
)
def test_more_timestamp_forms(raw: str, utc: str) -> None:
    assert TimestampParser("Asia/Dubai", now=lambda: NOW_2026).parse(raw).isoformat() == utc


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("2024-06-03T10:00:00[Mars/Olympus]", "unknown time zone 'Mars/Olympus'"),
        ("2024-06-03 10:00 GMT+19", "out of range"),
        ("2024-06-03 10:00 UTC+04:60", "out of range"),
    ],
)
def test_bad_zones_in_timestamps_are_rejected(raw: str, reason: str) -> None:
    with pytest.raises(RowError, match=re.escape(reason)):
        TimestampParser("Asia/Dubai", now=lambda: NOW_2026).parse(raw)


@pytest.mark.parametrize(
    ("header", "zone"),
    [
        (["Card ID", "Timestamp (UTC)"], "UTC"),
        (["Card ID", "Time (GST)"], "Asia/Dubai"),
        (["Card ID", "Date (UTC+4)"], "UTC+04:00"),
        (["Card ID", "Event time [UTC-03:30]"], "UTC-03:30"),
        (["Card ID", "Timestamp (Europe/London)"], "Europe/London"),
        (["Card ID", "Timestamp (dd/mm/yyyy hh:mm)"], None),  # a note, not a zone
        (["Card ID", "Timestamp"], None),
    ],
)
def test_a_header_that_names_its_zone(header: list[str], zone: str | None) -> None:
    hm = map_headers(header)
    assert hm.timestamp == 1
    assert (None if hm.timestamp_zone is None else str(hm.timestamp_zone)) == zone


def test_a_header_naming_an_unknown_zone_rejects_the_file() -> None:
    with pytest.raises(FileRejected, match="time zone 'EST' is not one this service reads"):
        map_headers(["Card ID", "Timestamp (EST)"])


def test_the_header_zone_overrides_the_partner_zone_in_rows() -> None:
    rows = _rows_of(["Card ID", "Timestamp (UTC)"], [["A1", "2024-06-03 10:00"]])
    assert rows == [["1", "A1", "DELIVERED", "2024-06-03T10:00:00+00:00"]]
    rows = _rows_of(["Card ID", "Timestamp"], [["A1", "2024-06-03 10:00"]])
    assert rows == [["1", "A1", "DELIVERED", "2024-06-03T06:00:00+00:00"]]


@pytest.mark.parametrize(
    "header",
    [
        ["Card ID", "Date", "Time"],
        ["Time", "Card ID", "Date"],
        ["Card ID", "Delivery date", "Delivery time"],
    ],
)
def test_separate_date_and_time_columns_are_combined(header: list[str]) -> None:
    hm = map_headers(header)
    date_col, time_col = hm.timestamp, hm.time
    assert time_col is not None
    assert header[date_col].lower().endswith("date") and header[time_col].lower().endswith("time")
    row = ["", "", ""]
    row[hm.card_id], row[date_col], row[time_col] = "A1", "03/06/2024", "10:00"
    assert _rows_of(header, [row]) == [["1", "A1", "DELIVERED", "2024-06-03T06:00:00+00:00"]]


def test_a_date_and_time_header_in_zone_utc() -> None:
    header = ["Card ID", "Date", "Time (UTC)"]
    assert _rows_of(header, [["A1", "2024-06-03", "10:00"]])[0][3] == "2024-06-03T10:00:00+00:00"


def test_a_full_timestamp_column_is_not_combined() -> None:
    hm = map_headers(["Card ID", "Timestamp", "Date", "Time"])
    assert (hm.timestamp, hm.time) == (1, None)


def _rows_of(header: list[str], rows: list[list[str]]) -> list[list[str]]:
    from cardstatus.ingest.rows import RowOutcomes, normalised_rows

    hm = map_headers(header)
    out = RowOutcomes()
    records = iter([(i + 1, r) for i, r in enumerate(rows)])
    text = b"".join(
        normalised_rows(records, hm, CardStatus.DELIVERED, PartnerSettings("x"), {}, out)
    )
    assert out.rejected == 0, out.reject_details
    return [line.split("\t")[:4] for line in text.decode().splitlines()]


def test_a_date_in_brackets_is_not_masked_as_a_phone() -> None:
    from cardstatus.model import redact_phones

    assert redact_phones("first pickup (2026-12-03)") == "first pickup (2026-12-03)"
    assert redact_phones("call (050) 111 2222") == "call ******2222"
    assert redact_phones("(0501112222)") == "******2222)"


def test_status_reasons_in_full() -> None:
    from cardstatus.normalise import vocabulary

    words = vocabulary()
    with pytest.raises(RowError) as untracked:
        words.from_value(" In transit ")
    assert str(untracked.value) == (
        "status 'In transit' is not tracked "
        "(only pickup, delivery exception, delivered and returned are)"
    )
    with pytest.raises(RowError) as unknown:
        words.from_value("Cancelled")
    assert str(unknown.value) == (
        "unknown status 'Cancelled': add it to the partner's status words "
        "(PARTNER_CONFIG status_words)"
    )
    assert words.file_event_type("Out for delivery.csv") == (
        None,
        "the file name names a status that is not tracked",
    )
    assert words.file_event_type("report.csv") == (
        None,
        "the file name mentions none of pickup, exception, delivered, return",
    )


def test_words_are_folded_and_taken_back_to_the_singular() -> None:
    from cardstatus.words import word_key, words

    assert words("Ties, flies; bus ADDRESS returns Deliveries cafés") == [
        "tie",  # 'ies' only after 4+ characters
        "fly",
        "bus",  # 3 letters: kept
        "address",  # '-ss' is not a plural
        "return",
        "delivery",
        "cafés",  # only Latin ASCII words lose their 's'
    ]
    assert words("ＲＥＴＵＲＮＳ_x") == ["return", "x"]  # NFKC, '_' separates
    assert word_key("تم  التوصيل!") == "تمالتوصيل"
    assert word_key("--") == ""


def test_a_full_header_name_with_brackets_in_it_is_not_cut_at_the_bracket() -> None:
    hm = map_headers(["Card ID", "Date", "Time(stamp)"])  # 'timestamp', not 'time' + a note
    assert (hm.timestamp, hm.time) == (2, None)


def test_the_missing_columns_reason_in_full() -> None:
    with pytest.raises(FileRejected) as none:
        map_headers([])
    assert str(none.value) == "missing required column(s): card id, timestamp; found: (no columns)"
    twelve = ["", "x" * 40, *[f"c{i}" for i in range(10)]]
    with pytest.raises(FileRejected) as shown:
        map_headers(twelve)
    assert str(shown.value) == (
        "missing required column(s): card id, timestamp; found: '', "
        f"'{'x' * 31}, " + ", ".join(f"'c{i}'" for i in range(10))
    )
    with pytest.raises(FileRejected) as more:
        map_headers([*twelve, "Card ID"])
    assert str(more.value).endswith("'c9', … (13 columns)")
    assert str(more.value).startswith("missing required column(s): timestamp; found: ")


def test_a_file_without_a_header_counts_the_rows_after_the_closest_candidate() -> None:
    def rejected(lines: list[list[str]]) -> FileRejected:
        with pytest.raises(FileRejected) as exc:
            find_header(iter([(i + 1, r) for i, r in enumerate(lines)]))
        return exc.value

    got = rejected([["Report"], ["Card ID", "Phone"], ["A1", "05"], [""], ["A2", "05"]])
    assert got.rows_read == 2 and "missing required column(s): timestamp" in str(got)
    got = rejected([["Card ID"], ["x"], ["Card ID", "Phone"], ["A1", "05"]])  # a better one
    assert got.rows_read == 1
    got = rejected([["Card ID", "Phone"], ["Card ID"], ["A1", "05"]])  # a worse one: a row
    assert got.rows_read == 2
    with pytest.raises(FileRejected) as empty:
        find_header(iter([(1, []), (2, ["", " "])]))
    assert str(empty.value) == "file is empty: no header row"


@pytest.mark.parametrize(
    ("raw", "utc"),
    [
        ("2024-06-03 10:00 UTC+530", "2024-06-03T04:30:00+00:00"),  # H then MM
        ("2024-06-03 10:00 GMT-0330", "2024-06-03T13:30:00+00:00"),
        ("2024-06-03T10:00:00[utc]", "2024-06-03T10:00:00+00:00"),  # any case
        ("2024-06-03T10:00:00[z]", "2024-06-03T10:00:00+00:00"),
        ("2024-06-03T10:00:00[gmt]", "2024-06-03T10:00:00+00:00"),
    ],
)
def test_zone_spellings(raw: str, utc: str) -> None:
    assert TimestampParser("Asia/Dubai", now=lambda: NOW_2026).parse(raw).isoformat() == utc


def test_header_zone_values_and_reasons() -> None:
    from cardstatus.normalise.timestamp import header_zone

    assert header_zone("UTC") is UTC and header_zone("gmt") is UTC and header_zone("Z") is UTC
    assert str(header_zone("UTC +4")) == "UTC+04:00"
    with pytest.raises(ValueError) as far:
        header_zone("UTC+25")
    assert str(far.value) == "time zone 'UTC+25' is out of range"
    with pytest.raises(ValueError) as unknown:
        header_zone("EST")
    assert str(unknown.value) == (
        "time zone 'EST' is not one this service reads; write UTC, GST, UTC+04:00 or a zone "
        "name such as Asia/Dubai"
    )


@pytest.mark.parametrize("raw", ["01/13/2024 10:00", "12/13/2024 10:00", "09/30/2024 10:00"])
def test_month_first_evidence_at_the_month_edges(raw: str) -> None:
    from cardstatus.errors import DateOrderEvidence

    with pytest.raises(DateOrderEvidence):
        TimestampParser("Asia/Dubai", now=lambda: NOW_2026).parse(raw)


def test_a_bracketed_zone_after_an_offset_and_without_one() -> None:
    parse = TimestampParser("Asia/Dubai", now=lambda: NOW_2026).parse
    # The written offset rules over the bracketed zone when they disagree.
    assert parse("2024-06-03T10:00:00+05:00[Asia/Dubai]").isoformat() == (
        "2024-06-03T05:00:00+00:00"
    )
    assert parse("2024-06-03T10:00:30[Europe/London]").isoformat() == "2024-06-03T09:00:30+00:00"
    assert parse("2024-06-03T10:00[Europe/London]").isoformat() == "2024-06-03T09:00:00+00:00"
    with pytest.raises(RowError) as old:
        parse("1999-06-03T10:00:00[Asia/Dubai]")
    assert str(old.value) == "timestamp '1999-06-03T10:00:00[Asia/Dubai]' is before 2000"
    with pytest.raises(RowError) as empty:
        parse(" \u00a0")
    assert str(empty.value) == "timestamp is empty"
