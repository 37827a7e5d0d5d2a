"""Lambda layer assets for synth: built by layers/build.py, or placeholders when offline.

Context ``cardstatus:layerBuild``:
* ``auto`` (default): rebuild when inputs changed (needs PyPI the first time);
* ``cached``: never run pip; use the last build, or an empty placeholder (tests, offline).
A placeholder makes synth succeed but the stack must not be deployed: synth warns.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from infra.settings import ROOT

BUILD_SCRIPT = ROOT / "layers" / "build.py"
PLACEHOLDER = ROOT / "layers" / "build" / "placeholder"


@dataclass(frozen=True)
class LayerAssets:
    deps: Path
    code: Path
    deps_unzipped_bytes: int
    code_unzipped_bytes: int
    warnings: tuple[str, ...]


def load_build_module() -> ModuleType:
    name = "cardstatus_layer_build"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BUILD_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _placeholder(kind: str) -> Path:
    path = PLACEHOLDER / kind / "python"
    path.mkdir(parents=True, exist_ok=True)
    (path / "PLACEHOLDER.txt").write_text(
        f"The {kind} layer was not built when this app was synthesised.\n"
        "Run `python layers/build.py` (needs PyPI) before deploying.\n",
        "utf-8",
    )
    return path.parent


def layer_assets(mode: str = "auto") -> LayerAssets:
    build = load_build_module()
    warnings: list[str] = []
    deps_zip: Path = build.BUILD / "deps.zip"
    deps_dir: Path = build.BUILD / "deps"
    if mode == "auto":
        try:
            art = build.build_deps()
            deps_zip, deps_dir = art.zip_path, art.directory
        except build.LayerBuildError as exc:
            warnings.append(f"deps layer could not be rebuilt ({str(exc).splitlines()[0]})")
    deps: Path
    deps_size = 0
    if deps_zip.is_file() and deps_dir.is_dir():
        deps = deps_zip
        deps_size = build._tree_size(deps_dir)
        if mode != "auto" and build._read_stamp(build.BUILD / "deps.stamp") != build.deps_stamp():
            warnings.append(
                "deps layer is older than requirements.lock or the build recipe (or was built "
                "with another Python for bytecode): run layers/build.py"
            )
    else:
        deps = _placeholder("deps")
        warnings.append(
            "deps layer NOT BUILT: synthesised with an empty placeholder; do not deploy this "
            "template (run `python layers/build.py` with PyPI access first)"
        )
    code_art = build.build_code()
    if code_art.note.startswith("RDS CA bundle MISSING"):
        warnings.append(code_art.note)
    bytecode = build.find_python312()
    if bytecode.python is None:  # layers and function assets alike ship sources only
        warnings.append(bytecode.note)
    return LayerAssets(
        deps=deps,
        code=code_art.zip_path,
        deps_unzipped_bytes=deps_size,
        code_unzipped_bytes=code_art.unzipped_bytes,
        warnings=tuple(warnings),
    )
