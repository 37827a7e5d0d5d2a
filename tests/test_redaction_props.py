"""Phones in free text (issue 18 N12, cardstatus.model.redact_phones), property-tested: every
phone in any of the usual separators is masked to its last 4 digits, wherever it sits in a
sentence; numbers that are not phones (byte and row counts, ids after their key, timestamps,
dates, UUIDs, sizes, decimals) are never touched."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from cardstatus.model import redact_phones

PROPS = settings(max_examples=300, deadline=None, derandomize=True, database=None)

SEPARATORS = [" ", "-", ".", "/", "_", "\u2013", "\u2014", "\u00a0", " - ", ") ", "  "]
WORDS = st.sampled_from(
    ["call", "me", "on", "or", "ring", "not", "home", "at", "phone:", "tel", "x", "(", ")", ","]
)


@st.composite
def phones(draw: st.DrawFn) -> tuple[str, str]:
    """(written form, its digits): 9 to 12 digits in 2 to 4 groups with mixed separators."""
    digits = draw(st.text("0123456789", min_size=9, max_size=12))
    cuts = sorted(draw(st.sets(st.integers(1, len(digits) - 1), min_size=1, max_size=3)))
    groups = [digits[a:b] for a, b in zip([0, *cuts], [*cuts, len(digits)], strict=True)]
    written = groups[0]
    for group in groups[1:]:
        written += draw(st.sampled_from(SEPARATORS)) + group
    if len(groups) == 2 and written[len(groups[0])] == ".":
        written = written.replace(".", "-")  # one '.' between two numbers is a decimal
    if draw(st.booleans()):
        written = "+" + written
    return written, digits


@given(phone=phones(), before=st.lists(WORDS, max_size=3), after=st.lists(WORDS, max_size=3))
@PROPS
def test_every_phone_is_masked_to_its_last_four_digits(
    phone: tuple[str, str], before: list[str], after: list[str]
) -> None:
    written, digits = phone
    text = " ".join([*before, written, *after])
    redacted = redact_phones(text)
    # Nothing but the last 4 digits survives (the words around carry no digits).
    assert re.sub(r"\D", "", redacted) == digits[-4:], (text, redacted)
    assert "*" * (len(digits) - 4) + digits[-4:] in redacted, (text, redacted)


@given(first=phones(), second=phones())
@PROPS
def test_two_phones_side_by_side_are_both_masked(
    first: tuple[str, str], second: tuple[str, str]
) -> None:
    text = f"{first[0]} {second[0]}"
    redacted = redact_phones(text)
    # At most the last 4 digits of each phone survive.
    assert len(re.sub(r"\D", "", redacted)) <= 8, (text, redacted)
    assert redacted.endswith(second[1][-4:]), (text, redacted)


COUNT = st.integers(0, 10**15)


@st.composite
def not_phones(draw: st.DrawFn) -> str:
    n = draw(COUNT)
    kind = draw(st.integers(0, 11))
    if kind == 0:
        return f"{n} {draw(st.sampled_from(['bytes', 'rows', 'lines', 'MB', 'KiB', 'characters']))}"
    if kind == 1:
        return f"{n}{draw(st.sampled_from(['ms', 's', 'B', '%']))}"
    if kind == 2:
        key = draw(st.sampled_from(["rows", "size_bytes", "file_id", "accepted", "duration_ms"]))
        return f"{key}={n}"
    if kind == 3:
        return f'"{draw(st.sampled_from(["rows_total", "size_bytes", "file_id", "id"]))}": {n}'
    if kind == 4:
        return f"line {n}"
    if kind == 5:
        when = draw(
            st.datetimes(datetime(1900, 1, 1), datetime(2199, 12, 31), timezones=st.just(UTC))
        )
        return when.isoformat()
    if kind == 6:
        when = draw(st.datetimes(datetime(1900, 1, 1), datetime(2199, 12, 31)))
        return when.strftime(
            draw(st.sampled_from(["%d-%m-%Y", "%d/%m/%Y", "%Y/%m/%d", "%Y-%m-%d %H:%M:%S"]))
        )
    if kind == 7:
        return str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1))))
    if kind == 8:
        return f"{n}.{draw(st.integers(0, 10**6))}"  # a decimal
    if kind == 9:
        return f"{draw(st.integers(0, 10**6))}.{draw(st.integers(0, 9))} MB"
    if kind == 10:
        return f"{n:,}"  # thousands separators: no group of 7 digits
    return f"ZYW{n}"  # an id glued to letters


@given(value=not_phones(), before=st.lists(WORDS, max_size=2), after=st.lists(WORDS, max_size=2))
@PROPS
def test_numbers_that_are_not_phones_are_never_masked(
    value: str, before: list[str], after: list[str]
) -> None:
    text = " ".join([*before, value, *after])
    assert redact_phones(text) == text


def test_the_reviews_examples() -> None:
    text = "call me on 058/594/9014 or 058_594_9014 or 058\u2013594\u20139014"
    assert redact_phones(text) == "call me on ******9014 or ******9014 or ******9014"
    assert redact_phones("card id '058/594/9014' is not") == "card id '******9014' is not"
    assert redact_phones("customer 0585949014 - Delivered.csv") == (
        "customer ******9014 - Delivered.csv"
    )
    assert redact_phones("not home, ring +971501112222 on 02-03-2024") == (
        "not home, ring ********2222 on 02-03-2024"
    )
    kept = "applied rows=1200000 accepted=1199999 size 109500000 bytes file_id=123456789"
    assert redact_phones(kept) == kept
