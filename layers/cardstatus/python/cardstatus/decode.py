"""Bytes → CSV records, streamed: hashing, size limit, encoding and dialect detection.

Nothing here holds more than one read-ahead block (64 KiB) plus the current record in memory.

Broken quoting never swallows rows (README "Partner files and reports"): once the header is
known (``watch_rows``), every line that continues a record (a quoted field left open at the
end of a line) is checked against the file's shape before the CSV parser gets it. A
continuation line that reads as a data row on its own (a card-id-like cell in the card-id
column and a timestamp-like cell in the timestamp column) means the quote was never closed:
the open record is dropped and yielded as a ``BrokenRecord`` (a reject naming its line), and
parsing restarts at that line. Continuation lines that do not look like rows stay part of the
quoted field (genuine multi-line comments). Single-line records, the usual case, cost one
attribute test per line.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from cardstatus.model import CARD_ID_RE, FileRejected
from cardstatus.normalise._text import _TRIM_CHARS

SNIFF_BYTES = 64 * 1024
READ_CHUNK = 256 * 1024
CANDIDATE_DELIMITERS = (",", ";", "\t", "|")
# One record (all its physical lines) is refused beyond this many characters, before it is
# held in memory: a file without a newline would otherwise be read as one giant line.
MAX_RECORD_CHARS = 1 << 20


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class BrokenRecord(list[str]):
    """A row rejected by the reader (a quoted field that ran into the following rows, or a
    field over the field limit): empty, with the reject reason.

    Empty so that a consumer's blank-record test (``if not record``) sees it first; the
    consumer then tells it from a blank line by its class.
    """

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


class _RunawayQuote(Exception):
    """Raised by the line source: the next line reads as a data row but continues a record."""

    def __init__(self, line: str) -> None:
        super().__init__()
        self.line = line


# A cell that could be a timestamp: a 4-digit year and a time of day somewhere in it.
_TIMESTAMP_LIKE_RE = re.compile(r"(?s)(?=.*[0-9]{4})(?=.*[0-9]:[0-9]{2})")


def _cp1252_fallback(error: UnicodeError) -> tuple[str, int]:
    """Decode bytes that are not valid UTF-8 as Windows-1252 (latin-1 for its 5 unused bytes)."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    bad = error.object[error.start : error.end]
    chars = []
    for byte in bad:
        try:
            chars.append(bytes([byte]).decode("cp1252"))
        except UnicodeDecodeError:
            chars.append(chr(byte))
    return "".join(chars), error.end


codecs.register_error("cardstatus-cp1252", _cp1252_fallback)


def too_large(limit: int) -> str:
    """The reason of a file over the size limit: the limit in MB and what to do."""
    return (
        f"the file is larger than the limit of {limit / 1e6:,.1f} MB ({limit:,} bytes) for one "
        f"file; split it into files of at most {limit / 1e6:,.1f} MB"
    )


class SourceReader(io.RawIOBase):
    """Raw stream over the object's bytes that hashes and counts them and enforces a size limit.

    The first SNIFF_BYTES are read ahead once (for encoding/dialect detection) and replayed.
    """

    def __init__(self, source: Readable, max_bytes: int) -> None:
        super().__init__()
        self._source = source
        self._max_bytes = max_bytes
        self._sha256 = hashlib.sha256()
        self.size = 0
        self._replay = b""

    def _pull(self, n: int) -> bytes:
        data = self._source.read(n)
        if data:
            self.size += len(data)
            if self.size > self._max_bytes:
                raise FileRejected(too_large(self._max_bytes))
            self._sha256.update(data)
        return data

    def head(self) -> bytes:
        """The first SNIFF_BYTES (fewer for short files), without consuming them."""
        if not self._replay and self.size == 0:
            parts = []
            got = 0
            while got < SNIFF_BYTES:
                data = self._pull(SNIFF_BYTES - got)
                if not data:
                    break
                parts.append(data)
                got += len(data)
            self._replay = b"".join(parts)
        return self._replay

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._replay:
            n = min(len(buffer), len(self._replay))
            buffer[:n] = self._replay[:n]
            self._replay = self._replay[n:]
            return n
        data = self._pull(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        """Read (and hash) whatever the parser did not consume."""
        self._replay = b""
        while self._pull(READ_CHUNK):
            pass

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()


def detect_encoding(head: bytes) -> str:
    """UTF-8 (BOM or not), UTF-16 (BOM, or NUL-interleaved ASCII), else Windows-1252."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    sample = head[:4096]
    if len(sample) >= 4:
        even_nuls = sample[0::2].count(0)
        odd_nuls = sample[1::2].count(0)
        half = len(sample) // 2
        if odd_nuls > 0.4 * half and even_nuls < 0.1 * half:
            return "utf-16-le"
        if even_nuls > 0.4 * half and odd_nuls < 0.1 * half:
            return "utf-16-be"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


DIALECT_LINES = 20  # non-blank lines of the head looked at for the delimiter


def _delimiter_counts(line: str) -> dict[str, int]:
    counts = dict.fromkeys(CANDIDATE_DELIMITERS, 0)
    in_quotes = False
    for ch in line:
        if ch == '"':
            in_quotes = not in_quotes
        elif not in_quotes and ch in counts:
            counts[ch] += 1
    return counts


def detect_delimiter(text_head: str) -> str:
    """The delimiter of the file's records, from up to 20 non-blank lines of its head (title
    lines above the header are outvoted by the header and rows).

    Each candidate scores the number of lines on which it occurs the same number of times
    (its most common non-zero count per line, outside quotes), then that count; the first
    candidate wins a tie. No candidate on any line → ','.
    """
    per_line: list[dict[str, int]] = []
    for line in io.StringIO(text_head, newline=None):
        if line.strip().strip("\ufeff"):
            per_line.append(_delimiter_counts(line))
            if len(per_line) == DIALECT_LINES:
                break
    best, best_score = ",", (0, 0)
    for delimiter in CANDIDATE_DELIMITERS:
        seen: dict[int, int] = {}
        for counts in per_line:
            n = counts[delimiter]
            if n:
                seen[n] = seen.get(n, 0) + 1
        if seen:
            lines, count = max((lines, count) for count, lines in seen.items())
            if (lines, count) > best_score:
                best, best_score = delimiter, (lines, count)
    return best


@dataclass
class CsvSource:
    """Records of one file with the physical line each starts on."""

    reader: SourceReader
    encoding: str
    delimiter: str
    nul_bytes_removed: int = 0
    container: str = "csv"
    warnings: list[str] = field(default_factory=list)
    _record_chars: int = 0
    _shape: tuple[int, int] | None = None  # (card-id column, timestamp column)
    _time: int | None = None  # a separate time-of-day column
    _width: int | None = None  # fields of the header row
    _record_lines: list[str] = field(default_factory=list)  # lines of the current record

    def watch_rows(
        self, card_id: int, timestamp: int, width: int | None = None, time: int | None = None
    ) -> None:
        """From now on, a quoted field that runs into lines shaped like data rows is broken."""
        self._shape = (card_id, timestamp)
        self._width = width
        self._time = time

    def _closes_record(self, line: str) -> bool:
        """Whether this continuation line closes the open quoted field and completes a record
        of the header's width: a genuine multi-line field, even if the rest of the line (the
        record's later columns) reads like a row. An odd number of quote characters flips the
        open field to closed ("" inside a field counts twice)."""
        if self._width is None or line.count('"') % 2 == 0:
            return False
        text = "".join(self._record_lines) + line
        record = next(csv.reader((text,), delimiter=self.delimiter, strict=False), [])
        return len(record) == self._width

    def _open_after_shape(self) -> bool:
        """Whether the open record already has its card-id and timestamp cells (its quote
        opened in a later column): then a continuation line that reads as a row is a new
        row, even if its own quote character would close the field (round 3)."""
        assert self._shape is not None
        text = "".join(self._record_lines)
        cells = next(csv.reader((text,), delimiter=self.delimiter, strict=False), [])
        return len(cells) - 1 > max(self._shape)

    def _looks_like_row(self, line: str) -> bool:
        """Whether one physical line, parsed on its own, reads as a data row of this file."""
        assert self._shape is not None
        card_col, ts_col = self._shape
        time_col = self._time
        cells = next(csv.reader((line,), delimiter=self.delimiter, strict=False), [])
        if len(cells) <= max(card_col, ts_col, -1 if time_col is None else time_col):
            return False
        card = cells[card_col].strip().strip(_TRIM_CHARS)
        if not card.isascii() or CARD_ID_RE.fullmatch(card) is None:
            return False
        stamp = cells[ts_col] if time_col is None else f"{cells[ts_col]} {cells[time_col]}"
        return _TIMESTAMP_LIKE_RE.match(stamp) is not None

    def records(self, max_field_chars: int) -> Iterator[tuple[int, list[str]]]:
        errors = "cardstatus-cp1252" if self.encoding.startswith("utf-8") else "replace"
        text = io.TextIOWrapper(
            io.BufferedReader(self.reader, buffer_size=READ_CHUNK),
            encoding=self.encoding,
            errors=errors,
            newline="",
        )
        # The parser accepts fields up to a whole record; a longer field than max_field_chars
        # rejects its row (below), a longer record the file (_without_nul).
        csv.field_size_limit(MAX_RECORD_CHARS)
        offset = 0  # physical lines before the current parser's first line
        first: str | None = None  # a line to read again after a broken record
        while True:
            reader = csv.reader(
                self._without_nul(text, first),
                delimiter=self.delimiter,
                quotechar='"',
                strict=False,
            )
            last_line = 0
            try:
                for record in reader:
                    chars, self._record_chars = self._record_chars, 0
                    start = last_line + 1
                    last_line = reader.line_num
                    if chars > max_field_chars:
                        longest = max(map(len, record), default=0)
                        if longest > max_field_chars:
                            record = BrokenRecord(_field_too_long(longest, max_field_chars))
                    yield offset + start, record
                return
            except _RunawayQuote as runaway:
                opened, row_line = offset + last_line + 1, offset + reader.line_num + 1
                yield (
                    opened,
                    BrokenRecord(
                        f"a quoted field opened on this line is not closed before line {row_line}, "
                        "which reads as a data row: this row is rejected and the lines after it "
                        "are read as rows (check the quotes on this line)"
                    ),
                )
                self._record_chars = 0
                offset, first = row_line - 1, runaway.line
            except csv.Error as exc:
                raise FileRejected(
                    f"malformed CSV in the record starting on line {offset + last_line + 1}: {exc}"
                ) from None

    def _without_nul(self, text: io.TextIOWrapper, first: str | None = None) -> Iterator[str]:
        """Physical lines without NUL bytes; a record over MAX_RECORD_CHARS → FileRejected.

        A line that continues a record but reads as a data row raises _RunawayQuote.
        """
        readline, limit = text.readline, MAX_RECORD_CHARS
        line = first or readline(limit + 1)
        while line:
            chars = self._record_chars
            if chars == 0:
                self._record_lines.clear()
            elif (
                self._shape is not None
                and self._looks_like_row(line)
                and (self._open_after_shape() or not self._closes_record(line))
            ):
                raise _RunawayQuote(line)
            chars += len(line)
            if chars > limit:
                raise FileRejected(
                    f"a record is longer than {MAX_RECORD_CHARS:,} characters (1 MiB): a quote "
                    "never closed, or not a CSV file"
                )
            self._record_chars = chars
            if "\x00" in line:
                self.nul_bytes_removed += line.count("\x00")
                line = line.replace("\x00", "")
            self._record_lines.append(line)
            yield line
            line = readline(limit + 1)


def _field_too_long(longest: int, limit: int) -> str:
    return (
        f"a field of this row is {longest:,} characters long, over the limit of {limit:,}: "
        "the row is rejected (a note pasted into one cell, or a quote never closed?)"
    )


def open_csv(source: Readable, max_bytes: int, delimiter: str | None = None) -> CsvSource:
    """A CSV source; ``delimiter`` given (``.tsv``: tab) or detected from the head."""
    reader = SourceReader(source, max_bytes)
    head = reader.head()
    encoding = detect_encoding(head)
    if encoding.startswith("utf-16"):
        text_head = head[: len(head) // 2 * 2].decode(encoding, errors="ignore")
    else:
        text_head = head.decode(encoding, errors="ignore")
    return CsvSource(
        reader=reader, encoding=encoding, delimiter=delimiter or detect_delimiter(text_head)
    )
