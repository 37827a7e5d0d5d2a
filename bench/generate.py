"""Seeded synthetic partner files with the real files' mix of quirks (the accepted forms are
listed in README "Partner files and reports").

One call writes two files:

* ``<dir>/bench-<N> - mixed status.csv``: the partner file, N data rows, a ``Status`` column
  with the four event types in several spellings, phones quoted/country-prefixed/spaced/
  mangled, ISO and day-first 12/24-hour local times, ~2 % exact duplicate rows and ~1 % bad
  rows (bad card id, impossible date, before 2000, too few fields, unknown status, garbage
  time);
* ``<dir>/bench-<N>.expected.copy``: the rows that must end in ``card_event``, already
  normalised, in COPY text format, computed here independently of cardstatus (the generator
  knows each row's truth). It feeds the COPY "limit" measurement and the correctness check.

Times are Asia/Dubai (fixed UTC+4, no DST) or UTC with ``Z``; phones are valid UAE mobiles.
Usage: ``python -m bench.generate N [--seed S] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from cardstatus.config import DEFAULT_REASON_KEYWORDS
from cardstatus.normalise import classify_reason

HEADER = "ID ,Card ID,User contact,Timestamp,Status,Comment\n"
PARTNER = "default"
DUBAI_OFFSET_S = 4 * 3600
START = 1672531200  # 2023-01-01T00:00:00Z
SPAN = 2 * 365 * 86400  # events spread over two years (all in the past)

STATUS_SPELLINGS = {
    "PICKED_UP": ("Picked up", "PICKED_UP", "pickup"),
    "DELIVERY_EXCEPTION": ("Delivery exception", "DELIVERY_EXCEPTION", "Exception"),
    "DELIVERED": ("DELIVERED", "Delivered"),
    "RETURNED": ("Returned", "RETURNED"),
}
EXCEPTION_COMMENTS = (
    "User not available",
    "User declined to accept package",
    "Address not found",
    '"Customer asked to call back, will retry"',
    "No answer at door",
)
DELIVERED_COMMENTS = ("DELIVERED", "Handed over", "", '"Left with ""guard""; signed"')


def _comment_value(cell: str) -> str | None:
    """What clean_comment makes of a comment cell as written above (CSV unquoted)."""
    if cell.startswith('"'):
        cell = cell[1:-1].replace('""', '"')
    return cell.strip() or None


def _copy(value: str | None) -> str:
    return "\\N" if value is None else value.replace("\\", "\\\\").replace("\t", "\\t")


@dataclass
class GenStats:
    path: str
    expected_path: str
    rows: int
    valid_unique: int
    duplicates: int
    bad: int
    phone_warnings: int
    bytes: int
    seconds: float


def _fmt_time(rng: random.Random, t: int) -> tuple[str, int]:
    """Render instant t (UTC epoch seconds) like the real files, a third each:
    ISO UTC with Z, 'DD-MM-YYYY HH:MM' and 'DD-MM-YYYY h:MM AM/PM' (local time).
    Returns (cell, instant)."""
    r = rng.random()
    if r < 1 / 3:
        g = time.gmtime(t)
        return (
            f"{g.tm_year:04d}-{g.tm_mon:02d}-{g.tm_mday:02d}T"
            f"{g.tm_hour:02d}:{g.tm_min:02d}:{g.tm_sec:02d}Z",
            t,
        )
    t -= t % 60  # minute resolution below
    g = time.gmtime(t + DUBAI_OFFSET_S)
    if r < 2 / 3:
        cell = f"{g.tm_mday:02d}-{g.tm_mon:02d}-{g.tm_year:04d} {g.tm_hour:02d}:{g.tm_min:02d}"
    else:
        h12 = g.tm_hour % 12 or 12
        ampm = "AM" if g.tm_hour < 12 else "PM"
        cell = f"{g.tm_mday:02d}-{g.tm_mon:02d}-{g.tm_year:04d} {h12}:{g.tm_min:02d} {ampm}"
    return cell, t


def _phone(rng: random.Random) -> tuple[str, str | None, bool]:
    """(cell, expected E.164 or None, warning expected): a third each of the samples'
    literal quotes \"\"\"05…\"\"\", 9715… and 5…; a few empty or mangled."""
    nsn = rng.choice("024568")
    nsn = "5" + nsn + f"{rng.randrange(10_000_000):07d}"
    e164 = "+971" + nsn
    r = rng.random()
    if r < 0.32:
        return f'"""0{nsn}"""', e164, False
    if r < 0.64:
        return "971" + nsn, e164, False
    if r < 0.96:
        return nsn, e164, False
    if r < 0.99:
        return "", None, False
    return "12345", None, True


def _bad_row(rng: random.Random, row_id: str, card: str, ts_cell: str) -> str:
    kind = rng.randrange(6)
    if kind == 0:
        return f"{row_id},BAD CARD!,585949014,{ts_cell},Delivered,bad card id\n"
    if kind == 1:
        return f"{row_id},{card},585949014,31-02-2024 10:00,Delivered,impossible date\n"
    if kind == 2:
        return f"{row_id},{card},585949014,05-03-1999 10:00,Delivered,before 2000\n"
    if kind == 3:
        return f"{row_id},{card}\n"
    if kind == 4:
        return f"{row_id},{card},585949014,{ts_cell},In transit,unknown status\n"
    return f"{row_id},{card},585949014,yesterday evening,Delivered,garbage time\n"


def generate(out_dir: Path, n_rows: int, seed: int = 42, card_prefix: str = "ZYW") -> GenStats:
    """Write the partner file of n_rows data rows and its expected normalised rows (card ids
    `card_prefix` + 7 digits)."""
    started = time.perf_counter()
    rng = random.Random(seed * 1_000_003 + n_rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"bench-{n_rows}" if card_prefix == "ZYW" else f"bench-{n_rows}-{card_prefix}"
    path = out_dir / f"{stem} - mixed status.csv"
    expected_path = out_dir / f"{stem}.expected.copy"
    reasons = {
        c: classify_reason(_comment_value(c), DEFAULT_REASON_KEYWORDS) for c in EXCEPTION_COMMENTS
    }
    rows = valid = dups = bad = warns = 0
    line = 1  # the header
    card_no = 0
    with (
        open(path, "w", encoding="utf-8", newline="") as out,
        open(expected_path, "w", encoding="utf-8", newline="") as exp,
    ):
        out.write(HEADER.replace("\n", "\r\n"))
        buf: list[str] = []
        ebuf: list[str] = []
        while rows < n_rows:
            card_no += 1
            card = f"{card_prefix}{card_no:07d}"
            phone_cell, e164, warn = _phone(rng)
            t = START + rng.randrange(SPAN)
            roll = rng.random()
            status = (
                "PICKED_UP"
                if roll < 0.3
                else "DELIVERY_EXCEPTION"
                if roll < 0.45
                else "RETURNED"
                if roll < 0.5
                else "DELIVERED"
            )
            row_id = f"A{rows + 1}"
            ts_cell, instant = _fmt_time(rng, t)
            rows += 1
            line += 1
            if rng.random() < 0.01:
                buf.append(_bad_row(rng, row_id, card, ts_cell).replace("\n", "\r\n"))
                bad += 1
                continue
            if status == "DELIVERY_EXCEPTION":
                comment_cell = rng.choice(EXCEPTION_COMMENTS)
                reason: str | None = reasons[comment_cell]
            elif status == "DELIVERED":
                comment_cell = rng.choice(DELIVERED_COMMENTS)
                reason = None
            else:
                comment_cell, reason = "", None
            buf.append(
                f"{row_id},{card},{phone_cell},{ts_cell},"
                f"{rng.choice(STATUS_SPELLINGS[status])},{comment_cell}\r\n"
            )
            valid += 1
            warns += warn
            g = time.gmtime(instant)
            occurred = (
                f"{g.tm_year:04d}-{g.tm_mon:02d}-{g.tm_mday:02d} "
                f"{g.tm_hour:02d}:{g.tm_min:02d}:{g.tm_sec:02d}+00"
            )
            ebuf.append(
                f"{card}\t{status}\t{occurred}\t{_copy(_comment_value(comment_cell))}\t"
                f"{_copy(reason)}\t{_copy(e164)}\t{PARTNER}\t1\t{line}\t{row_id}\n"
            )
            if len(buf) >= 10_000:
                out.write("".join(buf))
                exp.write("".join(ebuf))
                buf.clear()
                ebuf.clear()
        out.write("".join(buf))
        exp.write("".join(ebuf))
    return GenStats(
        path=str(path),
        expected_path=str(expected_path),
        rows=rows,
        valid_unique=valid,
        duplicates=dups,
        bad=bad,
        phone_warnings=warns,
        bytes=path.stat().st_size,
        seconds=round(time.perf_counter() - started, 2),
    )


# Columns of the expected file, in order; source_file_id is always 1 (the bench's file row).
EXPECTED_COLUMNS = (
    "card_id, status, occurred_at, comment, reason, phone, partner, source_file_id, source_line,"
    " partner_row_id"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=int)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=Path("bench/data"))
    args = parser.parse_args()
    print(asdict(generate(args.out, args.rows, args.seed)))


if __name__ == "__main__":
    main()
