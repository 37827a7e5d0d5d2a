"""Encoding, dialect and CSV framing: every form SPEC §2 lists, streamed."""

from __future__ import annotations

import codecs
import io

import pytest

from cardstatus.decode import SNIFF_BYTES, detect_delimiter, detect_encoding, open_csv
from cardstatus.model import FileRejected

ROWS = [["Card ID", "Timestamp", "Comment"], ["ZYW1", "2024-01-01T00:00:00Z", 'café, "ok"']]


def records(data: bytes, max_bytes: int = 1 << 30, max_field: int = 10_000) -> list:
    return list(open_csv(io.BytesIO(data), max_bytes).records(max_field))


def csv_text(delimiter: str = ",", newline: str = "\n", final_newline: bool = True) -> str:
    lines = []
    for row in ROWS:
        cells = []
        for cell in row:
            if any(c in cell for c in (delimiter, '"', "\n")):
                cell = '"' + cell.replace('"', '""') + '"'
            cells.append(cell)
        lines.append(delimiter.join(cells))
    text = newline.join(lines)
    return text + newline if final_newline else text


@pytest.mark.parametrize(
    ("encoding", "bom", "expected"),
    [
        ("utf-8", b"", "utf-8"),
        ("utf-8", codecs.BOM_UTF8, "utf-8-sig"),
        ("utf-16-le", codecs.BOM_UTF16_LE, "utf-16"),
        ("utf-16-be", codecs.BOM_UTF16_BE, "utf-16"),
        ("utf-16-le", b"", "utf-16-le"),
        ("utf-16-be", b"", "utf-16-be"),
        ("cp1252", b"", "cp1252"),
    ],
)
def test_every_encoding_is_detected_and_decoded(encoding: str, bom: bytes, expected: str) -> None:
    data = bom + csv_text().encode(encoding)
    assert detect_encoding(data[:SNIFF_BYTES]) == expected
    assert [r for _, r in records(data)] == ROWS


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("final_newline", [True, False])
def test_delimiters_line_endings_and_missing_final_newline(
    delimiter: str, newline: str, final_newline: bool
) -> None:
    data = csv_text(delimiter, newline, final_newline).encode()
    assert [r for _, r in records(data)] == ROWS


def test_quoted_fields_keep_delimiters_quotes_and_newlines_with_start_lines() -> None:
    data = b'Card ID,Comment\n\nA1,"line one\nline two, with ""quotes"""\n\nA2,x\n'
    got = records(data)
    assert got == [
        (1, ["Card ID", "Comment"]),
        (2, []),
        (3, ["A1", 'line one\nline two, with "quotes"']),
        (5, []),
        (6, ["A2", "x"]),
    ]


def test_delimiter_is_chosen_from_the_header_outside_quotes() -> None:
    assert detect_delimiter('"a,b";"c,d";e\n') == ";"
    assert detect_delimiter("\n\nCard ID\tTimestamp\n") == "\t"
    assert detect_delimiter("single column\n") == ","


def test_invalid_utf8_late_in_a_utf8_file_falls_back_to_cp1252_per_byte() -> None:
    head = "Card ID,Comment\n" + "A1,plain\n" * (SNIFF_BYTES // 9 + 10)
    data = head.encode() + "A2,caf\xe9 – ok\n".encode("cp1252")
    got = records(data)
    assert got[-1][1] == ["A2", "café – ok"]


def test_nul_bytes_are_removed_and_counted() -> None:
    source = open_csv(io.BytesIO(b"Card ID,Comment\nA1,x\x00y\n"), 1 << 20)
    got = list(source.records(10_000))
    assert got[-1][1] == ["A1", "xy"]
    assert source.nul_bytes_removed == 1


def test_unterminated_quote_beyond_the_field_limit_rejects_the_file() -> None:
    data = b'Card ID,Comment\nA1,"never closed\n' + b"x" * 5000
    with pytest.raises(FileRejected, match="malformed CSV"):
        records(data, max_field=1000)


def test_size_limit_is_enforced_while_streaming() -> None:
    with pytest.raises(FileRejected, match="larger than the limit"):
        records(b"Card ID\n" + b"A1\n" * 100_000, max_bytes=10_000)


def test_hash_and_size_cover_every_byte_even_unconsumed_ones() -> None:
    import hashlib

    data = b"Card ID\n" + b"A1\n" * 50_000
    source = open_csv(io.BytesIO(data), 1 << 30)
    next(iter(source.records(10_000)))
    source.reader.drain()
    assert source.reader.size == len(data)
    assert source.reader.sha256 == hashlib.sha256(data).hexdigest()
