"""`make mutation`: mutmut on the parsing modules against their database-free tests.

Not part of `make test` (CPU-heavy: minutes per module). Each module is mutated in a scratch
copy (``.mutation/<module>/``) laid out the way mutmut 3 expects (``src/cardstatus``), with
two test-only additions to the copy's conftest:

* a Hypothesis profile ``mutation`` (no example database, derandomised): reproducible
  verdicts, and no failing example saved for one mutant replayed against the next;
* an autouse fixture clearing the ``lru_cache``s of the phone and status code: mutmut forks
  each mutant from a process that already ran the clean tests, and a warm cache would hide
  mutants in the cached functions.

Usage: python tests/mutation/run.py [module ...]   (default: every module below)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "cardstatus" / "python" / "cardstatus"
NORMALISE_TESTS = [
    "tests/test_normalise.py",
    "tests/test_normalise_props.py",
    "tests/test_normalise_rules.py",
]
# module (relative to the package) → its database-free tests
MODULES: dict[str, list[str]] = {
    "decode.py": ["tests/test_decode.py"],
    "containers.py": ["tests/test_containers.py"],
    "normalise/_text.py": NORMALISE_TESTS,
    "normalise/phone.py": NORMALISE_TESTS,
    "normalise/timestamp.py": NORMALISE_TESTS,
    "normalise/fields.py": NORMALISE_TESTS,
    "normalise/status.py": NORMALISE_TESTS,
    "normalise/headers.py": NORMALISE_TESTS,
    # its database-free tests only (the ingestion tests in the file are deselected: -m "not db")
    "normalise/card_id_rule.py": ["tests/test_card_id_rule.py"],
    "words.py": NORMALISE_TESTS,
}
CONFTEST_ADDITION = """

# --- added by tests/mutation/run.py (scratch copy only) -----------------------------------
import hypothesis as _hypothesis

_hypothesis.settings.register_profile("mutation", database=None, derandomize=True)


@pytest.fixture(autouse=True)
def _cold_caches():
    from cardstatus.normalise import phone, status

    phone._normalise_phone_cached.cache_clear()
    phone._fast_path_for.cache_clear()
    status.vocabulary.cache_clear()
    yield
"""


def scratch_copy(module: str, tests: list[str]) -> Path:
    work = ROOT / ".mutation" / module.replace("/", "_").removesuffix(".py")
    shutil.rmtree(work, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(PACKAGE, work / "src" / "cardstatus", ignore=ignore)
    shutil.copytree(
        ROOT / "tests",
        work / "tests",
        ignore=shutil.ignore_patterns("__pycache__", "infra", "reliability", "mutation"),
    )
    shutil.copytree(ROOT / "events", work / "events", ignore=ignore)
    with (work / "tests" / "conftest.py").open("a", encoding="utf-8") as conftest:
        conftest.write(CONFTEST_ADDITION)
    pytest_ini = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    config = {
        "source_paths": ["src/cardstatus"],
        "only_mutate": [f"src/cardstatus/{module}"],
        "pytest_add_cli_args_test_selection": tests,
        # -m "not db": database-free tests only, a mutant never needs PostgreSQL
        "pytest_add_cli_args": [
            "-p",
            "no:cacheprovider",
            "--hypothesis-profile=mutation",
            "-m",
            "not db",
        ],
        "also_copy": ["events", "tests"],
        "use_git_change_detection": False,
    }
    lines = ["[tool.mutmut]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in config.items()]
    lines += ["", "[tool.pytest.ini_options]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in pytest_ini["ini_options"].items()]
    (work / "pyproject.toml").write_text("\n".join(lines) + "\n")
    return work


def run(module: str) -> dict[str, int]:
    work = scratch_copy(module, MODULES[module])
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    mutmut = [sys.executable, "-m", "mutmut"]
    with (work / "mutmut-run.log").open("w") as log:  # the progress spinner: kept out of the way
        subprocess.run(
            [*mutmut, "run", "--max-children", "2"], cwd=work, env=env, stdout=log, check=False
        )
    subprocess.run([*mutmut, "export-cicd-stats"], cwd=work, env=env, check=True)
    stats = json.loads((work / "mutants" / "mutmut-cicd-stats.json").read_text())
    survivors = subprocess.run(
        [*mutmut, "results"], cwd=work, env=env, check=False, capture_output=True, text=True
    ).stdout
    (work / "survivors.txt").write_text(survivors)
    return stats


def main(argv: list[str]) -> int:
    modules = argv or list(MODULES)
    unknown = [m for m in modules if m not in MODULES]
    if unknown:
        print(f"unknown module(s) {unknown}; choose from {list(MODULES)}", file=sys.stderr)
        return 2
    rows = []
    for module in modules:
        stats = run(module)
        total = stats.get("total", 0)
        killed = stats.get("killed", 0) + stats.get("timeout", 0)
        score = 100.0 * killed / total if total else 100.0
        rows.append((module, total, killed, stats.get("survived", 0), score))
    print(f"\n{'module':28} {'mutants':>8} {'killed':>7} {'survived':>9} {'score':>7}")
    for module, total, killed, survived, score in rows:
        print(f"{module:28} {total:8} {killed:7} {survived:9} {score:6.1f}%")
    print("survivors: .mutation/<module>/survivors.txt; inspect with `mutmut show <name>` there")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
