"""Containers without a database: names, magic bytes, streamed gunzip, xlsx cells as shown."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import os
import re
import zipfile
from datetime import date, datetime, time, timedelta

import openpyxl
import pytest

from cardstatus.containers import Gunzip, _cell_text, _Peek, container_of, open_records
from cardstatus.model import FileRejected

CSV = b"Card ID,Timestamp\r\nA1,2024-01-01 10:00\r\n"


def rows(data: bytes, name: str, max_bytes: int = 1 << 30) -> list:
    return list(open_records(io.BytesIO(data), name, max_bytes).records(10_000))


class Trickle:
    """A source that returns at most ``step`` bytes a read and records the sizes asked for."""

    def __init__(self, data: bytes, step: int = 7) -> None:
        self._data = io.BytesIO(data)
        self.step = step
        self.asked: list[int] = []

    def read(self, size: int = -1) -> bytes:
        self.asked.append(size)
        return self._data.read(min(self.step, size) if size >= 0 else self.step)


@pytest.mark.parametrize(
    ("name", "container"),
    [
        ("a.csv", "csv"),
        ("a.CSV", "csv"),
        ("a.Csv", "csv"),
        ("a.txt", "csv"),
        ("a.TSV", "csv"),
        ("dir/a b.csv", "csv"),
        ("C:\\x\\a.csv", "csv"),
        ("a.xlsx", "xlsx"),
        ("a.XLSX", "xlsx"),
        ("a.csv.gz", "csv.gz"),
        ("a.CSV.GZ", "csv.gz"),
        ("a.txt.gz", "csv.gz"),
        ("a.gz", "csv.gz"),
        ("a.xlsx.gz", "xlsx.gz"),
    ],
)
def test_accepted_names(name: str, container: str) -> None:
    assert container_of(name) == container


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("a.xls", "'a.xls' is an Excel 97-2003 workbook; save it as .xlsx or CSV (UTF-8)"),
        ("a.XLS", "Excel 97-2003 workbook"),
        ("a.xlsm", "macro-enabled"),
        ("a.xlsb", "binary Excel"),
        ("a.ods", "OpenDocument"),
        ("a.numbers", "Apple Numbers"),
        ("a.zip", "ZIP archive; upload the CSV or .xlsx files inside it one by one"),
        ("a.7z", "is an archive"),
        ("a.rar", "is an archive"),
        ("a.tar", "is an archive"),
        ("a.tgz", "is an archive"),
        ("a.tar.gz", "is an archive"),
        ("a.pdf", "PDF document"),
        ("a.json", "is JSON"),
        ("a.xml", "is XML"),
        ("a.png", "is an image"),
        ("a.JPG", "is an image"),
        ("a.heic", "is an image"),
        ("a", "has no file extension"),
        ("a.docx", "is a .docx file, which is not ingested"),
    ],
)
def test_other_names_are_rejected_with_what_to_upload(name: str, reason: str) -> None:
    with pytest.raises(FileRejected) as info:
        container_of(name)
    assert reason in str(info.value)
    assert str(info.value).endswith(
        "Accepted: CSV (.csv, .txt or .tsv, optionally gzip-compressed as .csv.gz) or Excel .xlsx"
    )


def test_plain_csv_is_read_with_its_hash_and_size() -> None:
    source = open_records(io.BytesIO(CSV), "a.csv", 1 << 20)
    assert list(source.records(100)) == [
        (1, ["Card ID", "Timestamp"]),
        (2, ["A1", "2024-01-01 10:00"]),
    ]
    assert (source.container, source.encoding, source.delimiter) == ("csv", "utf-8", ",")
    assert source.warnings == []
    source.reader.drain()
    assert source.reader.sha256 == hashlib.sha256(CSV).hexdigest()


def test_tsv_by_its_delimiter() -> None:
    assert rows(CSV.replace(b",", b"\t"), "a.tsv")[1] == (2, ["A1", "2024-01-01 10:00"])


@pytest.mark.parametrize("name", ["a.csv.gz", "a.gz", "a.csv"])
def test_gzip_is_streamed_and_hashed_as_the_csv_inside(name: str) -> None:
    source = open_records(io.BytesIO(gzip.compress(CSV)), name, 1 << 20)
    assert list(source.records(100))[1] == (2, ["A1", "2024-01-01 10:00"])
    source.reader.drain()
    assert source.reader.sha256 == hashlib.sha256(CSV).hexdigest()
    assert source.reader.size == len(CSV)
    assert source.container == "csv (gzip)"
    hidden = ["the file is gzip-compressed although its name does not say so; it was decompressed"]
    assert source.warnings == (hidden if name == "a.csv" else [])


def test_gunzip_reads_in_bounded_pieces_and_several_members() -> None:
    body = b"".join(f"A{i},2024-01-01 10:00\n".encode() for i in range(20_000))
    data = gzip.compress(body[:100_000]) + gzip.compress(body[100_000:]) + b"\x00" * 10
    source = Trickle(data, step=1000)
    stream = Gunzip(source)
    parts = []
    while chunk := stream.read(4096):
        assert len(chunk) <= 4096
        parts.append(chunk)
    assert b"".join(parts) == body
    assert max(source.asked) <= 256 * 1024
    assert stream.read(10) == b""


def test_gunzip_default_read_size_and_errors() -> None:
    assert Gunzip(io.BytesIO(gzip.compress(b"x" * 10))).read() == b"x" * 10
    assert Gunzip(io.BytesIO(gzip.compress(b"x" * 10))).read(0) == b""
    big = Gunzip(io.BytesIO(gzip.compress(b"x" * 1_000_000)))
    assert len(big.read()) == 256 * 1024  # the default read is one chunk, not everything
    with pytest.raises(FileRejected, match="not valid gzip"):
        Gunzip(io.BytesIO(b"\x1f\x8b\x08\x00" + b"\xff" * 40)).read(10)
    truncated = Gunzip(io.BytesIO(gzip.compress(b"x" * 1000)[:-12]))
    with pytest.raises(FileRejected, match="truncated"):
        while truncated.read(2000):
            pass


def test_a_gzip_bomb_stops_at_the_size_limit() -> None:
    bomb = gzip.compress(b"Card ID,Timestamp\n" + b"A1,2024-01-01 10:00\n" * 500_000)
    with pytest.raises(
        FileRejected,
        match=r"larger than the limit of 0.1 MB \(100,000 bytes\) for one file; split it",
    ):
        rows(bomb, "a.csv.gz", max_bytes=100_000)


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("a.csv.gz", CSV, "named .gz but is not gzip-compressed"),
        ("a.csv", b"PK\x03\x04....", "ZIP archive or an Excel workbook, not CSV text"),
        (
            "a.txt",
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1....",
            "Excel 97-2003 workbook (or another Office file)",
        ),
        ("a.csv", b"%PDF-1.7", "PDF document, not CSV text"),
        ("a.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1....", "password-"),
        ("a.xlsx", CSV, "named .xlsx but is not an Excel workbook"),
        ("a.xlsx", b"", "named .xlsx but is not an Excel workbook"),
        ("a.xlsx", b"PK\x03\x04 broken", "workbook cannot be read (BadZipFile)"),
    ],
)
def test_content_that_contradicts_its_name(name: str, data: bytes, reason: str) -> None:
    with pytest.raises(FileRejected, match=reason.replace("(", r"\(").replace(")", r"\)")):
        rows(data, name)


def test_peek_serves_its_head_again() -> None:
    peek = _Peek(io.BytesIO(b"0123456789"), 4)
    assert peek.head == b"0123"
    assert peek.read(0) == b""  # nothing, not the rest of the file
    assert peek.read(2) == b"01"
    assert peek.read(5) == b"23"
    assert peek.read(0) == b""
    assert peek.read(-1) == b"456789"
    passthrough = _Peek(io.BytesIO(b"0123456789"), 2)
    assert passthrough.read(2) == b"01"
    assert passthrough.read(3) == b"234"  # straight from the source, bounded
    short = _Peek(io.BytesIO(b"01"), 8)
    assert short.head == b"01"
    assert short.read() == b"01"
    trickle = _Peek(Trickle(b"0123456789", step=3), 8)
    assert trickle.head == b"01234567"


def _book(*rows_: list, formats: dict[str, str] | None = None, sheets: int = 1) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Deliveries"
    for row in rows_:
        sheet.append(row)
    for cell, number_format in (formats or {}).items():
        sheet[cell].number_format = number_format
    for i in range(1, sheets):
        book.create_sheet(f"Other {i}").append(["Card ID", "Timestamp"])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_xlsx_first_sheet_cells_as_a_person_sees_them() -> None:
    data = _book(
        ["Card ID", "Phone", "Timestamp", "Date", "Amount", "Flag", "Empty"],
        ["zyw1", 971585949014, datetime(2024, 4, 3, 14, 30), datetime(2024, 4, 3), 1.5, True, None],
        ["ZYW2", "0585949014", datetime(2024, 4, 3, 14, 30, 15), date(2024, 4, 3), 3.0, False],
        [],
        ["ZYW3", 585949014.0, "03-Apr-2024 10:00 AM"],
        formats={"C2": "dd/mm/yyyy hh:mm", "D2": "dd/mm/yyyy", "C3": "yyyy-mm-dd hh:mm:ss"},
        sheets=2,
    )
    source = open_records(io.BytesIO(data), "book.xlsx", 1 << 20)
    got = list(source.records(1000))
    assert got[0] == (1, ["Card ID", "Phone", "Timestamp", "Date", "Amount", "Flag", "Empty"])
    assert got[1] == (
        2,
        ["zyw1", "971585949014", "2024-04-03 14:30", "2024-04-03", "1.5", "TRUE", ""],
    )
    assert got[2][1][:6] == [
        "ZYW2",
        "0585949014",
        "2024-04-03 14:30:15",
        "2024-04-03",
        "3",
        "FALSE",
    ]
    assert got[3] == (4, [""] * 7) or got[3][0] == 4
    assert got[4][0] == 5 and got[4][1][:3] == ["ZYW3", "585949014", "03-Apr-2024 10:00 AM"]
    assert source.warnings == [
        "the workbook has 2 sheets; only the first visible one ('Deliveries') was read"
    ]
    assert (source.container, source.encoding, source.delimiter) == ("xlsx", "xlsx", None)
    source.reader.drain()
    assert source.reader.sha256 == hashlib.sha256(data).hexdigest()
    assert source.reader.size == len(data)
    source.watch_rows(0, 2)  # nothing to watch in a workbook


def test_xlsx_gzipped_and_limits() -> None:
    data = _book(["Card ID", "Timestamp"], ["A1", "x" * 50])
    source = open_records(io.BytesIO(gzip.compress(data)), "book.xlsx.gz", 1 << 20)
    assert source.container == "xlsx (gzip)"
    assert list(source.records(1000))[1] == (2, ["A1", "x" * 50])
    assert source.warnings == []  # one sheet: nothing to say
    assert source.nul_bytes_removed == 0
    assert (
        list(open_records(io.BytesIO(data), "book.xlsx", 1 << 20).records(50))[1][1][1] == "x" * 50
    )
    with pytest.raises(FileRejected, match="row 2: a cell is longer than 10 characters"):
        list(open_records(io.BytesIO(data), "book.xlsx", 1 << 20).records(10))
    with pytest.raises(FileRejected, match="larger than the limit"):
        open_records(io.BytesIO(data), "book.xlsx", 1000)


@pytest.mark.parametrize(
    ("value", "number_format", "text"),
    [
        (None, "General", ""),
        ("05", "General", "05"),
        (True, "General", "TRUE"),
        (False, "General", "FALSE"),
        (7, "General", "7"),
        (971585949014.0, "0.00E+00", "971585949014"),
        (1e16, "General", "1e+16"),
        (0.1, "General", "0.1"),
        (datetime(2024, 4, 3, 14, 30), "dd/mm/yyyy hh:mm", "2024-04-03 14:30"),
        (datetime(2024, 4, 3, 14, 30), "h:mm AM/PM", "2024-04-03 14:30"),
        (datetime(2024, 4, 3, 14, 30, 5), "mm:ss", "2024-04-03 14:30:05"),
        (datetime(2024, 4, 3, 9, 59, 59, 999_500), "yyyy-mm-dd hh:mm", "2024-04-03 10:00"),
        (datetime(2024, 4, 3, 14, 30), "dd/mm/yyyy", "2024-04-03"),
        (datetime(2024, 4, 3, 14, 30), 'dd/mm/yyyy "h"', "2024-04-03"),  # a quoted literal
        (datetime(2024, 4, 3, 14, 30), "[$-409]dd/mm/yyyy", "2024-04-03"),
        (datetime(2024, 4, 3, 14, 30), "dd\\hmm", "2024-04-03"),  # an escaped character
        (date(2024, 4, 3), "General", "2024-04-03"),
        (time(14, 30, 5, 123), "hh:mm:ss", "14:30:05"),
        (timedelta(hours=1), "[h]:mm", "1:00:00"),
    ],
)
def test_cell_text(value: object, number_format: str, text: str) -> None:
    assert _cell_text(value, number_format) == text


def test_xlsx_formulas_are_read_as_their_cached_value_never_as_formula_text() -> None:
    data = _book(["Card ID", "Timestamp", "Comment"], ["A1", "2024-01-01 10:00", "=1+1"])
    got = list(open_records(io.BytesIO(data), "book.xlsx", 1 << 20).records(100))
    assert got[1] == (2, ["A1", "2024-01-01 10:00", ""])  # openpyxl files carry no cached value


# --- workbooks: bounded before they are opened (README "Partner files and reports") ----------


def _zip(members: dict[str, bytes], compress: int = zipfile.ZIP_DEFLATED) -> zipfile.ZipFile:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compress) as archive:
        for name, body in members.items():
            archive.writestr(name, body)
    return zipfile.ZipFile(io.BytesIO(out.getvalue()))


def test_the_zip_directory_limits_each_part_the_total_the_text_table_and_the_ratio(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cardstatus import containers as c

    monkeypatch.setattr(c, "XLSX_MAX_MEMBER_BYTES", 1000)
    monkeypatch.setattr(c, "XLSX_MAX_TOTAL_BYTES", 1500)
    monkeypatch.setattr(c, "XLSX_MAX_SHARED_STRINGS_BYTES", 500)
    monkeypatch.setattr(c, "XLSX_RATIO_FROM_BYTES", 200)
    monkeypatch.setattr(c, "XLSX_MAX_RATIO", 10)
    stored = zipfile.ZIP_STORED
    c.check_workbook_directory(_zip({"a.xml": b"x" * 1000, "b.xml": b"y" * 500}, stored))
    with pytest.raises(FileRejected, match=r"'a.xml' unpacks to 0 MB, over the limit of 0 MB"):
        c.check_workbook_directory(_zip({"a.xml": b"x" * 1001}, stored))
    with pytest.raises(FileRejected, match="the workbook unpacks to"):
        c.check_workbook_directory(_zip({"a.xml": b"x" * 1000, "b.xml": b"y" * 501}, stored))
    c.check_workbook_directory(_zip({"xl/sharedStrings.xml": b"s" * 500}, stored))
    with pytest.raises(FileRejected, match="text table"):
        c.check_workbook_directory(_zip({"xl/sharedStrings.xml": b"s" * 501}, stored))
    c.check_workbook_directory(_zip({"a.xml": b"x" * 200}))  # 200 bytes: no ratio checked
    with pytest.raises(FileRejected, match=r"unpacks \d+ times its packed size \(over 10x"):
        c.check_workbook_directory(_zip({"a.xml": b"x" * 201}))
    random_text = base64.b64encode(os.urandom(600))[:800]
    c.check_workbook_directory(_zip({"a.xml": random_text}))  # compresses < 10x


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'<?xml version="1.0"?><!DOCTYPE a><a/>', "declares a DTD"),
        (b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>', "declares a DTD"),
        (b"<a><b>" + b"t" * 101 + b"</b></a>", "a cell or text in 'p.xml' is longer than 100"),
        (b"<a><b>" + b"t" * 60 + b"&amp;" + b"t" * 40 + b"</b></a>", "longer than 100"),
        (b"<a><b>", "is not well-formed XML"),
    ],
)
def test_the_xml_scan_refuses_dtds_long_text_and_bad_xml(body: bytes, reason: str) -> None:
    from cardstatus.containers import scan_workbook_xml

    with pytest.raises(FileRejected, match=re.escape(reason)):
        scan_workbook_xml(_zip({"p.xml": body}), 100)


def test_the_xml_scan_counts_text_per_element_and_skips_other_parts() -> None:
    from cardstatus.containers import scan_workbook_xml

    many = b"<a>" + b"<b>" + b"t" * 100 + b"</b>" * 1 + b"<b>" + b"t" * 100 + b"</b></a>"
    scan_workbook_xml(_zip({"p.xml": many, "x.bin": b"<!DOCTYPE a>", "r.rels": b"<r/>"}), 100)
    with pytest.raises(FileRejected, match="declares a DTD"):
        scan_workbook_xml(_zip({"r.RELS": b"<!DOCTYPE a><r/>"}), 100)
    with pytest.raises(FileRejected, match="declares a DTD"):
        scan_workbook_xml(_zip({"d.vml": b"<!DOCTYPE a><r/>"}), 100)


def test_a_workbook_whose_sheets_are_all_hidden_is_rejected() -> None:
    wb = openpyxl.Workbook()
    wb.active.append(["Card ID", "Timestamp"])
    saved = io.BytesIO()
    wb.save(saved)
    out = io.BytesIO()  # Excel refuses to save this; a hand-made file can say it
    with zipfile.ZipFile(saved) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            body = src.read(info)
            if info.filename == "xl/workbook.xml":
                body = body.replace(b'state="visible"', b"")
                body = body.replace(b"<sheet ", b'<sheet state="hidden" ')
            dst.writestr(info, body)
    with pytest.raises(FileRejected, match="no visible worksheet"):
        rows(out.getvalue(), "a.xlsx")


def test_other_sheets_are_offered_in_workbook_order() -> None:
    wb = openpyxl.Workbook()
    wb.active.title = "First"
    wb.active.append(["a"])
    wb.create_sheet("Second").append(["Card ID", "Timestamp"])
    wb.create_sheet("Third").append(["b"])
    out = io.BytesIO()
    wb.save(out)
    source = open_records(io.BytesIO(out.getvalue()), "a.xlsx", 1 << 30)
    assert [r for _, r in source.records(100)] == [["a"]]
    assert source.sheet == "First"
    others = [(t, [r for _, r in recs]) for t, recs in source.other_sheet_records(100)]
    assert others == [("Second", [["Card ID", "Timestamp"]]), ("Third", [["b"]])]


def test_parse_errors_while_reading_a_sheet_reject_the_file_not_retry_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from xml.etree.ElementTree import ParseError

    import openpyxl as opx

    from cardstatus.containers import _sheet_records

    class Sheet:
        def iter_rows(self) -> object:
            yield ()
            raise ParseError("undefined entity &xxe;: line 1, column 5")

    with pytest.raises(FileRejected, match=r"damaged near row 2 \(ParseError\)"):
        list(_sheet_records(Sheet(), 100))

    wb = opx.Workbook()
    wb.active.append(["Card ID", "Timestamp"])
    out = io.BytesIO()
    wb.save(out)

    def broken(*_a: object, **_k: object) -> None:
        raise SyntaxError("limit on input amplification factor breached")

    monkeypatch.setattr(opx, "load_workbook", broken)
    with pytest.raises(FileRejected, match=r"cannot be read \(SyntaxError\)"):
        rows(out.getvalue(), "a.xlsx")
