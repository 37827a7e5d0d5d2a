"""The `cardstatus` command line: JSON Lines reports, exit codes, status lookups."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cardstatus_dev.cli import main
from fixture_paths import EVENTS

SAMPLES = EVENTS / "partner_samples"
PARTNER_FILES = EVENTS / "partner_files"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_ingest_prints_one_report_per_file_and_exits_0(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = sorted(str(p) for p in SAMPLES.glob("*.csv"))
    code, out = run(capsys, "ingest", "--database-url", db_url, *paths)
    reports = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert [r["file"]["key"] for r in reports] == paths
    assert {r["outcome"] for r in reports} == {"applied"}

    code, out = run(capsys, "ingest", "--database-url", db_url, paths[0])
    assert code == 0
    assert json.loads(out)["outcome"] == "duplicate_file"


def test_ingest_exits_1_when_a_file_is_rejected(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    good = PARTNER_FILES / "acme unicode text - Pickup.csv"
    bad = PARTNER_FILES / "acme weekly export.csv"
    code, out = run(
        capsys, "ingest", "--partner", "acme", "--database-url", db_url, str(good), str(bad)
    )
    outcomes = [json.loads(line)["outcome"] for line in out.splitlines()]
    assert code == 1
    assert outcomes == ["applied", "rejected_file"]


def test_usage_errors_exit_2(
    db_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["ingest", "--database-url", db_url, str(tmp_path / "missing.csv")]) == 2
    assert main(["ingest"]) == 2
    assert main(["no-such-command"]) == 2


def test_status_by_phone_card_and_both(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    run(capsys, "ingest", "--database-url", db_url, *map(str, SAMPLES.glob("*.csv")))
    code, out = run(capsys, "status", "--phone", "585949014", "--database-url", db_url)
    card: dict[str, Any] = json.loads(out)
    assert code == 0
    assert card["card_id"] == "ZYW8827" and card["status"] == "DELIVERED"
    assert card["user_phone"].endswith("9014") and "585949014" not in out
    assert [h["status"] for h in card["history"]] == ["DELIVERED", "PICKED_UP"]

    code, out = run(capsys, "status", "--card-id", "ZYW8890", "--database-url", db_url)
    assert code == 0 and json.loads(out)["status"] == "RETURNED"

    code, out = run(
        capsys, "status", "--card-id", "ZYW8890", "--phone", "0585949014", "--database-url", db_url
    )
    assert code == 1
    assert json.loads(out)["error"]["code"] == "not_found"


def test_status_invalid_input_exits_2_with_json_error(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(capsys, "status", "--card-id", "bad id!", "--database-url", db_url)
    assert code == 2
    assert json.loads(out)["error"]["code"] == "invalid_parameter"
    code, out = run(capsys, "status", "--database-url", db_url)
    assert code == 2
    assert json.loads(out)["error"]["code"] == "missing_parameter"


def test_migrate_is_idempotent_and_module_entry_point_works(db_url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cardstatus_dev", "migrate", "--database-url", db_url],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(result.stdout) == {
        "applied": [],
        "phones_hashed": {"card": 0, "card_event": 0, "event_copy": 0},
        "status_partner": {"filled": 0, "done": True},  # cards that predate 0024
    }


# --- operations: files, file, stuck -------------------------------------------------------


@pytest.fixture
def all_samples(db_url: str, capsys: pytest.CaptureFixture[str]) -> str:
    paths = sorted(str(p) for p in SAMPLES.glob("*.csv")) + sorted(
        str(p) for p in PARTNER_FILES.glob("*.csv")
    )
    run(capsys, "ingest", "--partner", "acme", "--database-url", db_url, *paths)
    return db_url


def test_files_prints_json_lines_newest_first(
    all_samples: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(capsys, "files", "--database-url", all_samples)
    files = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(files) == 11
    assert [f["file_id"] for f in files] == sorted((f["file_id"] for f in files), reverse=True)

    code, out = run(capsys, "files", "--outcome", "rejected_file", "--database-url", all_samples)
    rejected = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rejected) == 2
    assert all(f["outcome"] == "rejected_file" and f["reason"] for f in rejected)

    code, out = run(
        capsys, "files", "--limit", "3", "--partner", "acme", "--database-url", all_samples
    )
    assert (code, len(out.splitlines())) == (0, 3)

    code, out = run(capsys, "files", "--partner", "nobody", "--database-url", all_samples)
    assert (code, out) == (1, "")

    code, out = run(capsys, "files", "--since", "last week", "--database-url", all_samples)
    assert code == 2 and json.loads(out)["error"]["code"] == "invalid_parameter"
    assert main(["files", "--limit", "0", "--database-url", all_samples]) == 2
    assert main(["files", "--outcome", "maybe"]) == 2


def test_file_prints_the_report(all_samples: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "files", "--limit", "1", "--database-url", all_samples)
    file_id = json.loads(out)["file_id"]
    code, out = run(capsys, "file", str(file_id), "--database-url", all_samples)
    report = json.loads(out)
    assert code == 0 and report["file_id"] == file_id and "counts" in report
    assert out.startswith("{\n  ")  # pretty

    code, out = run(capsys, "file", "999999", "--database-url", all_samples)
    assert code == 1 and json.loads(out)["error"]["code"] == "not_found"
    code, out = run(capsys, "file", "abc", "--database-url", all_samples)
    assert code == 2 and json.loads(out)["error"]["code"] == "invalid_parameter"


def test_stuck_lists_cards_still_in_exception(
    all_samples: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(
        capsys,
        "stuck",
        "--status",
        "DELIVERY_EXCEPTION",
        "--older-than-hours",
        "1",
        "--database-url",
        all_samples,
    )
    cards = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert [c["card_id"] for c in cards] == ["QRK1004", "QRK1005", "QRK1006"]
    assert {c["partner"] for c in cards} == {"acme"}

    code, out = run(
        capsys,
        "stuck",
        "--status",
        "DELIVERY_EXCEPTION",
        "--limit",
        "2",
        "--database-url",
        all_samples,
    )
    assert (code, len(out.splitlines())) == (0, 2)
    code, out = run(
        capsys,
        "stuck",
        "--status",
        "DELIVERY_EXCEPTION",
        "--partner",
        "nobody",
        "--database-url",
        all_samples,
    )
    assert (code, out) == (1, "")
    assert main(["stuck", "--status", "DELIVERED"]) == 2
