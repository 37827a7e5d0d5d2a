"""Property tests for cardstatus.normalise: fast paths ≡ reference paths, and safety invariants."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from cardstatus.model import RowError
from cardstatus.normalise import (
    CARD_ID_RE,
    COMMENT_MAX_CHARS,
    TimestampParser,
    _normalise_phone_reference,
    _normalise_phone_uncached,
    _phone_fast,
    clean_comment,
    map_headers,
    normalise_card_id,
    normalise_phone,
)

PROPS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOW = datetime(2024, 6, 1, tzinfo=UTC)

# Regions with and without a phone fast path (see normalise._fast_path_for).
REGIONS = [
    "AE",
    "SA",
    "GB",
    "US",
    "IN",
    "DE",
    "EG",
    "QA",
    "KW",
    "FR",
    "IT",
    "PK",
    "JE",
    "NO",
    "FI",
    "MA",
    "RE",
    "YT",
    "GP",
    "EH",
]

# --------------------------------------------------------------------------- phones


def _examples(region: str) -> list[str]:
    """Valid national significant numbers of every type phonenumbers knows for a region."""
    out = []
    for kind in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE,
        phonenumbers.PhoneNumberType.TOLL_FREE,
        phonenumbers.PhoneNumberType.PREMIUM_RATE,
        phonenumbers.PhoneNumberType.VOIP,
        phonenumbers.PhoneNumberType.UAN,
    ):
        num = phonenumbers.example_number_for_type(region, kind)
        if num is not None:
            out.append(phonenumbers.national_significant_number(num))
    return out


EXAMPLES = {r: _examples(r) for r in REGIONS}


@st.composite
def phone_shapes(draw: st.DrawFn) -> tuple[str, str]:
    """Digit strings in the shapes partners send, near and at valid numbers of a region."""
    region = draw(st.sampled_from(REGIONS))
    cc = str(phonenumbers.country_code_for_region(region))
    other_cc = draw(st.sampled_from(["971", "966", "44", "1", "91", "49", "20"]))
    if draw(st.booleans()) and EXAMPLES[region]:
        nsn = list(draw(st.sampled_from(EXAMPLES[region])))
        # mutate a few digits, sometimes add or drop one: lands on valid and invalid numbers
        for _ in range(draw(st.integers(0, 3))):
            nsn[draw(st.integers(0, len(nsn) - 1))] = draw(st.sampled_from("0123456789"))
        edit = draw(st.sampled_from(["keep", "keep", "add", "drop"]))
        if edit == "add":
            nsn.append(draw(st.sampled_from("0123456789")))
        elif edit == "drop" and len(nsn) > 1:
            nsn.pop()
        body = "".join(nsn)
    else:
        body = draw(st.text("0123456789", min_size=0, max_size=16))
    prefix = draw(
        st.sampled_from(
            ["", "", "0", "00", "+", cc, "+" + cc, "00" + cc, "0" + cc, other_cc, "+" + other_cc]
        )
    )
    raw = prefix + body
    decorate = draw(st.sampled_from(["none", "quotes", "spaces", "dashes", "brackets"]))
    if decorate == "quotes":
        raw = f'"{raw}"'
    elif decorate == "spaces" and len(raw) > 3:
        raw = raw[:3] + " " + raw[3:]
    elif decorate == "dashes" and len(raw) > 5:
        raw = raw[:2] + "-" + raw[2:5] + "-" + raw[5:]
    elif decorate == "brackets" and len(raw) > 3:
        raw = "(" + raw[:3] + ") " + raw[3:]
    return raw, region


@PROPS
@given(phone_shapes())
@example(("971585949014", "AE"))
@example(("0585949014", "AE"))
@example(("+971585949014", "AE"))
@example(("4915123456789", "DE"))
@example(("97433123456", "QA"))
@example(("971800123", "AE"))
def test_phone_fast_path_equals_reference_on_digit_shapes(case: tuple[str, str]) -> None:
    raw, region = case
    expected = _normalise_phone_reference(raw, region)
    assert _normalise_phone_uncached(raw, region) == expected
    assert normalise_phone(raw, region) == expected


@PROPS
@given(phone_shapes())
def test_phone_fast_path_only_claims_what_phonenumbers_confirms(case: tuple[str, str]) -> None:
    raw, region = case
    compact = re.sub(r"[\s\-().\"]", "", raw)
    plus, digits = compact.startswith("+"), compact.lstrip("+")
    fast = _phone_fast(plus, digits, region) if digits else None
    if fast is None:
        return
    num = phonenumbers.parse(("+" if plus else "") + digits, region)
    assert phonenumbers.is_valid_number(num)
    assert phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164) == fast


@PROPS
@given(st.text(max_size=60), st.sampled_from(REGIONS))
@example("9.71585E+11", "AE")
@example("\x00", "AE")
@example('="\'"', "AE")
@example("\u00b2\u00b3", "AE")  # superscript digits: isdigit() but not decimal
def test_phone_never_raises_and_matches_reference(raw: str, region: str) -> None:
    result = normalise_phone(raw, region)
    assert result == _normalise_phone_reference(raw, region)
    assert (result.e164 is None) or (result.warning is None)
    if result.e164 is not None:
        assert re.fullmatch(r"\+[1-9][0-9]{5,15}", result.e164)


def _digits(raw: str) -> tuple[str, str]:
    ascii_digits = "".join(str(unicodedata.decimal(c)) for c in raw if c.isdecimal())
    every_digit = "".join(c for c in raw if c.isdigit())
    return ascii_digits, every_digit


@PROPS
@given(
    st.one_of(
        st.text(max_size=40),
        st.text("0123456789 +-().eE", max_size=25),
        phone_shapes().map(lambda case: case[0]),
    ),
    st.sampled_from(REGIONS),
)
@example("05859490141", "AE")
@example("9.71585E+11", "AE")
def test_phone_warning_never_contains_the_full_number(raw: str, region: str) -> None:
    result = normalise_phone(raw, region)
    if result.warning is None:
        return
    for digits in _digits(raw):
        if digits:
            assert digits not in result.warning


# --------------------------------------------------------------------------- timestamps

TIMEZONES = ["Asia/Dubai", "Europe/London", "America/New_York", "Asia/Kolkata", "UTC"]

instants = st.datetimes(
    min_value=datetime(2000, 1, 2), max_value=datetime(2024, 5, 30), timezones=st.just(UTC)
)


def _fmt_local(local: datetime, kind: str, day_first: bool) -> str:
    dm = f"{local:%d}-{local:%m}" if day_first else f"{local:%m}-{local:%d}"
    if kind == "dmy_hm":
        return f"{dm}-{local:%Y} {local:%H:%M}"
    if kind == "dmy_hms_slash":
        return f"{dm.replace('-', '/')}/{local:%Y} {local:%H:%M:%S}"
    if kind == "dmy_12h":
        hour = local.hour % 12 or 12
        return f"{dm}-{local:%Y} {hour}:{local:%M} {'PM' if local.hour >= 12 else 'AM'}"
    if kind == "dmy_12h_nospace":
        hour = local.hour % 12 or 12
        return f"{dm}-{local:%Y} {hour:02d}:{local:%M}{'pm' if local.hour >= 12 else 'am'}"
    if kind == "ymd_hms":
        return f"{local:%Y-%m-%d %H:%M:%S}"
    if kind == "ymd_hm_dots":
        return f"{local:%Y.%m.%d %H:%M}"
    raise AssertionError(kind)


LOCAL_KINDS = ["dmy_hm", "dmy_hms_slash", "dmy_12h", "dmy_12h_nospace", "ymd_hms", "ymd_hm_dots"]
MINUTE_KINDS = {"dmy_hm", "dmy_12h", "dmy_12h_nospace", "ymd_hm_dots"}


@PROPS
@given(instants, st.sampled_from(TIMEZONES), st.sampled_from(LOCAL_KINDS), st.booleans())
def test_timestamp_local_forms_round_trip(
    instant: datetime, tz: str, kind: str, day_first: bool
) -> None:
    """Independent reference: format the local wall time with strftime, read it back."""
    local = instant.astimezone(ZoneInfo(tz))
    # Wall times that occur twice (DST end) are read as the first occurrence (fold=0).
    assume(local.fold == 0 and local.replace(fold=1).utcoffset() == local.utcoffset())
    raw = _fmt_local(local, kind, day_first)
    parser = TimestampParser(tz, day_first=day_first, now=lambda: NOW)
    expected = instant.replace(microsecond=0)
    if kind in MINUTE_KINDS:
        expected = expected.replace(second=0)
    assert parser.parse(raw) == expected
    assert parser._parse_general(raw) == expected


@PROPS
@given(
    instants,
    st.sampled_from(["Z", "+00:00", "+04:00", "-05:30", "+0545", "-03"]),
    st.sampled_from(["T", " "]),
    st.booleans(),
    st.sampled_from(TIMEZONES),
)
def test_timestamp_iso_with_offset_is_exact_in_any_partner_timezone(
    instant: datetime, zone: str, sep: str, fraction: bool, tz: str
) -> None:
    offset = timedelta(0) if zone == "Z" else _offset(zone)
    wall = (instant + offset).replace(tzinfo=None)
    text = wall.isoformat(sep=sep, timespec="microseconds" if fraction else "seconds") + zone
    value = TimestampParser(tz, now=lambda: NOW).parse(text)
    assert value == (instant if fraction else instant.replace(microsecond=0))
    assert value.utcoffset() == timedelta(0)


def _offset(zone: str) -> timedelta:
    sign = -1 if zone[0] == "-" else 1
    body = zone[1:].replace(":", "")
    return sign * timedelta(hours=int(body[:2]), minutes=int(body[2:4] or 0))


def _outcome(parser: TimestampParser, raw: str, general: bool) -> object:
    try:
        return parser._parse_general(raw) if general else parser.parse(raw)
    except RowError as exc:
        return ("RowError", str(exc))


fixed_width_text = st.builds(
    lambda chars: "".join(chars),
    st.lists(st.sampled_from("0123456789-/. :TZ"), min_size=14, max_size=21),
)


@st.composite
def near_fast_forms(draw: st.DrawFn) -> str:
    """Valid-looking fixed-width timestamps with one character possibly disturbed."""
    y = draw(st.integers(1990, 2030))
    a = draw(st.integers(0, 39))
    b = draw(st.integers(0, 39))
    h = draw(st.integers(0, 29))
    mi = draw(st.integers(0, 69))
    s = draw(st.integers(0, 69))
    sep = draw(st.sampled_from("-/."))
    form = draw(st.integers(0, 4))
    if form == 0:
        text = f"{y:04d}{sep}{a:02d}{sep}{b:02d}T{h:02d}:{mi:02d}:{s:02d}Z"
    elif form == 1:
        text = f"{y:04d}{sep}{a:02d}{sep}{b:02d} {h:02d}:{mi:02d}:{s:02d}"
    elif form == 2:
        text = f"{y:04d}{sep}{a:02d}{sep}{b:02d} {h:02d}:{mi:02d}"
    elif form == 3:
        text = f"{a:02d}{sep}{b:02d}{sep}{y:04d} {h:02d}:{mi:02d}"
    else:
        text = f"{a:02d}{sep}{b:02d}{sep}{y:04d} {h:02d}:{mi:02d}:{s:02d}"
    if draw(st.booleans()):
        i = draw(st.integers(0, len(text) - 1))
        text = text[:i] + draw(st.sampled_from("0123456789-/. :TZ\u0661\u00b2x")) + text[i + 1 :]
    return text


@PROPS
@given(
    st.one_of(near_fast_forms(), fixed_width_text, st.text(max_size=30)),
    st.sampled_from(TIMEZONES),
    st.booleans(),
)
@example("2023-11-13T09:34:56Z", "Asia/Dubai", True)
@example("13-11-2023 14:00", "Asia/Dubai", True)
@example("2023-11-13 09:34:5\u00b2", "Asia/Dubai", True)
@example("31-02-2023 10:00", "Asia/Dubai", True)
def test_timestamp_fast_path_equals_general_parser(raw: str, tz: str, day_first: bool) -> None:
    parser = TimestampParser(tz, day_first=day_first, now=lambda: NOW)
    assert _outcome(parser, raw, general=False) == _outcome(parser, raw, general=True)


@PROPS
@given(
    st.one_of(st.text(max_size=80), near_fast_forms()), st.sampled_from(TIMEZONES), st.booleans()
)
def test_timestamp_parse_raises_only_row_error(raw: str, tz: str, day_first: bool) -> None:
    parser = TimestampParser(tz, day_first=day_first, now=lambda: NOW)
    try:
        value = parser.parse(raw)
    except RowError as exc:
        message = str(exc)
        assert message
        assert len(message) < 160
        assert not any(unicodedata.category(c) == "Cc" for c in message)
        return
    assert value.utcoffset() == timedelta(0)
    assert datetime(1999, 12, 31, tzinfo=UTC) <= value <= NOW + timedelta(days=1)


# --------------------------------------------------------------------------- card ids

card_ids = st.from_regex(CARD_ID_RE, fullmatch=True)


@PROPS
@given(st.text(max_size=80))
@example("'ZYW8827'")
@example("ZYW8827\u00a0")
def test_card_id_result_always_matches_the_rule(raw: str) -> None:
    try:
        result = normalise_card_id(raw)
    except RowError as exc:
        assert len(str(exc)) < 160
        return
    assert re.fullmatch(r"[A-Z0-9][A-Z0-9_-]{0,63}", result)
    assert result in raw.upper()  # trimmed and upper-cased only


@PROPS
@given(card_ids, st.sampled_from(["", " ", "  ", "\t", '"', "'", '"""']))
def test_card_id_wrapped_in_blanks_or_quotes_is_kept_upper_cased(card: str, wrap: str) -> None:
    closing = wrap[::-1]
    assert normalise_card_id(f"{wrap}{card}{closing}") == card.upper()


# --------------------------------------------------------------------------- comments

INVISIBLE_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"


@PROPS
@given(st.text(max_size=700))
def test_clean_comment_invariants(raw: str) -> None:
    result = clean_comment(raw)
    if result is None:
        assert not raw.strip() or all(
            unicodedata.category(c) == "Cc"
            or c.isspace()
            or c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
            for c in raw
        )
        return
    assert 0 < len(result) <= COMMENT_MAX_CHARS
    assert result == result.strip()
    assert not any(unicodedata.category(c) == "Cc" for c in result)
    assert not re.search(r"\s\s", result)
    assert clean_comment(result) == result  # idempotent


# --------------------------------------------------------------------------- headers


@PROPS
@given(st.permutations(["ID ", "Card ID", "User contact", "Timestamp", "Comment", "Extra"]))
def test_map_headers_follows_the_columns(header: list[str]) -> None:
    hm = map_headers(header)
    assert header[hm.card_id] == "Card ID"
    assert header[hm.timestamp] == "Timestamp"
    assert hm.phone is not None and header[hm.phone] == "User contact"
    assert hm.comment is not None and header[hm.comment] == "Comment"
    assert hm.row_id is not None and header[hm.row_id] == "ID "
    assert hm.status is None
    assert hm.width == 6


@pytest.mark.parametrize("region", ["AE", "SA"])
def test_phone_shapes_strategy_reaches_the_fast_path(region: str) -> None:
    """Guard against a vacuous equivalence test: example numbers must take the fast path."""
    hits = [n for n in EXAMPLES[region] if _phone_fast(False, n, region) is not None]
    assert hits
