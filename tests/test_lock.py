"""requirements.lock pins what requirements.txt asks for (`make lock` regenerates it)."""

from __future__ import annotations

import re

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from fixture_paths import ROOT

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\]+)")


def _locked() -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) of every pin in the lock."""
    pins: dict[str, tuple[str, int]] = {}
    current = None
    for line in (ROOT / "requirements.lock").read_text("utf-8").splitlines():
        match = _PIN.match(line)
        if match:
            current = canonicalize_name(match.group(1))
            pins[current] = (match.group(2), 0)
        elif current and line.strip().startswith("--hash=sha256:"):
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
    return pins


def test_lock_pins_every_requirement_within_its_range_with_hashes() -> None:
    locked = _locked()
    assert locked
    assert all(hashes > 0 for _, hashes in locked.values()), "every pin needs its hashes"
    for line in (ROOT / "requirements.txt").read_text("utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name in locked, f"{req.name} is not in requirements.lock: run `make lock`"
        version = locked[name][0]
        assert req.specifier.contains(version, prereleases=True), (
            f"{req.name}=={version} is outside {req.specifier}: run `make lock`"
        )


# -- requirements-dev.lock (issue 18 N15) ------------------------------------------------------


def _pins(name: str) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) of every pin of a lock file (markers ignored)."""
    pins: dict[str, tuple[str, int]] = {}
    current = None
    for line in (ROOT / name).read_text("utf-8").splitlines():
        match = _PIN.match(line)
        if match:
            current = canonicalize_name(match.group(1))
            pins[current] = (match.group(2).rstrip(";"), 0)
        elif current and line.strip().startswith("--hash=sha256:"):
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
        elif not line.startswith(" "):
            current = None
    return pins


def test_dev_lock_pins_every_tool_within_its_range_with_hashes() -> None:
    locked = _pins("requirements-dev.lock")
    assert locked
    unhashed = sorted(name for name, (_, hashes) in locked.items() if hashes == 0)
    assert not unhashed, f"pins without hashes in requirements-dev.lock: {unhashed}"
    for source in ("requirements-dev.txt", "requirements.txt"):
        for line in (ROOT / source).read_text("utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            if not line or line.startswith("-r"):
                continue
            req = Requirement(line)
            name = canonicalize_name(req.name)
            assert name in locked, (
                f"{req.name} ({source}) is not in requirements-dev.lock: make lock"
            )
            assert req.specifier.contains(locked[name][0], prereleases=True), (
                f"{req.name}=={locked[name][0]} is outside {req.specifier}: run `make lock`"
            )


def test_dev_lock_agrees_with_the_runtime_lock() -> None:
    """The venv runs the runtime set at exactly the versions the Lambda layer ships."""
    runtime, dev = _pins("requirements.lock"), _pins("requirements-dev.lock")
    differ = {n: (v, dev[n][0]) for n, (v, _) in runtime.items() if n in dev and dev[n][0] != v}
    assert not differ, f"requirements-dev.lock differs from requirements.lock: {differ}"
    assert set(runtime) <= set(dev)


def test_make_venv_installs_both_locks_with_hashes_and_nothing_unpinned() -> None:
    makefile = (ROOT / "Makefile").read_text("utf-8")
    venv_recipe = makefile.split("$(STAMP):", 1)[1].split("\nvenv:", 1)[0]
    assert "requirements-dev.lock" in venv_recipe.splitlines()[0]  # rebuilt when it changes
    installs = [line.strip() for line in venv_recipe.splitlines() if "pip install" in line]
    assert any("--require-hashes -r requirements.lock" in line for line in installs)
    assert any("--require-hashes -r requirements-dev.lock" in line for line in installs)
    unpinned = [line for line in installs if " -r " in line and "--require-hashes" not in line]
    assert not unpinned, unpinned
    assert "-r requirements-dev.txt" not in venv_recipe
    lock_recipe = makefile.split("\nlock:", 1)[1].split("\n\n", 1)[0]
    assert "-o requirements-dev.lock" in lock_recipe and "--generate-hashes" in lock_recipe
