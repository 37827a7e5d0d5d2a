"""A card id that is a phone is not a card id (SPEC §2 "Card ids are not phones", README
"Partner files and reports", issue 18 / security review r2 N5), and a deployment's own card-id
pattern (CARD_ID_PATTERN): the rule alone, then through ingestion on a real PostgreSQL."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from cardstatus.config import load_settings
from cardstatus.ingest import SourceInfo, ingest
from cardstatus.model import RowError
from cardstatus.normalise.card_id_rule import PHONE_IN_CARD_ID, CardIdRule

PHONE_FORMS = [
    "0585949014",  # trunk-prefixed
    "585949014",  # national, 9 digits
    "971585949014",  # country-prefixed
    "00971585949014",  # international prefix
    "+971585949014",  # E.164
    "+971 58 594 9014",  # spaces
    "058-594-9014",  # dashes (a valid card-id shape)
    "(058) 594 9014",  # brackets
    '"0585949014"',  # wrapped in quotes
    "12015550123",  # 9+ digits, another country
    "123456789",  # 9+ digits, not a valid number anywhere: still a phone shape
]


@pytest.mark.parametrize("cell", PHONE_FORMS)
def test_a_phone_in_the_card_id_column_is_rejected(cell: str) -> None:
    with pytest.raises(RowError, match="card-id column holds a phone number"):
        CardIdRule("AE")(cell)


@pytest.mark.parametrize(
    "cell, expected",
    [
        ("ZYW7631", "ZYW7631"),
        ("zyw7631", "ZYW7631"),
        ("12345678", "12345678"),  # 8 digits, not a valid AE number
        ("5859490", "5859490"),
        ("AB-0585949014", "AB-0585949014"),  # has letters: a card id
        ("0585949014X", "0585949014X"),
    ],
)
def test_card_ids_that_are_not_phones_pass(cell: str, expected: str) -> None:
    assert CardIdRule("AE")(cell) == expected


def test_a_valid_short_number_of_the_partners_region_is_a_phone() -> None:
    # 8 digits: a Dubai landline without its trunk 0 (04 234 5678) is a valid AE number, so it
    # is a phone for an AE partner; for a partner in another region it is a card id
    with pytest.raises(RowError, match="phone number"):
        CardIdRule("AE")("42345678")
    assert CardIdRule("GB")("42345678") == "42345678"
    assert not CardIdRule("AE").is_phone("ZYW7631")


def test_the_deployments_own_pattern_applies_after_the_builtin_checks() -> None:
    rule = CardIdRule("AE", r"ZYW[0-9]{4,7}")
    assert rule("zyw7631") == "ZYW7631"
    with pytest.raises(RowError, match="CARD_ID_PATTERN"):
        rule("ABC123")
    with pytest.raises(RowError, match="phone number"):
        rule("0585949014")


def test_a_card_id_that_is_not_a_phone_keeps_its_own_reason() -> None:
    rule = CardIdRule("AE")
    with pytest.raises(RowError) as missing:
        rule(None)
    assert str(missing.value) == "card id is missing"
    with pytest.raises(RowError) as shape:
        rule("ZYW 8827")
    assert "is not 1-64 letters, digits" in str(shape.value)
    assert rule("A") == "A"  # one letter: no phone check, no error
    assert rule("7") == "7"


def test_a_quoted_phone_with_separators_in_the_card_id_column_is_a_phone() -> None:
    # not a card id (spaces), and a phone once the quotes are trimmed
    for cell in ('"+971 58 594 9014"', "\u201c058 594 9014\u201d", "'0585949014 '"):
        with pytest.raises(RowError, match="card-id column holds a phone number"):
            CardIdRule("AE")(cell)


def test_a_card_id_of_a_digit_then_separators_and_phone_digits_is_a_phone() -> None:
    # a valid card-id shape starting with a digit: the phone check applies whatever the
    # second character is
    for cell in ("0-585-949-014", "0_585949014", "5-85949014"):
        with pytest.raises(RowError, match="card-id column holds a phone number"):
            CardIdRule("AE")(cell)


def test_the_card_id_pattern_reason_in_full() -> None:
    with pytest.raises(RowError) as info:
        CardIdRule("AE", r"ZYW[0-9]{4,7}")("abc123")
    assert str(info.value) == (
        "card id 'ABC123' does not match this deployment's card-id pattern (CARD_ID_PATTERN)"
    )


def test_a_bad_card_id_pattern_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARD_ID_PATTERN", "ZYW[0-9")
    with pytest.raises(ValueError, match="CARD_ID_PATTERN"):
        load_settings()
    monkeypatch.setenv("CARD_ID_PATTERN", "ZYW[0-9]+")
    assert load_settings().card_id_pattern == "ZYW[0-9]+"


def _ingest(conn: Any, data: bytes, name: str) -> dict[str, Any]:
    source = SourceInfo(key=f"incoming/acme/{name}", partner="acme")
    return ingest(conn, io.BytesIO(data), source, load_settings())


def _query(conn: Any, sql: str) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql)
        rows = cur.fetchall()
    conn.commit()
    return rows


def test_swapped_columns_and_phone_card_ids_are_rejected_and_reach_no_card_or_event(
    db: Any,
) -> None:
    data = (
        b"Card ID,User contact,Timestamp\n"
        b"0585949014,ZYW9999,2023-11-14T12:34:56Z\n"  # columns swapped (N5)
        b"971501234567,0585949014,2023-11-14T12:34:56Z\n"
        b"+971 50 123 4567,,2023-11-14T12:34:56Z\n"
        b"ZYW7631,0585949014,2023-11-14T12:34:56Z\n"
    )
    report = _ingest(db, data, "swapped - Delivered.csv")
    assert report["counts"]["accepted"] == 1 and report["counts"]["rejected"] == 3
    assert [r["line"] for r in report["rejects"]] == [2, 3, 4]
    assert {r["reason"] for r in report["rejects"]} == {PHONE_IN_CARD_ID}
    assert _query(db, "SELECT card_id FROM card") == [("ZYW7631",)]
    assert _query(db, "SELECT detail->>'card_id' FROM status_outbox") == [("ZYW7631",)]
    assert "585949014" not in json.dumps(report) and "501234567" not in json.dumps(report)


def test_a_custom_card_id_pattern_rejects_rows_outside_it(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CARD_ID_PATTERN", "ZYW[0-9]{4,7}")
    data = b"Card ID,Timestamp\nZYW7631,2023-11-14T12:34:56Z\nTOTAL-2,2023-11-14T12:34:56Z\n"
    report = _ingest(db, data, "pattern - Delivered.csv")
    assert report["counts"]["accepted"] == 1 and report["counts"]["rejected"] == 1
    assert "CARD_ID_PATTERN" in report["rejects"][0]["reason"]
    assert _query(db, "SELECT card_id FROM card") == [("ZYW7631",)]
