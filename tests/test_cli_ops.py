"""`cardstatus rejects`, `file-cards`, `void --preview`, `--table`/`--csv`, case-insensitive
--status/--outcome and --since dates (README "Operations"): the CLI on a real PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from cardstatus_dev.cli import main

PICKUP = "Card ID,Phone,Timestamp\nSPX001,0501112201,03-12-2026 09:10\nSPX002,0501112202,03-12-2026 09:20\n"
WRONG = (
    "Card ID,Phone,Timestamp,Remarks\nSPX001,0501112201,04-12-2026 14:00,Customer not available\n"
)
BAD = (
    "Card ID,Phone,Timestamp\nSPX003,0501112203,05-12-2026 10:00\n"
    "SPX 004,0501112204,05-12-2026 10:10\nSPX005,0501112205,20261205 1015\n"
)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


@pytest.fixture
def files(db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, int]:
    ids = {}
    for name, text in (
        ("speedy Pickup.csv", PICKUP),
        ("speedy Delivery exceptions.csv", WRONG),
        ("speedy Delivered.csv", BAD),
    ):
        path = tmp_path / name
        path.write_text(text)
        _, out = run(capsys, "ingest", "--partner", "speedy", "--database-url", db_url, str(path))
        ids[name] = json.loads(out)["file_id"]
    return ids


def test_rejects_as_json_lines_and_csv(
    db_url: str, files: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    fid = str(files["speedy Delivered.csv"])
    code, out = run(capsys, "rejects", fid, "--database-url", db_url)
    rejects = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["line"] for r in rejects] == [3, 4]
    assert rejects[1]["card_id"] == "SPX005"
    code, out = run(capsys, "rejects", fid, "--csv", "--database-url", db_url)
    back = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and [r["raw_row"] for r in back] == [
        "SPX 004,******2204,05-12-2026 10:10",
        "SPX005,******2205,20261205 1015",
    ]
    code, out = run(capsys, "rejects", "999999", "--database-url", db_url)
    assert code == 1 and json.loads(out)["error"]["code"] == "not_found"


def test_files_and_stuck_tables_for_people(
    db_url: str, files: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(capsys, "files", "--table", "--database-url", db_url)
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:3] == ["ID", "OUTCOME", "PARTNER"]
    assert len(lines) == 4
    # aligned: every column starts at the same offset on every line
    start = lines[0].index("PARTNER")
    assert all(line[start:].startswith("speedy") for line in lines[1:])

    code, out = run(
        capsys, "files", "--has-rejects", "--since", "2000-01-01", "--database-url", db_url
    )
    assert [json.loads(line)["file_id"] for line in out.splitlines()] == [
        files["speedy Delivered.csv"]
    ]
    code, out = run(capsys, "files", "--outcome", "APPLIED", "--database-url", db_url)
    assert code == 0 and len(out.splitlines()) == 3

    code, out = run(
        capsys, "stuck", "--status", "delivery_exception", "--older-than-hours", "0", "--table",
        "--database-url", db_url,
    )  # fmt: skip
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("CARD") and "REASON" in lines[0]
    assert "SPX001" in lines[1] and "recipient_unavailable" in lines[1]
    code, out = run(capsys, "stuck", "--status", "picked_up", "--older-than-hours", "0", "--csv",
                    "--database-url", db_url)  # fmt: skip
    assert [r["card_id"] for r in csv.DictReader(io.StringIO(out))] == ["SPX002"]


def test_file_cards_and_void_preview_then_void(
    db_url: str, files: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    fid = str(files["speedy Delivery exceptions.csv"])
    code, out = run(capsys, "void", fid, "--preview", "--database-url", db_url)
    preview = json.loads(out)
    assert code == 0 and preview["status_changes"] == 1
    assert preview["cards"] == [
        {"card_id": "SPX001", "status_now": "DELIVERY_EXCEPTION", "status_after_void": "PICKED_UP"}
    ]
    code, out = run(capsys, "void", fid, "--preview", "--table", "--database-url", db_url)
    assert "a void changes 1 card(s)" in out and "SPX001" in out
    code, out = run(capsys, "void", fid, "--database-url", db_url)  # no --reason
    assert code == 2
    code, out = run(capsys, "void", fid, "--reason", "wrong file", "--actor", "ops",
                    "--database-url", db_url)  # fmt: skip
    assert code == 0 and json.loads(out)["status_changes"] == 1
    code, out = run(capsys, "file-cards", fid, "--database-url", db_url)
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["action"], r["status_before"], r["status_after"]) for r in rows] == [
        ("apply", "PICKED_UP", "DELIVERY_EXCEPTION"),
        ("void", "DELIVERY_EXCEPTION", "PICKED_UP"),
    ]
    code, out = run(
        capsys, "file-cards", fid, "--action", "VOID", "--table", "--database-url", db_url
    )
    assert out.splitlines()[1].split()[:4] == ["void", "SPX001", "DELIVERY_EXCEPTION", "PICKED_UP"]
