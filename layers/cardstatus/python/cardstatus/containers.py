"""Which kind of file an uploaded object is, and its records (README "Partner files and
reports": every object gets a report).

* ``.csv`` (any case), ``.txt``, ``.tsv``: CSV text (``decode.open_csv``).
* ``.gz`` (``.csv.gz``, ``.txt.gz``, ``x.gz``, also ``.xlsx.gz``): streamed gunzip, then as
  the inner name says. The gzip magic bytes on a CSV name also mean gunzip (with a warning).
* ``.xlsx``: the first sheet, streamed by openpyxl in read-only mode from a temporary file on
  disk (a workbook is a ZIP archive, which needs a seekable file); cells read as the text a
  person sees (see ``_cell_text``).
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

    def watch_rows(self, card_id: int, timestamp: int, width: int | None = None) -> None: ...


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
        return _with(open_csv(Gunzip(peek), max_bytes), "csv (gzip)", warnings)
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
    return _with(open_csv(peek, max_bytes), "csv (gzip)" if gz else "csv", warnings)


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


class XlsxSource:
    """The first sheet of an .xlsx workbook as records (line = the sheet's row number)."""

    encoding = "xlsx"
    delimiter: str | None = None

    def __init__(self, body: Readable, max_bytes: int, gzip: bool = False) -> None:
        self.container = "xlsx (gzip)" if gzip else "xlsx"
        self.nul_bytes_removed = 0
        self.warnings: list[str] = []
        self.reader = SourceReader(body, max_bytes)
        # Closed when the records are read (or the source is dropped).
        self._file: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        while data := self.reader.read(READ_CHUNK):
            self._file.write(data)
        self._file.seek(0)

    def watch_rows(self, card_id: int, timestamp: int, width: int | None = None) -> None:
        """Cells cannot run into each other in a workbook: nothing to watch."""

    def records(self, max_field_chars: int) -> Iterator[tuple[int, list[str]]]:
        import openpyxl  # only files that need it pay for the import
        from openpyxl.utils.exceptions import InvalidFileException

        errors = (zipfile.BadZipFile, InvalidFileException, KeyError, ValueError, OSError)
        number = 0
        try:
            try:
                book = openpyxl.load_workbook(self._file, read_only=True, data_only=True)
            except (*errors, TypeError, IndexError) as exc:
                raise FileRejected(
                    f"the workbook cannot be read ({type(exc).__name__}); save it again from "
                    "Excel as .xlsx, or as CSV (UTF-8)"
                ) from None
            try:
                if not book.worksheets:
                    raise FileRejected("the workbook has no worksheet")
                sheet = book.worksheets[0]
                if len(book.sheetnames) > 1:
                    self.warnings.append(
                        f"the workbook has {len(book.sheetnames)} sheets; only the first "
                        f"({sheet.title!r}) was read"
                    )
                for number, row in enumerate(sheet.iter_rows(), start=1):
                    cells = [_cell_text(c.value, c.number_format or "") for c in row]
                    if any(len(c) > max_field_chars for c in cells):
                        raise FileRejected(
                            f"row {number}: a cell is longer than {max_field_chars} characters"
                        )
                    yield number, cells
            except FileRejected:
                raise
            except errors as exc:
                raise FileRejected(
                    f"the workbook is damaged near row {number + 1} "
                    f"({type(exc).__name__}); save it again as .xlsx or CSV (UTF-8)"
                ) from None
            finally:
                book.close()
        finally:
            self._file.close()
