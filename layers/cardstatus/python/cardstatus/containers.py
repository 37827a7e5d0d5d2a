"""Which kind of file an uploaded object is, and its records (README "Partner files and
reports": every object gets a report).

* ``.csv`` (any case), ``.txt``, ``.tsv``: CSV text (``decode.open_csv``); ``.tsv`` is
  tab-delimited, the others' delimiter is detected.
* ``.gz`` (``.csv.gz``, ``.txt.gz``, ``x.gz``, also ``.xlsx.gz``): streamed gunzip, then as
  the inner name says. The gzip magic bytes on a CSV name also mean gunzip (with a warning).
* ``.xlsx``: the first visible sheet, streamed by openpyxl in read-only mode from a temporary
  file on disk (a workbook is a ZIP archive, which needs a seekable file), after the zip
  directory and every XML part were checked (``XlsxSource``); cells read as the text a person
  sees (see ``_cell_text``).
* Anything else (``.xls``, ``.numbers``, ``.zip``, images, no extension) and content that
  contradicts its name: ``FileRejected`` with a reason saying what to upload instead.

Identity: ``reader.sha256`` / ``reader.size`` cover the bytes the parser reads: the CSV text
after gunzip (so a gzipped copy of a CSV is the same content), the workbook's own bytes.
The size limit applies to those bytes too: a gzip bomb stops at the limit.
"""

from __future__ import annotations

import re
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from pathlib import PurePosixPath
from typing import IO, Any, Protocol

from cardstatus.decode import READ_CHUNK, CsvSource, Readable, SourceReader, open_csv
from cardstatus.model import FileRejected

ACCEPTED = "CSV (.csv, .txt or .tsv, optionally gzip-compressed as .csv.gz) or Excel .xlsx"
_CSV_SUFFIXES = (".csv", ".txt", ".tsv")
_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Excel 97-2003, old Office files
_PDF_MAGIC = b"%PDF"

_WHAT_TO_DO: dict[str, str] = {
    ".xls": "is an Excel 97-2003 workbook; save it as .xlsx or CSV (UTF-8) and upload that",
    ".xlsm": "is a macro-enabled Excel workbook; save it as .xlsx or CSV (UTF-8)",
    ".xlsb": "is a binary Excel workbook; save it as .xlsx or CSV (UTF-8)",
    ".ods": "is an OpenDocument spreadsheet; save it as .xlsx or CSV (UTF-8)",
    ".numbers": "is an Apple Numbers file; export it as CSV or Excel (.xlsx)",
    ".zip": "is a ZIP archive; upload the CSV or .xlsx files inside it one by one",
    ".7z": "is an archive; upload the CSV or .xlsx files inside it one by one",
    ".rar": "is an archive; upload the CSV or .xlsx files inside it one by one",
    ".tar": "is an archive; upload the CSV or .xlsx files inside it one by one",
    ".tgz": "is an archive; upload the CSV or .xlsx files inside it one by one",
    ".pdf": "is a PDF document, not data; upload the CSV or .xlsx export it was made from",
    ".json": "is JSON, not a partner file; upload CSV or .xlsx",
    ".xml": "is XML, not a partner file; upload CSV or .xlsx",
}
_IMAGES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".heic", ".svg")


class RecordSource(Protocol):
    """What the pipeline reads: records with their line (or sheet row) numbers."""

    reader: SourceReader
    encoding: str
    delimiter: str | None
    container: str
    nul_bytes_removed: int
    warnings: list[str]

    def records(self, max_field_chars: int) -> Iterator[tuple[int, list[str]]]: ...

    def watch_rows(
        self, card_id: int, timestamp: int, width: int | None = None, time: int | None = None
    ) -> None: ...


def _suffix(name: str) -> str:
    return PurePosixPath(name.replace("\\", "/")).suffix.lower()


def _not_accepted(name: str, suffix: str) -> FileRejected:
    base = PurePosixPath(name.replace("\\", "/")).name
    if suffix in _WHAT_TO_DO:
        why = _WHAT_TO_DO[suffix]
    elif suffix in _IMAGES:
        why = "is an image, not data; upload the partner's CSV or .xlsx file"
    elif not suffix:
        why = "has no file extension, so its format is unknown; name it .csv (or .xlsx)"
    else:
        why = f"is a {suffix} file, which is not ingested"
    return FileRejected(f"{base!r} {why}. Accepted: {ACCEPTED}")


def container_of(name: str) -> str:
    """'csv', 'xlsx', 'csv.gz' or 'xlsx.gz' from the object's name, else FileRejected."""
    suffix = _suffix(name)
    if suffix in _CSV_SUFFIXES:
        return "csv"
    if suffix == ".xlsx":
        return "xlsx"
    if suffix == ".gz":
        inner = name[: -len(".gz")]
        inner_suffix = _suffix(inner)
        if inner_suffix in _CSV_SUFFIXES or not inner_suffix:
            return "csv.gz"
        if inner_suffix == ".xlsx":
            return "xlsx.gz"
        raise _not_accepted(inner, inner_suffix)
    raise _not_accepted(name, suffix)


class _Peek:
    """A readable that has looked at its first bytes and serves them again."""

    def __init__(self, source: Readable, n: int = 8) -> None:
        self._source = source
        self.head = b""
        while len(self.head) < n:
            data = source.read(n - len(self.head))
            if not data:
                break
            self.head += data
        self._pending = self.head

    def read(self, size: int = -1, /) -> bytes:
        if self._pending:
            if size is None or size < 0:
                out, self._pending = self._pending + self._source.read(), b""
                return out
            out, self._pending = self._pending[:size], self._pending[size:]
            return out
        return self._source.read(size)


class Gunzip:
    """Streamed gunzip of a readable (several members allowed), at most ``size`` bytes a read."""

    def __init__(self, source: Readable) -> None:
        self._source = source
        self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._input = b""
        self._done = False

    def read(self, size: int = -1, /) -> bytes:
        if size is None or size < 0:
            size = READ_CHUNK
        elif size == 0:
            return b""  # zlib's max_length=0 would mean "no limit"
        while not self._done:
            if not self._input:
                self._input = self._inflate.unconsumed_tail or self._source.read(READ_CHUNK)
                if not self._input:
                    if not self._inflate.eof:
                        raise FileRejected("the gzip data is truncated (incomplete upload?)")
                    self._done = True
                    break
            try:
                out = self._inflate.decompress(self._input, size)
            except zlib.error as exc:
                raise FileRejected(f"the file is not valid gzip data ({exc})") from None
            self._input = self._inflate.unconsumed_tail
            if self._inflate.eof:
                rest = self._inflate.unused_data
                if rest.startswith(_GZIP_MAGIC):  # the next member of a multi-member file
                    self._inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    self._input = rest
                elif not out:
                    self._done = True  # trailing padding after the last member is ignored
                    break
            if out:
                return out
        return b""


def open_records(body: Readable, name: str, max_bytes: int) -> RecordSource:
    """The records of an uploaded object, whatever its accepted container; else FileRejected."""
    container = container_of(name)
    warnings: list[str] = []
    inner = name[: -len(".gz")] if name.lower().endswith(".gz") else name
    delimiter = "\t" if _suffix(inner) == ".tsv" else None  # .tsv means tab
    if container.endswith(".gz"):
        peek = _Peek(body)
        if not peek.head.startswith(_GZIP_MAGIC):
            raise FileRejected(f"the file is named .gz but is not gzip-compressed. {_upload()}")
        body = Gunzip(peek)
        container = container[: -len(".gz")]
    peek = _Peek(body)
    head = peek.head
    if container == "xlsx":
        if head.startswith(_OLE_MAGIC):
            raise FileRejected(
                "the file is named .xlsx but is an Excel 97-2003 workbook (or a password-"
                "protected one); save it as .xlsx without a password, or as CSV (UTF-8)"
            )
        if not head.startswith(_ZIP_MAGIC):
            raise FileRejected(
                "the file is named .xlsx but is not an Excel workbook; save it from Excel as "
                ".xlsx or CSV (UTF-8)"
            )
        return XlsxSource(peek, max_bytes, gzip=name.lower().endswith(".gz"))
    if head.startswith(_GZIP_MAGIC):
        warnings.append(
            "the file is gzip-compressed although its name does not say so; it was decompressed"
        )
        return _with(open_csv(Gunzip(peek), max_bytes, delimiter), "csv (gzip)", warnings)
    if head.startswith(_ZIP_MAGIC):
        raise FileRejected(
            "the file is a ZIP archive or an Excel workbook, not CSV text: save it as CSV "
            "(UTF-8), or upload the workbook with its .xlsx name"
        )
    if head.startswith(_OLE_MAGIC):
        raise FileRejected(
            "the file is an Excel 97-2003 workbook (or another Office file), not CSV text: "
            "save it as .xlsx or CSV (UTF-8)"
        )
    if head.startswith(_PDF_MAGIC):
        raise FileRejected(f"the file is a PDF document, not CSV text. {_upload()}")
    gz = name.lower().endswith(".gz")
    return _with(open_csv(peek, max_bytes, delimiter), "csv (gzip)" if gz else "csv", warnings)


def _upload() -> str:
    return f"Upload {ACCEPTED}"


def _with(source: CsvSource, container: str, warnings: list[str]) -> RecordSource:
    source.container = container
    source.warnings.extend(warnings)
    return source  # type: ignore[return-value]


# ----------------------------------------------------------------------------- xlsx

# Quoted literals, [colour]/[$-409] sections and escaped characters of a number format.
_FORMAT_LITERALS_RE = re.compile(r'"[^"]*"|\[[^\]]*\]|\\.')


def _shows_time(number_format: str) -> bool:
    fmt = _FORMAT_LITERALS_RE.sub("", number_format.lower())
    return "h" in fmt or "s" in fmt or "am/pm" in fmt


def _cell_text(value: Any, number_format: str) -> str:
    """A cell's value as the text a person sees in the sheet.

    Numbers: integers without '.0' and without scientific notation (a phone stored as a
    number stays '971585949014'); other numbers in their shortest exact form. Date-times:
    ``YYYY-MM-DD HH:MM[:SS]`` (the wall-clock time as written, unambiguous whatever the
    partner's date order), rounded to the second; a cell formatted as a date only is the
    date only (then rejected as "no time of day", never guessed as midnight).
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return repr(value)
    if isinstance(value, datetime):
        if not _shows_time(number_format):
            return value.date().isoformat()
        value = (value + timedelta(microseconds=500_000)).replace(microsecond=0)
        return value.strftime("%Y-%m-%d %H:%M" if value.second == 0 else "%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.replace(microsecond=0).isoformat(timespec="seconds")
    return str(value)


# Workbook limits, checked on the zip directory before the workbook is opened (README
# "Partner files and reports": any object, bounded memory). A member's declared size is
# also what zipfile inflates at most, so the checks hold even for a lying directory.
XLSX_MAX_MEMBER_BYTES = 256 * 1024 * 1024  # one part (a sheet) uncompressed
XLSX_MAX_TOTAL_BYTES = 512 * 1024 * 1024  # all parts uncompressed
XLSX_MAX_SHARED_STRINGS_BYTES = 64 * 1024 * 1024  # openpyxl holds this table in memory
XLSX_MAX_RATIO = 100  # uncompressed / compressed, for parts over XLSX_RATIO_FROM_BYTES
XLSX_RATIO_FROM_BYTES = 1024 * 1024
# A text node may exceed the cell limit by this much before the scan stops (whitespace
# between elements is counted with the text before it); the exact limit is checked per cell.
_XML_TEXT_SLACK = 1024
_XML_SCAN_CHUNK = 64 * 1024


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):,.0f} MB"


def check_workbook_directory(book: zipfile.ZipFile) -> None:
    """FileRejected when the workbook's parts would inflate beyond the limits."""
    total = 0
    for info in book.infolist():
        size, packed = info.file_size, info.compress_size
        total += size
        name = info.filename
        if size > XLSX_MAX_MEMBER_BYTES:
            raise FileRejected(
                f"the workbook part {name!r} unpacks to {_mb(size)}, over the limit of "
                f"{_mb(XLSX_MAX_MEMBER_BYTES)} for one part; split the sheet into smaller files "
                "or upload it as CSV"
            )
        if name.lower().endswith("sharedstrings.xml") and size > XLSX_MAX_SHARED_STRINGS_BYTES:
            raise FileRejected(
                f"the workbook's text table ({name!r}) unpacks to {_mb(size)}, over the limit "
                f"of {_mb(XLSX_MAX_SHARED_STRINGS_BYTES)}; split it or upload it as CSV"
            )
        if size > XLSX_RATIO_FROM_BYTES and size > XLSX_MAX_RATIO * max(packed, 1):
            raise FileRejected(
                f"the workbook part {name!r} unpacks {size // max(packed, 1):,} times its "
                f"packed size (over {XLSX_MAX_RATIO}x: a zip bomb, not a spreadsheet export); "
                "save the sheet again from Excel or upload it as CSV"
            )
    if total > XLSX_MAX_TOTAL_BYTES:
        raise FileRejected(
            f"the workbook unpacks to {_mb(total)}, over the limit of "
            f"{_mb(XLSX_MAX_TOTAL_BYTES)}; split it into smaller files or upload CSV"
        )


class _XmlRefused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def scan_workbook_xml(book: zipfile.ZipFile, max_text_chars: int) -> None:
    """Stream every XML part once through expat (bounded memory): FileRejected for a DTD or
    an entity declaration (XXE, billion laughs: never expanded, refused), malformed XML, or a
    text node longer than ``max_text_chars`` (a cell would be materialised whole by the
    workbook reader)."""
    for info in book.infolist():
        if info.filename.lower().endswith((".xml", ".rels", ".vml")):
            _scan_part(book, info, max_text_chars)


def _scan_part(book: zipfile.ZipFile, info: zipfile.ZipInfo, max_text_chars: int) -> None:
    import xml.parsers.expat

    name = info.filename
    parser = xml.parsers.expat.ParserCreate()
    run = 0

    def start(_tag: str, _attrs: Any) -> None:
        nonlocal run
        run = 0

    def text(data: str) -> None:
        nonlocal run
        run += len(data)
        if run > max_text_chars:
            raise _XmlRefused(f"a cell or text in {name!r} is longer than {max_text_chars:,}")

    def doctype(*_args: Any) -> None:
        raise _XmlRefused(
            f"the workbook part {name!r} declares a DTD (document type), which a "
            "spreadsheet export never has; entities are not expanded"
        )

    parser.StartElementHandler = start
    parser.CharacterDataHandler = text
    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = doctype
    try:
        with book.open(info) as part:
            while chunk := part.read(_XML_SCAN_CHUNK):
                parser.Parse(chunk, False)
            parser.Parse(b"", True)
    except _XmlRefused as refused:
        raise FileRejected(
            f"{refused.reason}; save the sheet again from Excel as .xlsx or upload CSV"
        ) from None
    except xml.parsers.expat.ExpatError as exc:
        raise FileRejected(
            f"the workbook part {name!r} is not well-formed XML ({exc}); save it again "
            "from Excel as .xlsx, or as CSV (UTF-8)"
        ) from None
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as exc:
        raise FileRejected(
            f"the workbook cannot be read ({type(exc).__name__}); save it again from "
            "Excel as .xlsx, or as CSV (UTF-8)"
        ) from None


# Errors of a damaged or hostile workbook (never an infrastructure failure: no retry, no
# DLQ). ParseError is a SyntaxError.
_WORKBOOK_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile,
    zlib.error,
    KeyError,
    ValueError,
    OSError,
    EOFError,
    SyntaxError,
    TypeError,
    IndexError,
    AttributeError,
    NotImplementedError,
)


class XlsxSource:
    """The first visible sheet of an .xlsx workbook as records (line = the sheet's row number).

    Before openpyxl opens it: the zip directory is checked (``check_workbook_directory``) and
    every XML part streamed once (``scan_workbook_xml``), so that no part, cell or entity can
    take memory beyond the limits.
    """

    encoding = "xlsx"
    delimiter: str | None = None

    def __init__(self, body: Readable, max_bytes: int, gzip: bool = False) -> None:
        self.container = "xlsx (gzip)" if gzip else "xlsx"
        self.nul_bytes_removed = 0
        self.warnings: list[str] = []
        self.sheet: str | None = None  # title of the sheet read
        self.reader = SourceReader(body, max_bytes)
        # Deleted when the source is dropped (an unlinked temporary file).
        self._file: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        while data := self.reader.read(READ_CHUNK):
            self._file.write(data)
        self._file.seek(0)
        self._max_field_chars: int | None = None

    def watch_rows(
        self, card_id: int, timestamp: int, width: int | None = None, time: int | None = None
    ) -> None:
        """Cells cannot run into each other in a workbook: nothing to watch."""

    def _open_book(self, max_field_chars: int) -> Any:
        import openpyxl  # only files that need it pay for the import

        self._file.seek(0)
        try:
            with zipfile.ZipFile(self._file) as archive:
                check_workbook_directory(archive)
                if self._max_field_chars != max_field_chars:
                    scan_workbook_xml(archive, max_field_chars + _XML_TEXT_SLACK)
                    self._max_field_chars = max_field_chars
            self._file.seek(0)
            return openpyxl.load_workbook(self._file, read_only=True, data_only=True)
        except FileRejected:
            raise
        except (*_WORKBOOK_ERRORS, _invalid_file()) as exc:
            raise FileRejected(
                f"the workbook cannot be read ({type(exc).__name__}); save it again from "
                "Excel as .xlsx, or as CSV (UTF-8)"
            ) from None

    def records(self, max_field_chars: int) -> Iterator[tuple[int, list[str]]]:
        book = self._open_book(max_field_chars)
        try:
            visible = [s for s in book.worksheets if s.sheet_state == "visible"]
            if not visible:
                raise FileRejected("the workbook has no visible worksheet")
            sheet = visible[0]
            self.sheet = sheet.title
            skipped = [s.title for s in book.worksheets if s is not sheet]
            if skipped:
                self.warnings.append(
                    f"the workbook has {len(book.worksheets)} sheets; only the first visible "
                    f"one ({sheet.title!r}) was read"
                )
            yield from _sheet_records(sheet, max_field_chars)
        finally:
            book.close()

    def other_sheet_records(
        self, max_field_chars: int
    ) -> Iterator[tuple[str, Iterator[tuple[int, list[str]]]]]:
        """(title, records) of each sheet other than the one read, in workbook order."""
        book = self._open_book(max_field_chars)
        try:
            for sheet in book.worksheets:
                if sheet.title != self.sheet:
                    yield sheet.title, _sheet_records(sheet, max_field_chars)
        finally:
            book.close()


def _invalid_file() -> type[BaseException]:
    from openpyxl.utils.exceptions import InvalidFileException

    return InvalidFileException


def _sheet_records(sheet: Any, max_field_chars: int) -> Iterator[tuple[int, list[str]]]:
    number = 0
    try:
        for number, row in enumerate(sheet.iter_rows(), start=1):
            cells = [_cell_text(c.value, c.number_format or "") for c in row]
            if any(len(c) > max_field_chars for c in cells):
                raise FileRejected(
                    f"row {number}: a cell is longer than {max_field_chars} characters"
                )
            yield number, cells
    except FileRejected:
        raise
    except (*_WORKBOOK_ERRORS, _invalid_file()) as exc:
        raise FileRejected(
            f"the workbook is damaged near row {number + 1} "
            f"({type(exc).__name__}); save it again as .xlsx or CSV (UTF-8)"
        ) from None
