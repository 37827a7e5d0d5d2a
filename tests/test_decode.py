"""Encoding, dialect and CSV framing: every form README "Partner files and reports" lists,
streamed."""

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


def test_unterminated_quote_beyond_the_field_limit_rejects_its_row_not_the_file() -> None:
    data = b'Card ID,Comment\nA1,"never closed\n' + b"x" * 5000
    got = records(data, max_field=1000)
    assert got[1] == (2, [])
    assert got[1][1].__class__.__name__ == "BrokenRecord"
    assert "5,013 characters long, over the limit of 1,000" in got[1][1].reason


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


# --------------------------------------------------------------------------- broken quoting


def watched(data: bytes, card: int = 0, ts: int = 2, width: int | None = None) -> list:
    """Records after the header, with the header's shape watched (as the pipeline does)."""
    source = open_csv(io.BytesIO(data), 1 << 30)
    got = source.records(10_000)
    header = next(got)
    source.watch_rows(card, ts, width)
    return [
        header,
        *((line, type(r).__name__, list(r), getattr(r, "reason", "")) for line, r in got),
    ]


REVIEW_REPRO = (
    b"Card ID,User contact,Timestamp,Comment\r\n"
    b'DQ1,0501112221,25-11-2026 10:00,"left at door\r\n'
    b"DQ2,0501112222,25-11-2026 10:01,ok\r\n"
    b"DQ3,0501112223,25-11-2026 10:02,\r\n"
    b'DQ4,"""0501112224""",25-11-2026 10:03,fine\r\n'
    b"DQ5,0501112225,25-11-2026 10:04,done\r\n"
)


def test_an_unclosed_quote_does_not_swallow_the_following_rows() -> None:
    got = watched(REVIEW_REPRO)
    assert got[0] == (1, ["Card ID", "User contact", "Timestamp", "Comment"])
    line, kind, cells, reason = got[1]
    assert (line, kind, cells) == (2, "BrokenRecord", [])
    assert "not closed before line 3, which reads as a data row" in reason
    assert "050" not in reason  # never the swallowed text
    assert got[2:] == [
        (3, "list", ["DQ2", "0501112222", "25-11-2026 10:01", "ok"], ""),
        (4, "list", ["DQ3", "0501112223", "25-11-2026 10:02", ""], ""),
        (5, "list", ["DQ4", '"0501112224"', "25-11-2026 10:03", "fine"], ""),
        (6, "list", ["DQ5", "0501112225", "25-11-2026 10:04", "done"], ""),
    ]


def test_a_runaway_quote_after_a_genuine_continuation_line_is_still_stopped() -> None:
    data = b'Card ID,Timestamp,Comment\nA1,2024-01-01 10:00,"left at\nthe door\nA2,2024-01-01 10:05,x\n'
    got = watched(data, 0, 1)
    assert got[1][:2] == (2, "BrokenRecord")
    assert "before line 4" in got[1][3]
    assert got[2] == (4, "list", ["A2", "2024-01-01 10:05", "x"], "")


def test_genuine_multi_line_comments_stay_legal() -> None:
    data = (
        b'Card ID,Timestamp,Comment\nA1,2024-01-01 10:00,"left at door,\nsigned by guard\n'
        b'called 0501112222 at 10:05"\nA2,2024-01-01 10:05,"two\n\nparagraphs"\nA3,2024-01-01 10:06,x\n'
    )
    got = watched(data, 0, 1)
    assert got[1:] == [
        (
            2,
            "list",
            [
                "A1",
                "2024-01-01 10:00",
                "left at door,\nsigned by guard\ncalled 0501112222 at 10:05",
            ],
            "",
        ),
        (5, "list", ["A2", "2024-01-01 10:05", "two\n\nparagraphs"], ""),
        (8, "list", ["A3", "2024-01-01 10:06", "x"], ""),
    ]


def test_two_broken_rows_and_line_numbers_after_a_restart() -> None:
    data = (
        b"Card ID;Timestamp;Comment\r\n"
        b'A1;2024-01-01 10:00;"oops\r\n'
        b'A2;2024-01-01 10:01;"oops again\r\n'
        b"\r\n"
        b'A3;2024-01-01 10:02;"multi\r\nline"\r\n'
        b"A4;2024-01-01 10:03;x\r\n"
    )
    got = watched(data, 0, 1)
    assert [(line, kind) for line, kind, *_ in got[1:]] == [
        (2, "BrokenRecord"),
        (3, "BrokenRecord"),
        (5, "list"),
        (7, "list"),
    ]
    assert "before line 3" in got[1][3]
    assert "before line 5" in got[2][3]  # the blank line 4 is not a row: part of the field
    assert got[3][2] == ["A3", "2024-01-01 10:02", "multi\r\nline"]
    assert got[4][2] == ["A4", "2024-01-01 10:03", "x"]


@pytest.mark.parametrize(
    "continuation",
    [
        b"not a row at all\n",
        b"A2\n",  # too few cells
        b"has space,2024-01-01 10:05,x\n",  # not a card id
        b"A2,yesterday,x\n",  # not a timestamp
        b"A2,10:05,x\n",  # no year
        b"A2,2024-01-01,x\n",  # no time of day
    ],
)
def test_continuation_lines_that_are_not_rows_stay_in_the_field(continuation: bytes) -> None:
    data = b'Card ID,Timestamp,Comment\nA1,2024-01-01 10:00,"open\n' + continuation + b'end"\n'
    got = watched(data, 0, 1)
    assert len(got) == 2
    assert got[1][1] == "list"
    assert got[1][2][2] == "open\n" + continuation.decode() + "end"


def test_without_a_watched_shape_quotes_behave_as_plain_csv() -> None:
    got = records(REVIEW_REPRO)
    assert [line for line, _ in got] == [1, 2, 6]  # DQ1 swallows DQ2-DQ4, as csv reads it


def test_the_fast_path_checks_no_line_of_single_line_records(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = []
    source = open_csv(io.BytesIO(b"Card ID,Timestamp\n" + b"A1,2024-01-01 10:00\n" * 100), 1 << 20)
    monkeypatch.setattr(source, "_looks_like_row", lambda line: calls.append(line) or False)
    got = source.records(10_000)
    next(got)
    source.watch_rows(0, 1)
    assert len(list(got)) == 100
    assert calls == []


# --------------------------------------------------------------------------- edges (mutation.md)


class Spy:
    """A source that returns at most ``step`` bytes a read and records every size asked for."""

    def __init__(self, data: bytes, step: int | None = None) -> None:
        self._data = io.BytesIO(data)
        self.step = step
        self.asked: list[int] = []

    def read(self, size: int = -1) -> bytes:
        self.asked.append(size)
        if self.step is not None:
            size = min(size, self.step)
        return self._data.read(size)


def test_utf16_with_bom_and_tabs_detects_the_delimiter() -> None:
    data = codecs.BOM_UTF16_LE + "Card ID\tTimestamp\r\nA1\t2024-01-01 10:00\r\n".encode(
        "utf-16-le"
    )
    source = open_csv(io.BytesIO(data), 1 << 20)
    assert source.delimiter == "\t"
    assert list(source.records(100)) == [
        (1, ["Card ID", "Timestamp"]),
        (2, ["A1", "2024-01-01 10:00"]),
    ]


def test_utf8_whose_sniff_window_ends_inside_a_character_stays_utf8() -> None:
    filler = "Card ID,Comment\n" + "A1,x\n" * ((SNIFF_BYTES - 16) // 5)
    filler += "A2," + "y" * (SNIFF_BYTES - len(filler.encode()) - 4) + "\n"
    data = filler.encode() + "A3,caf\u00e9 \u00e9\u00e9\u00e9\n".encode()
    for shift in range(4):  # the window boundary falls on each byte of the 2-byte characters
        shifted = b"x" * shift + data if shift else data
        shifted = shifted.replace(b"Card ID", b"Card ID", 1)
        assert detect_encoding(shifted[:SNIFF_BYTES]) == "utf-8"
    got = records(data)
    assert got[-1][1] == ["A3", "caf\u00e9 \u00e9\u00e9\u00e9"]
    for prefix in (b"Card ID,C\n", b"Card ID,Cx\n"):  # the window ends inside / after a char
        data = prefix + "\u00e9".encode() * SNIFF_BYTES + b"\n"
        assert detect_encoding(data[:SNIFF_BYTES]) == "utf-8"
        source = open_csv(io.BytesIO(data), 1 << 30)
        assert source.encoding == "utf-8"
        assert source.delimiter == ","
        assert records(data, max_field=1 << 20)[1][1] == ["\u00e9" * SNIFF_BYTES]


def test_a_record_over_one_mib_rejects_the_file_and_one_at_the_limit_passes() -> None:
    line = "x" * 1023 + "\n"
    over = 'Card ID,Comment\nA1,"' + line * 1100 + '"\n'
    with pytest.raises(FileRejected, match="a record is longer than 1,048,576 characters"):
        records(over.encode(), max_field=1 << 24)
    under = 'Card ID,Comment\nA1,"' + line * 1000 + '"\nA2,"' + line * 1000 + '"\n'
    got = records(under.encode(), max_field=1 << 24)
    assert [n for n, _ in got] == [1, 2, 1003]
    one_line = "Card ID,Comment\nA1," + "x" * (1 << 20) + "\n"
    with pytest.raises(FileRejected, match="longer than"):
        records(one_line.encode(), max_field=1 << 24)


def test_reads_are_bounded_and_short_reads_are_collected() -> None:
    data = b"Card ID,Comment\n" + b"A1,x\n" * 200_000  # 1 MB
    spy = Spy(data, step=1000)
    source = open_csv(spy, 1 << 30)
    assert len(source.reader.head()) == SNIFF_BYTES  # from 66 short reads
    assert all(0 < n <= SNIFF_BYTES for n in spy.asked)
    spy.asked.clear()
    assert sum(1 for _ in source.records(100)) == 200_001
    assert spy.asked and all(0 < n <= 256 * 1024 for n in spy.asked)
    source.reader.drain()
    assert source.reader.size == len(data)
    spy = Spy(data)
    source = open_csv(spy, 1 << 30)
    next(iter(source.records(100)))
    source.reader.drain()
    assert all(0 < n <= 256 * 1024 for n in spy.asked)


def test_a_record_of_exactly_one_mib_passes() -> None:
    line = "A1," + "x" * ((1 << 20) - 4) + "\n"
    assert len(line) == 1 << 20
    got = records(b"Card ID,Comment\n" + line.encode(), max_field=1 << 24)
    assert got[1][1][1] == "x" * ((1 << 20) - 4)


def test_a_continuation_line_with_a_wrapped_card_id_is_a_row() -> None:
    data = (
        'Card ID,Timestamp,Comment\nA1,2024-01-01 10:00,"open\n'
        " \u201cA2\u201d ,2024-01-01 10:05,x\n"
    ).encode()
    got = watched(data, 0, 1)
    assert got[1][1] == "BrokenRecord"
    assert got[2][0] == 3


def test_size_limit_is_inclusive() -> None:
    data = b"Card ID\nA1\n"
    assert len(records(data, max_bytes=len(data))) == 2
    with pytest.raises(FileRejected, match=f"limit of 0.0 MB \\({len(data) - 1:,} bytes\\)"):
        records(data, max_bytes=len(data) - 1)


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"Card ID,Comment\nA1,xy\x00z\n", "utf-8"),  # one NUL at an odd offset
        (b"A\x00B\x00", "utf-16-le"),  # 4 bytes are enough
        (b"\x00A\x00B", "utf-16-be"),
        (b"A\x00B", "utf-8"),  # 3 bytes are not
        # 40% / 10% thresholds: 10 pairs with 5 NULs at odd offsets is not > 40%
        (b"a\x00" * 4 + b"aa" * 6, "utf-8"),
        (b"a\x00" * 5 + b"aa" * 5, "utf-16-le"),
        (b"\x00a" * 4 + b"aa" * 6, "utf-8"),
        (b"\x00a" * 5 + b"aa" * 5, "utf-16-be"),
        (b"a\x00" * 9 + b"\x00a", "utf-8"),  # 10% NULs at even offsets: not UTF-16
        (b"\x00a" * 9 + b"a\x00", "utf-8"),
        (b"a\x00" * 19 + b"\x00a", "utf-16-le"),  # 5% at even offsets: still UTF-16
        (b"\x00a" * 19 + b"a\x00", "utf-16-be"),
        # odd lengths: half is rounded down (2 NULs of 5 bytes: > 40% of 2 pairs)
        (b"a\x00bcd", "utf-16-le"),
        (b"\x00abcd", "utf-16-be"),
    ],
)
def test_encoding_detection_edges(head: bytes, expected: str) -> None:
    assert detect_encoding(head) == expected


@pytest.mark.parametrize(("data", "expected"), [(b"", []), (b"\r\n\r\n", [(1, []), (2, [])])])
def test_empty_and_blank_files(data: bytes, expected: list) -> None:
    assert records(data) == expected


def test_lenient_quoting_keeps_stray_quotes() -> None:
    got = records(b'Card ID,Comment\nA1,5" screen\nA2,"ok"x\n')
    assert [r for _, r in got[1:]] == [["A1", '5" screen'], ["A2", "okx"]]


def test_the_delimiter_is_the_majority_outside_quotes() -> None:
    assert detect_delimiter("Card ID;Timestamp;Comment, free text;Phone\n") == ";"
    assert detect_delimiter("a|b|c,d\n") == "|"
    assert detect_delimiter("a;b,c\n") == ","  # a tie: the first candidate
    assert detect_delimiter("\ufeff\n\rCard ID\tTimestamp\r") == "\t"  # a BOM-only line, CR endings
    assert detect_delimiter("Card ID,Timestamp\rA,B\r") == ","  # CR-only line endings
    assert detect_delimiter("Report; acme\rCard ID,Timestamp\rA,B\r") == ","  # lines apart
    assert detect_delimiter("") == ","
    assert detect_delimiter("\n\n") == ","


def test_crlf_inside_a_quoted_field_is_kept() -> None:
    got = records(b'Card ID,Comment\r\nA1,"one\r\ntwo"\r\n')
    assert got[1] == (2, ["A1", "one\r\ntwo"])


def test_undecodable_bytes_late_in_the_file() -> None:
    head = "Card ID,Comment\n" + "A1,caf\u00e9\n" * (SNIFF_BYTES // 9 + 10)
    data = head.encode() + b"A2,\xf0\x9f\x98x\x81y\n"
    assert records(data)[-1][1] == ["A2", "\u00f0\u0178\u02dcx\x81y"]  # cp1252 per byte
    utf16 = codecs.BOM_UTF16_LE + "Card ID,C\nA1,".encode("utf-16-le") + b"\x00\xd8x\x00\n\x00"
    assert records(utf16)[-1][1] == ["A1", "\ufffdx"]  # a lone surrogate: replaced


def test_nul_bytes_on_several_lines_are_all_counted() -> None:
    source = open_csv(io.BytesIO(b"Card ID,Comment\nA1,x\x00y\x00\nA2,\x00z\n"), 1 << 20)
    got = list(source.records(100))
    assert [r for _, r in got[1:]] == [["A1", "xy"], ["A2", "z"]]
    assert source.nul_bytes_removed == 3


def test_an_over_long_field_rejects_the_row_naming_its_line_and_the_next_rows_are_read() -> None:
    # A 15,000-character driver note: its row is rejected, not the file.
    data = b"Card ID,Comment\nA1,ok\nA2," + b"n" * 15_000 + b"\nA3,fine\n"
    got = records(data, max_field=10_000)
    assert [(line, list(r)) for line, r in got[1:]] == [
        (2, ["A1", "ok"]),
        (3, []),
        (4, ["A3", "fine"]),
    ]
    assert "15,000 characters long, over the limit of 10,000" in got[2][1].reason
    # exactly at the limit: a row
    at = records(b"Card ID,Comment\nA2," + b"n" * 9_997 + b"\n", max_field=10_000)
    assert at[1][1] == ["A2", "n" * 9_997]
    at = records(b"Card ID,Comment\nA2," + b"n" * 10_000 + b"\n", max_field=10_000)
    assert at[1][1] == ["A2", "n" * 10_000]
    over = records(b"Card ID,Comment\nA2," + b"n" * 10_001 + b"\n", max_field=10_000)
    assert over[1][1] == [] and "10,001 characters" in over[1][1].reason


def test_malformed_csv_names_the_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import csv

    import cardstatus.decode as decode

    class Strict(csv.Dialect):
        delimiter, quotechar, strict, lineterminator = ",", '"', True, "\n"
        quoting, doublequote, skipinitialspace = csv.QUOTE_MINIMAL, True, False

    real = csv.reader
    monkeypatch.setattr(decode.csv, "reader", lambda lines, **_kw: real(lines, Strict))
    data = b'Card ID,Comment\nA1,ok\nA2,"x" y\n'
    with pytest.raises(FileRejected, match="malformed CSV in the record starting on line 3"):
        records(data)


def test_a_multi_line_comment_before_the_card_column_is_one_field() -> None:
    # The continuation line closes the quote and then carries the record's own card id and
    # time: it reads like a row on its own, but it completes a record of the header's width.
    data = (
        b"Reason,Event,Date,CardID\r\n"
        b'"He said ""call me""\r\nthen left",Delivered,2024-03-05T06:00:00Z,ZYW8827\r\n'
        b",Picked up,2024-03-05T06:00:00Z,ZYW8890\r\n"
    )
    got = watched(data, card=3, ts=2, width=4)
    assert got[1:] == [
        (
            2,
            "list",
            ['He said "call me"\r\nthen left', "Delivered", "2024-03-05T06:00:00Z", "ZYW8827"],
            "",
        ),
        (4, "list", ["", "Picked up", "2024-03-05T06:00:00Z", "ZYW8890"], ""),
    ]


def test_a_runaway_quote_is_broken_even_when_the_next_row_has_quoted_cells() -> None:
    # The next row's own quotes come in pairs, so they leave the runaway field open: that
    # row is still read on its own and the opening row is rejected.
    data = (
        b"Card ID,User contact,Timestamp,Comment\r\n"
        b'DQ1,0501112221,25-11-2026 10:00,"left at door\r\n'
        b'DQ2,"0501112222",25-11-2026 10:01,ok\r\n'
    )
    got = watched(data, card=0, ts=2, width=4)
    assert [(line, kind) for line, kind, _cells, _why in got[1:]] == [
        (2, "BrokenRecord"),
        (3, "list"),
    ]


# --- round 3 (README "Partner files and reports"; mutation-r2 survivors) ---------------------


def test_the_delimiter_is_found_past_title_lines() -> None:
    head = (
        "Deliveries report, December\nGenerated on 5 Dec 2026, 10:00\n\n"
        "Card ID;Timestamp;Comment\nA1;2024-01-01 10:00;x\nA2;2024-01-01 10:05;y, z\n"
    )
    assert detect_delimiter(head) == ";"
    # A record-shaped majority beats a title line with more commas.
    assert detect_delimiter("a,b,c,d,e\nCard ID|Timestamp\nA1|t\nA2|t\n") == "|"
    # Twenty lines are looked at, not more.
    assert detect_delimiter("x,y\n" * 20 + "a;b\n" * 30) == ","


def test_a_tsv_file_is_tab_delimited_whatever_its_head_looks_like() -> None:
    from cardstatus.containers import open_records

    data = b"Card, ID\tTime, stamp, local\nA1\t2024-01-01 10:00\n"
    source = open_records(io.BytesIO(data), "x - Delivered.tsv", 1 << 20)
    assert source.delimiter == "\t"
    assert next(r for _, r in source.records(100)) == ["Card, ID", "Time, stamp, local"]
    gz = open_records(io.BytesIO(__import__("gzip").compress(data)), "x.TSV.gz", 1 << 20)
    assert gz.delimiter == "\t"
    header_only = b"Card, ID\tTime, stamp, local\n"
    assert open_records(io.BytesIO(header_only), "x.tsv", 1 << 20).delimiter == "\t"
    assert open_records(io.BytesIO(header_only), "x.csv", 1 << 20).delimiter == ","


def test_a_continuation_row_with_a_quote_character_still_ends_the_runaway_quote() -> None:
    # Line 3 is a data row with a stray quote ('5" screen'): joined to line 2 it would close
    # the runaway field and complete a 3-field record, but line 2 already had its card id and
    # time, so line 3 is a row of its own.
    data = (
        b'Card ID,Timestamp,Comment\nA1,2024-01-01 10:00,"oops\n'
        b'A2,2024-01-01 10:05,5" screen\nA3,2024-01-01 10:06,x\n'
    )
    got = watched(data, 0, 1, width=3)
    assert [(line, kind, cells) for line, kind, cells, _ in got[1:]] == [
        (2, "BrokenRecord", []),
        (3, "list", ["A2", "2024-01-01 10:05", '5" screen']),
        (4, "list", ["A3", "2024-01-01 10:06", "x"]),
    ]


def test_the_review_repro_is_stopped_when_the_header_width_is_known() -> None:
    assert watched(REVIEW_REPRO, card=0, ts=2, width=4) == watched(REVIEW_REPRO, card=0, ts=2)
    got = watched(REVIEW_REPRO, card=0, ts=2, width=4)
    assert [(line, kind) for line, kind, _c, _r in got[1:]] == [
        (2, "BrokenRecord"),
        (3, "list"),
        (4, "list"),
        (5, "list"),
        (6, "list"),
    ]


@pytest.mark.parametrize("delimiter", [b",", b";", b"\t"])
def test_a_multi_line_comment_before_the_card_column_in_any_delimiter(delimiter: bytes) -> None:
    d = delimiter
    data = (
        b"Reason" + d + b"Event" + d + b"Date" + d + b"CardID\r\n"
        b'"He said ""call me""\r\nthen left"'
        + d
        + b"Delivered"
        + d
        + b"2024-03-05T06:00:00Z"
        + d
        + b"ZYW8827\r\n"
        + d
        + b"Picked up"
        + d
        + b"2024-03-05T06:00:00Z"
        + d
        + b"ZYW8890\r\n"
    )
    got = watched(data, card=3, ts=2, width=4)
    assert [(line, kind) for line, kind, _c, _r in got[1:]] == [(2, "list"), (4, "list")]
    assert got[1][2][0] == 'He said "call me"\r\nthen left'


def test_a_multi_line_comment_closed_by_a_quote_and_a_space() -> None:
    data = b'Card ID,Timestamp,Comment\nA1,2024-01-01 10:00,"two\nparagraphs" \nA2,2024-01-01 10:05,x\n'
    got = watched(data, 0, 1, width=3)
    assert [(line, kind, cells) for line, kind, cells, _ in got[1:]] == [
        (2, "list", ["A1", "2024-01-01 10:00", "two\nparagraphs "]),
        (4, "list", ["A2", "2024-01-01 10:05", "x"]),
    ]


def test_a_runaway_quote_in_the_last_column_before_a_row_ending_in_a_quoted_cell() -> None:
    data = b'Card ID,Timestamp,Comment\nA1,2024-01-01 10:00,"oops\nA2,2024-01-01 10:05,"ok"\n'
    got = watched(data, 0, 1, width=3)
    assert [(line, kind, cells) for line, kind, cells, _ in got[1:]] == [
        (2, "BrokenRecord", []),
        (3, "list", ["A2", "2024-01-01 10:05", "ok"]),
    ]


@pytest.mark.parametrize(
    "first", ["\u0622\u062e\u0631 \u062a\u062d\u062f\u064a\u062b", "\u062c\u0648\u0627\u0644"]
)
def test_utf16_arabic_headers_keep_the_tab_delimiter(first: str) -> None:
    # U+0622 is the bytes 22 06 (a '"' when read as bytes), U+062C is 2C 06 (a ',').
    text = f"{first}\tCard ID\tTimestamp\r\nx\tA1\t2024-01-01 10:00\r\n"
    data = codecs.BOM_UTF16_LE + text.encode("utf-16-le")
    source = open_csv(io.BytesIO(data), 1 << 20)
    assert source.delimiter == "\t"
    assert [len(r) for _, r in source.records(100)] == [3, 3]


def test_a_first_line_over_one_mib_rejects_the_file() -> None:
    data = ("Card ID," + "x" * (1 << 20) + "\nA1,y\n").encode()
    with pytest.raises(FileRejected, match="longer than 1,048,576 characters"):
        records(data, max_field=1 << 24)


def test_a_cp1252_file_whose_first_line_is_only_accents_keeps_its_delimiter() -> None:
    data = "\u00e9\u00e9\nCard ID;Comment;x\nA1;caf\u00e9;y\n".encode("cp1252")
    assert open_csv(io.BytesIO(data), 1 << 20).delimiter == ";"


def test_a_short_utf16_file_with_a_late_first_delimiter() -> None:
    data = "A very long first column name\tTs\r\n".encode("utf-16-le")
    assert open_csv(io.BytesIO(data), 1 << 20).delimiter == "\t"


def test_the_size_limit_reason_in_full() -> None:
    from cardstatus.decode import too_large

    assert too_large(12_345_678) == (
        "the file is larger than the limit of 12.3 MB (12,345,678 bytes) for one file; "
        "split it into files of at most 12.3 MB"
    )


def test_the_over_long_field_reason_in_full() -> None:
    got = records(b"Card ID,Comment\nA1," + b"n" * 12_345 + b"\n", max_field=10_000)
    assert got[1][1].reason == (
        "a field of this row is 12,345 characters long, over the limit of 10,000: the row is "
        "rejected (a note pasted into one cell, or a quote never closed?)"
    )


def test_separate_date_and_time_columns_are_watched_together() -> None:
    data = (
        b'Card ID,Date,Time,Comment\nA1,2024-01-01,10:00,"oops\n'
        b"A2,2024-01-02,10:05,x\nA3,2024-01-02,10:06,y\n"
    )
    source = open_csv(io.BytesIO(data), 1 << 20)
    got = source.records(10_000)
    next(got)
    source.watch_rows(0, 1, 4, time=2)
    assert [(line, type(r).__name__) for line, r in got] == [
        (2, "BrokenRecord"),
        (3, "list"),
        (4, "list"),
    ]


def test_a_short_continuation_line_before_the_card_column_stays_in_the_field() -> None:
    # Card id in the last column: a continuation line with fewer cells is not a row.
    data = (
        b'Timestamp,Comment,Card ID\n2024-01-01 10:00,"open\n2024-01-01 10:05,x\nend",A1\n'
        b"2024-01-01 10:06,y,A2\n"
    )
    got = watched(data, card=2, ts=0, width=3)
    assert [(line, kind) for line, kind, _c, _r in got[1:]] == [(2, "list"), (5, "list")]
    assert got[1][2] == ["2024-01-01 10:00", "open\n2024-01-01 10:05,x\nend", "A1"]


def test_a_closing_line_with_an_even_number_of_quotes_does_not_close_the_field() -> None:
    # '"a' opened before the card column; line 3 closes it and opens another quote: with an
    # even number of quote characters it does not complete the record, so it is a row.
    data = b'Comment,Card ID,Timestamp,Note\n"a\nb",A1,2024-01-01 10:00,"x\n'
    got = watched(data, card=1, ts=2, width=4)
    assert [(line, kind) for line, kind, _c, _r in got[1:]] == [(2, "BrokenRecord"), (3, "list")]


def test_the_size_limit_reason_rounds_in_mb() -> None:
    from cardstatus.decode import too_large

    assert too_large(1_050_000).endswith(
        "limit of 1.1 MB (1,050,000 bytes) for one file; split it into files of at most 1.1 MB"
    )


def test_the_broken_quote_and_record_limit_reasons_in_full() -> None:
    got = watched(REVIEW_REPRO, card=0, ts=2, width=4)
    assert got[1][3] == (
        "a quoted field opened on this line is not closed before line 3, which reads as a data "
        "row: this row is rejected and the lines after it are read as rows (check the quotes "
        "on this line)"
    )
    with pytest.raises(FileRejected) as rejected:
        records(b"Card ID," + b"x" * (1 << 20) + b"\n", max_field=1 << 24)
    assert str(rejected.value) == (
        "a record is longer than 1,048,576 characters (1 MiB): a quote never closed, or not a "
        "CSV file"
    )


def test_a_continuation_row_with_a_quote_character_in_a_semicolon_file() -> None:
    data = (
        b'Card ID;Timestamp;Comment\nA1;2024-01-01 10:00;"oops\n'
        b'A2;2024-01-01 10:05;5" screen\nA3;2024-01-01 10:06;x\n'
    )
    got = watched(data, 0, 1, width=3)
    assert [(line, kind) for line, kind, _c, _r in got[1:]] == [
        (2, "BrokenRecord"),
        (3, "list"),
        (4, "list"),
    ]


def test_a_quoted_timestamp_spanning_lines_is_one_field_when_it_completes_the_record() -> None:
    # The quote opened in the last watched column (or the one before it): a closing line that
    # completes a record of the header's width is part of that record.
    data = b'Card ID,Timestamp,Comment\nA1,"2024-01-01 10:00\nA2,2024-01-01 10:05" ,x\n'
    got = watched(data, 0, 1, width=3)
    assert [(line, kind) for line, kind, _c, _r in got[1:]] == [(2, "list")]
    data = b'ID,Timestamp,Card ID\n1,"2024-01-01 10:00\n2,2024-01-01 10:05" ,A1\n'
    got = watched(data, 2, 1, width=3)
    assert [(line, kind) for line, kind, _c, _r in got[1:]] == [(2, "list")]


def test_a_short_continuation_line_with_a_later_time_column_stays_in_the_field() -> None:
    data = b'Card ID,Date,Comment,Time\nA1,2024-01-01,"open\nA2,2024-01-02 10:00,x\nend",10:00\n'
    source = open_csv(io.BytesIO(data), 1 << 20)
    got = source.records(10_000)
    next(got)
    source.watch_rows(0, 1, 4, time=3)
    assert [(line, type(r).__name__) for line, r in got] == [(2, "list")]


def test_a_closing_quote_and_a_space_before_the_card_column() -> None:
    data = (
        b'Comment,Card ID,Timestamp\n"two\nparagraphs" ,A1,2024-01-01 10:00\n'
        b"next,A2,2024-01-01 10:05\n"
    )
    got = watched(data, card=1, ts=2, width=3)
    assert [(line, kind, cells) for line, kind, cells, _ in got[1:]] == [
        (2, "list", ["two\nparagraphs ", "A1", "2024-01-01 10:00"]),
        (4, "list", ["next", "A2", "2024-01-01 10:05"]),
    ]


def test_a_utf16_header_of_arabic_letters_that_look_like_commas_keeps_the_tab() -> None:
    # U+062C is the bytes 2C 06: read as bytes, six phantom commas against two tabs.
    text = "\u062c\u062c \u062c\u062c \u062c\u062c\tCard ID\tTimestamp\r\n"
    data = codecs.BOM_UTF16_LE + text.encode("utf-16-le")
    assert open_csv(io.BytesIO(data), 1 << 20).delimiter == "\t"


def test_only_the_first_4096_bytes_decide_utf16() -> None:
    head = b"a\x00" * 1000 + b"\x00a" * 204 + b"aa" * 844 + b"\x00" + b"a" * 100
    assert len(head[:4096]) == 4096
    assert detect_encoding(head) == "utf-16-le"


def test_cr_only_line_endings_split_lines_for_the_delimiter_vote() -> None:
    assert detect_delimiter("Title; x; y; z\rCard ID,Timestamp\rA,B\r") == ","


@pytest.mark.parametrize(("filler", "expected"), [("\ufeff", ","), ("X", ";")])
def test_blank_lines_do_not_use_up_the_twenty_lines(filler: str, expected: str) -> None:
    # A BOM-only line is blank (10 lines each: the larger count wins); an 'X' line is a line.
    head = filler + "\n" + "a;b\n" * 10 + "a,b,c\n" * 10
    assert detect_delimiter(head) == expected
