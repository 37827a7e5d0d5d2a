"""Where the checkout is, and the Lambda handler modules in it.

The tooling runs from a checkout (`pip install -e .`): the repository root is the nearest
directory above this file, or above the working directory, that holds `cdk.json`.
"""

from __future__ import annotations

import importlib
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

MARKER = "cdk.json"


def find_root(start: Path) -> Path | None:
    """The nearest directory at or above start that holds cdk.json, else None."""
    for directory in (start, *start.parents):
        if (directory / MARKER).is_file():
            return directory
    return None


@cache
def repo_root() -> Path:
    """The checkout's root directory (found from this file, else from the working directory)."""
    for start in (Path(__file__).resolve().parent, Path.cwd().resolve()):
        root = find_root(start)
        if root is not None:
            return root
    raise RuntimeError(
        f"no {MARKER} above {Path(__file__).resolve().parent} or {Path.cwd()}: "
        "the cardstatus tooling runs from a checkout of the repository"
    )


def import_function(name: str) -> ModuleType:
    """functions/<name>/app.py of this checkout (the real handler module, as Lambda loads it:
    `functions.<name>.app`)."""
    root = repo_root()
    if not (root / "functions" / name / "app.py").is_file():
        raise RuntimeError(f"functions/{name}/app.py not found under {root}")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module(f"functions.{name}.app")
