"""The README stands alone and its walk-through prints what it says (issue 23, B4/P10).

Every fenced block marked ```` ```sh readme-test ```` is run, in README order, in a fresh
folder holding what a clone holds for it (`events/`, `.venv`): each `$ command` line in one
bash, `export NAME=value` lines kept for the following commands, and the lines under a
command compared with what it printed (stdout and stderr), one for one; `…` in a documented
line stands for anything (times, ids)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fixture_paths import ROOT

README = ROOT / "README.md"
MARKER = "```sh readme-test"

pytestmark = pytest.mark.slow


@dataclass
class Command:
    line: str
    expected: list[str] = field(default_factory=list)


def walkthrough(text: str) -> list[Command]:
    commands: list[Command] = []
    inside = False
    for line in text.splitlines():
        if line.strip() == MARKER:
            inside = True
        elif inside and line.strip() == "```":
            inside = False
        elif inside and line.startswith("$ "):
            commands.append(Command(line[2:]))
        elif inside:
            assert commands, f"output before any command in a readme-test block: {line!r}"
            commands[-1].expected.append(line)
    return commands


def matches(expected: str, actual: str) -> bool:
    pattern = ".*".join(re.escape(part) for part in expected.split("…"))
    return re.fullmatch(pattern, actual) is not None


def test_readme_links_nothing_outside_the_repository() -> None:
    text = README.read_text("utf-8")
    assert "../" not in text, "a link or path outside the repository"
    assert "SPEC.md" not in text and "shared/samples" not in text
    for target in re.findall(r"\]\((?!https?://|#|mailto:)([^)#\s]+)", text):
        assert (ROOT / target).exists(), f"README links to {target}, which is not in the repository"


def test_the_deploy_runbook_links_nothing_outside_the_repository() -> None:
    for doc in (ROOT / "docs").rglob("*"):
        if doc.suffix in (".md", ".json"):
            text = doc.read_text("utf-8")
            assert "../shared" not in text and "SPEC" not in text, doc


def test_walkthrough_is_marked() -> None:
    commands = walkthrough(README.read_text("utf-8"))
    lines = [c.line for c in commands]
    assert any("cardstatus ingest --partner acme events/partner_samples/" in c for c in lines)
    assert any("cardstatus void 4" in c for c in lines)
    assert all(c.expected or c.line.startswith("export ") for c in commands)


def test_the_walkthrough_prints_what_the_readme_says(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "events", tmp_path / "events")
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CARDSTATUS_HOME")}
    # This checkout's code, whichever virtualenv runs it.
    env["PYTHONPATH"] = os.pathsep.join(
        str(p) for p in (ROOT / "layers" / "cardstatus" / "python", ROOT / "tools", ROOT)
    )
    env.pop("XDG_RUNTIME_DIR", None)
    for command in walkthrough(README.read_text("utf-8")):
        exported = re.fullmatch(r"export ([A-Z_]+)=(\S+)", command.line)
        if exported:
            env[exported.group(1)] = exported.group(2)
            continue
        run = subprocess.run(
            ["bash", "-c", f"set -o pipefail; {command.line}"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=300,
            check=False,
        )
        actual = [line for line in run.stdout.splitlines() if line.strip()]
        documented = "\n".join(command.expected)
        assert run.returncode in (0, 141), f"$ {command.line}\n{run.stdout}"  # 141: head
        assert len(actual) == len(command.expected) and all(
            matches(e, a) for e, a in zip(command.expected, actual, strict=True)
        ), f"$ {command.line}\nREADME says:\n{documented}\nprinted:\n{run.stdout}"
