"""Cold start: three Powertools packages whose `__init__` imports far more than the api uses.

`aws_lambda_powertools.event_handler/__init__.py` imports every resolver (AppSync, AppSync
events, Bedrock agents, VPC Lattice, function URLs, ...) and
`aws_lambda_powertools.utilities.data_classes/__init__.py` every event class (S3, SQS,
Kinesis, CodePipeline, Cognito, ...), although the api needs one resolver and the few event
classes that resolver imports; `aws_lambda_powertools.event_handler.openapi/__init__.py`
imports the OpenAPI merge tool (`OpenAPIMerge`, unused at runtime) before any of the
validation modules the api needs. Python runs a package's `__init__` before any of its
submodules, so importing `event_handler.api_gateway` alone is not possible by ordinary means:
the first two were ~50 ms of the api's cold import (`python -X importtime`), the merge tool
~10 ms without bytecode.

`install()` registers each of these packages as a *lazy package* before anything imports it:
a module object with the real package's `__path__` (its submodules import normally), whose
`__init__` runs only when something asks for a name the package re-exports. A re-exported
name (`from aws_lambda_powertools.event_handler import Response`) resolves to the
submodule that defines it (read from the `__init__` source), a submodule to itself; any other
attribute runs the real `__init__` first, so nothing the package offers goes missing.
A package somebody already imported is left as it is.

`install()` also defers two modules' work (`_DeferredModules`): pydantic's plugin search
(with plugins disabled, as the stack has them, `importlib.metadata` is never imported) and
Powertools' JMESPath utilities (`jmespath` is imported by their first use).
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import re
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

LAZY_PACKAGES = (
    "aws_lambda_powertools.event_handler",
    "aws_lambda_powertools.event_handler.openapi",  # its __init__: the OpenAPI merge tool
    "aws_lambda_powertools.utilities.data_classes",
)

# `from <module> import (A, B as C, ...)` at the start of a line of an `__init__`.
_FROM_IMPORT = re.compile(r"^from\s+([\w.]+)\s+import\s+(\([^)]*\)|[^\n]+)", re.MULTILINE)


def _reexports(source: str) -> dict[str, tuple[str, str]]:
    """Names an `__init__` re-exports: public name -> (module, name in that module)."""
    names: dict[str, tuple[str, str]] = {}
    for module, imported in _FROM_IMPORT.findall(source):
        for part in imported.strip("()").split(","):
            words = part.split("#", 1)[0].split()
            if len(words) == 1:
                names[words[0]] = (module, words[0])
            elif len(words) == 3 and words[1] == "as":
                names[words[2]] = (module, words[0])
    return names


def _lazy_package(name: str) -> ModuleType | None:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or not spec.submodule_search_locations:
        return None
    source = spec.loader.get_source(name)  # type: ignore[attr-defined]
    if source is None:
        return None
    module = importlib.util.module_from_spec(spec)
    names = _reexports(source)
    state = {"initialised": False}

    def __getattr__(attr: str) -> Any:  # the module-level __getattr__ of PEP 562
        if attr in names:
            origin, real = names[attr]
            value = getattr(importlib.import_module(origin, package=name), real)
        elif attr.startswith("__") or state["initialised"]:
            raise AttributeError(f"module {name!r} has no attribute {attr!r}")
        elif importlib.util.find_spec(f"{name}.{attr}") is not None:
            value = importlib.import_module(f"{name}.{attr}")
        else:  # anything else: the package as its author wrote it
            state["initialised"] = True
            spec.loader.exec_module(module)  # type: ignore[union-attr]
            return getattr(module, attr)
        setattr(module, attr, value)
        return value

    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    return module


PLUGIN_LOADER = "pydantic.plugin._loader"
# The values of PYDANTIC_DISABLE_PLUGINS for which pydantic's get_plugins() finds no plugin.
_PLUGINS_DISABLED = ("__all__", "1", "true")
JMESPATH_UTILS = "aws_lambda_powertools.utilities.jmespath_utils"


# The finder and loaders below follow importlib's protocols without subclassing
# importlib.abc, whose import (importlib.resources, tempfile, shutil, ...) costs ~5 ms.


class _DeferredPluginSearch:
    """`pydantic.plugin._loader` without `importlib.metadata` while plugins are disabled.

    pydantic calls `get_plugins()` of that module whenever it builds a validator (the first
    time during the api's import); the module imports `importlib.metadata` (with email,
    zipfile, csv, tempfile, importlib.resources, ...: ~20 ms of the api's cold import) to
    search the installed distributions' entry points, a search `get_plugins()` skips when
    PYDANTIC_DISABLE_PLUGINS is one of `_PLUGINS_DISABLED`. Here the module is created with
    a `get_plugins()` that answers `()` in that case, as the real one does (the variable
    is read on each call, like pydantic does); otherwise, or when anything else of the
    module is asked for, the real module runs first and answers.
    """

    def __init__(self, real: Any) -> None:
        self.real = real

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None  # the default module

    def exec_module(self, module: ModuleType) -> None:
        real, state = self.real, {"ran": False}

        def run_real_module() -> None:
            if not state["ran"]:
                state["ran"] = True
                real.exec_module(module)  # replaces get_plugins with the real one

        def get_plugins() -> Any:
            if os.getenv("PYDANTIC_DISABLE_PLUGINS") in _PLUGINS_DISABLED:
                return ()
            run_real_module()
            return module.get_plugins()

        def __getattr__(attr: str) -> Any:  # PEP 562
            if attr.startswith("__") or state["ran"]:
                raise AttributeError(f"module {PLUGIN_LOADER!r} has no attribute {attr!r}")
            run_real_module()
            return getattr(module, attr)

        module.get_plugins = get_plugins  # type: ignore[attr-defined]
        module.__getattr__ = __getattr__  # type: ignore[method-assign]


class _DeferredModules:
    """Finds two modules the api imports (through Powertools and pydantic) but seldom runs,
    with a loader that defers their work:

    - `pydantic.plugin._loader`: `_DeferredPluginSearch`;
    - `aws_lambda_powertools.utilities.jmespath_utils`, imported by Powertools' logger for
      `inject_lambda_context(correlation_id_path=...)`, which the api does not use (app.py
      sets the correlation id itself): its JMESPath engine (`jmespath`, `gzip`: ~7 ms with
      bytecode, ~35 ms without) is imported by the first use of the module
      (`importlib.util.LazyLoader`), by other functions' code for instance.
    """

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in (PLUGIN_LOADER, JMESPATH_UTILS):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        real: Any = spec.loader if spec is not None else None
        if spec is None or not hasattr(real, "exec_module"):
            return None
        if fullname == PLUGIN_LOADER:
            spec.loader = _DeferredPluginSearch(real)  # type: ignore[assignment]
        else:
            spec.loader = importlib.util.LazyLoader(real)
        return spec


def install() -> None:
    """Make the packages of LAZY_PACKAGES lazy, unless already imported; defer the modules
    of `_DeferredModules` (those not imported yet)."""
    if not any(isinstance(finder, _DeferredModules) for finder in sys.meta_path):
        sys.meta_path.insert(0, _DeferredModules())
    for name in LAZY_PACKAGES:
        if name in sys.modules:
            continue
        parent_name, _, child = name.rpartition(".")
        parent = importlib.import_module(parent_name)
        module = _lazy_package(name)
        if module is None:
            continue
        sys.modules[name] = module
        setattr(parent, child, module)
