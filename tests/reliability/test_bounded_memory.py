"""Every hostile object ends as a report under a 150 MB memory limit (README "Partner files
and reports": any object, bounded memory; SPEC: peak RSS <= 150 MB on any input).

Each file of the corpus (workbook bombs, a huge cell, a DTD, billion laughs, a gzip bomb, a
10 MB single field, 16k columns) is ingested by the real pipeline in a child process whose
address space is limited to 150 MB (``resource.setrlimit(RLIMIT_AS)``, so an allocation past
it fails instead of growing), against the test's PostgreSQL. The child must exit normally
with a report (an out-of-memory ``MemoryError`` or a kill would leave none), and its peak RSS
(VmHWM of the child, not ``ru_maxrss``, which survives exec) must stay under the limit. `make reliability` runs it (marker
``reliability``); the measured peaks are printed.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import resource
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest

pytestmark = pytest.mark.reliability

LIMIT_MB = 150
CHILD = Path(__file__).with_name("hostile_child.py")
ROOT = Path(__file__).resolve().parents[2]
SHEET_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def _base_workbook() -> bytes:
    wb = openpyxl.Workbook()
    wb.active.append(["Card ID", "Timestamp"])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _workbook(path: Path, sheet: Callable[[Any], None]) -> None:
    """A valid workbook whose first sheet's XML is written by ``sheet`` (streamed)."""
    with (
        zipfile.ZipFile(io.BytesIO(_base_workbook())) as src,
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            if info.filename == "xl/worksheets/sheet1.xml":
                part_info = zipfile.ZipInfo(info.filename)
                part_info.compress_type = zipfile.ZIP_DEFLATED
                with dst.open(part_info, "w", force_zip64=True) as part:
                    sheet(part)
            else:
                dst.writestr(info.filename, src.read(info), zipfile.ZIP_DEFLATED)


def _cell_sheet(chunks: Callable[[], Any]) -> Callable[[Any], None]:
    def write(part: Any) -> None:
        part.write(
            f'<?xml version="1.0"?><worksheet xmlns="{SHEET_NS}"><sheetData>'
            '<row r="1"><c r="A1" t="inlineStr"><is><t>Card ID</t></is></c>'
            '<c r="B1" t="inlineStr"><is><t>Timestamp</t></is></c></row>'
            '<row r="2"><c r="A2" t="inlineStr"><is><t>'.encode()
        )
        for chunk in chunks():
            part.write(chunk)
        part.write(b"</t></is></c></row></sheetData></worksheet>")

    return write


def xlsx_bomb(path: Path) -> None:
    """The security review's N3: one 400 MB cell, a few hundred KB packed."""
    _workbook(path, _cell_sheet(lambda: (b"x" * (1 << 20) for _ in range(400))))


def xlsx_ratio_bomb(path: Path) -> None:
    """Under the per-part size limit, over the compression ratio (about 1000:1)."""
    _workbook(path, _cell_sheet(lambda: (b"x" * (1 << 20) for _ in range(200))))


def xlsx_huge_cell(path: Path) -> None:
    """A 30 MB cell that does not compress (no ratio to catch): the streamed scan stops it."""
    rnd = base64.b64encode(os.urandom(3 << 20))  # 4 MiB of text
    _workbook(path, _cell_sheet(lambda: (rnd for _ in range(7))))


def xlsx_dtd(path: Path) -> None:
    def sheet(part: Any) -> None:
        part.write(
            b'<?xml version="1.0"?><!DOCTYPE w [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
            b'<worksheet xmlns="' + SHEET_NS.encode() + b'"><sheetData><row r="1">'
            b'<c r="A1" t="inlineStr"><is><t>&xxe;</t></is></c></row></sheetData></worksheet>'
        )

    _workbook(path, sheet)


def xlsx_billion_laughs(path: Path) -> None:
    entities = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
    )

    def sheet(part: Any) -> None:
        part.write(
            f'<?xml version="1.0"?><!DOCTYPE w [{entities}]><worksheet xmlns="{SHEET_NS}">'
            '<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>&lol9;</t></is></c></row>'
            "</sheetData></worksheet>".encode()
        )

    _workbook(path, sheet)


def gzip_bomb(path: Path) -> None:
    """1 GiB of NUL bytes in about 1 MB of gzip."""
    squeeze = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1 << 20)
    with path.open("wb") as out:
        for _ in range(1024):
            out.write(squeeze.compress(zeros))
        out.write(squeeze.flush())


def gzip_csv_bomb(path: Path) -> None:
    """A gzip whose CSV text is one 200 MB line after a header."""
    with gzip.open(path, "wb", compresslevel=9) as out:
        out.write(b"Card ID,Timestamp,Comment\nA1,2024-01-01 10:00,")
        for _ in range(200):
            out.write(b"y" * (1 << 20))


def single_field_10mb(path: Path) -> None:
    path.write_bytes(b"Card ID,Timestamp,Comment\nA1,2024-01-01 10:00," + b"z" * 10_000_000 + b"\n")


def columns_16k(path: Path) -> None:
    header = "Card ID,Timestamp," + ",".join(f"c{i}" for i in range(16_382))
    row = "A{n},2024-01-01 10:00," + ",".join("v" for _ in range(16_382))
    path.write_text(header + "\n" + "\n".join(row.format(n=n) for n in range(200)) + "\n")


def xlsx_columns_16k(path: Path) -> None:
    """A sheet as Excel would write it (cell references, about 11:1 packed), 16,384 columns."""
    wb = openpyxl.Workbook(write_only=True)
    sheet = wb.create_sheet()
    sheet.append(["Card ID", "Timestamp", *(f"c{i}" for i in range(16_382))])
    for r in range(50):
        sheet.append([f"A{r}", "2024-01-01 10:00", *([1] * 16_382)])
    wb.save(path)


# name: (builder, object name, outcome, reason fragment or None)
CORPUS: dict[str, tuple[Callable[[Path], None], str, str, str | None]] = {
    "xlsx bomb (400 MB cell)": (
        xlsx_bomb,
        "bomb - Delivered.xlsx",
        "rejected_file",
        "unpacks to 400 MB",
    ),
    "xlsx ratio bomb (200 MB cell)": (
        xlsx_ratio_bomb,
        "ratio - Delivered.xlsx",
        "rejected_file",
        "times its packed size",
    ),
    "xlsx huge cell (28 MB)": (
        xlsx_huge_cell,
        "cell - Delivered.xlsx",
        "rejected_file",
        "longer than",
    ),
    "xlsx DTD (XXE)": (xlsx_dtd, "dtd - Delivered.xlsx", "rejected_file", "declares a DTD"),
    "xlsx billion laughs": (
        xlsx_billion_laughs,
        "lol - Delivered.xlsx",
        "rejected_file",
        "declares a DTD",
    ),
    "xlsx 16k columns": (xlsx_columns_16k, "wide - Delivered.xlsx", "applied", None),
    "gzip bomb (1 GiB of NUL)": (gzip_bomb, "gz - Delivered.csv.gz", "rejected_file", None),
    "gzip bomb (200 MB line)": (gzip_csv_bomb, "line - Delivered.csv.gz", "rejected_file", None),
    "10 MB single field": (
        single_field_10mb,
        "field - Delivered.csv",
        "rejected_file",
        "longer than 1,048,576 characters",
    ),
    "16k columns": (columns_16k, "wide - Delivered.csv", "applied", None),
}
PEAKS: dict[str, float] = {}


def _limit() -> None:
    limit = LIMIT_MB * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CPU, (120, 120))


@pytest.mark.parametrize("case", list(CORPUS))
def test_each_hostile_file_gets_a_report_within_150_mb(
    db_url: str, tmp_path: Path, case: str
) -> None:
    build, name, outcome, reason = CORPUS[case]
    path = tmp_path / name
    build(path)
    env = {
        **os.environ,
        "MALLOC_ARENA_MAX": "2",  # glibc reserves 64 MB of address space per arena otherwise
        "PYTHONPATH": os.pathsep.join(
            [
                str(ROOT / "layers" / "cardstatus" / "python"),
                str(ROOT),
                os.environ.get("PYTHONPATH", ""),
            ]
        ),
    }
    done = subprocess.run(
        [sys.executable, str(CHILD), db_url, str(path), f"incoming/acme/{name}"],
        preexec_fn=_limit,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{case}: no report ({done.returncode}): {done.stderr[-3000:]}"
    report = json.loads(done.stdout.strip().splitlines()[-1])
    PEAKS[case] = report["peak_rss_mb"]
    print(
        f"{case}: {path.stat().st_size:,} bytes -> {report['outcome']}, peak RSS {report['peak_rss_mb']} MB: {report['reason']}"
    )
    assert report["outcome"] == outcome, report
    if reason is not None:
        assert reason in report["reason"], report
    assert report["peak_rss_mb"] <= LIMIT_MB
