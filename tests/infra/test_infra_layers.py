"""The Lambda layers: deps built for arm64 without Docker, code layer with the RDS CA bundle."""

from __future__ import annotations

import os
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from infra.layers import load_build_module

build = load_build_module()
PYC = f"{build.PYC_TAG}.pyc"
HAVE_312 = build.find_python312().python is not None


def _pyc_for(py_name: str) -> str:
    """python/cardstatus/config.py -> python/cardstatus/__pycache__/config.cpython-312.pyc"""
    parent, _, module = py_name.rpartition("/")
    return f"{parent}/__pycache__/{module.removesuffix('.py')}.{PYC}"


def _assert_bytecode(names: list[str], read: Any, runtime_dir: str, note: str) -> None:
    """Every module has its CPython 3.12 unchecked-hash .pyc (naming the Lambda path), and
    no other bytecode; or, without a 3.12 here, none and the fallback warning."""
    sources = [n for n in names if n.endswith(".py")]
    compiled = [n for n in names if n.endswith(".pyc")]
    assert sources
    if not HAVE_312:
        assert compiled == []
        assert "ship sources only" in note, note
        return
    assert sorted(compiled) == sorted(_pyc_for(n) for n in sources)
    for name in sources[:20]:
        data = read(_pyc_for(name))
        assert data[:4] == build_magic_312()
        # PEP 552 flags: hash-based (1), check_source off (0): never re-checked against the
        # read-only source, no mtime in the header.
        assert int.from_bytes(data[4:8], "little") == 0b01
        rel = name.removeprefix("python/") if runtime_dir.startswith("/opt") else name
        assert f"{runtime_dir}/{rel}".encode() in data, (name, data[16:200])


def build_magic_312() -> bytes:
    return bytes.fromhex(build.find_python312().magic)


def test_pem_parsing_dedupes_and_rejects_garbage() -> None:
    assert build.pem_certificates("no certificates here") == []
    js = "exports.x = [\n  '-----BEGIN CERTIFICATE-----\\n' +\n  'AAAA\\n' +\n  '-----END CERTIFICATE-----\\n',\n];"
    text = build._js_string_literals(js)
    assert "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----" in text
    with pytest.raises(ValueError):  # not a certificate: refuse rather than ship garbage
        build.pem_certificates(text)


def test_deterministic_zip(tmp_path: Path) -> None:
    src = tmp_path / "src" / "python"
    src.mkdir(parents=True)
    (src / "b.py").write_text("b = 1\n")
    (src / "a.py").write_text("a = 1\n")
    one, two = tmp_path / "one.zip", tmp_path / "two.zip"
    build.write_deterministic_zip(src.parent, one)
    os.utime(src / "a.py", (0, 0))
    build.write_deterministic_zip(src.parent, two)
    assert one.read_bytes() == two.read_bytes()
    assert zipfile.ZipFile(one).namelist() == ["python/a.py", "python/b.py"]


def test_code_layer_has_package_and_ca_bundle() -> None:
    art = build.build_code()
    root = art.directory / "python" / "cardstatus"
    assert (root / "config.py").is_file()
    assert (root / "sql" / "migrations").is_dir()
    assert not list(art.directory.rglob("*.egg-info"))
    bundle = art.directory / build.CA_IN_LAYER
    # `make test` runs `npm ci` first, so the npm source of the bundle is always there.
    assert bundle.is_file(), f"no RDS CA bundle in the layer ({art.note}); run `npm ci`"
    certs = build.pem_certificates(bundle.read_text("ascii"))
    # AWS's global RDS bundle has ~100 certificates; the proxy needs the Amazon roots too.
    assert len(certs) >= 50
    print(
        f"\ncode layer: {art.unzipped_bytes / 1e6:.2f} MB unzipped, {len(certs)} CA certs, {art.note}"
    )


def test_code_layer_ships_no_local_tooling() -> None:
    """The code layer is the runtime package only: the CLI, the local stack and the local
    server (tools/cardstatus_dev) never reach Lambda, and neither does a handler module."""
    art = build.build_code()
    with zipfile.ZipFile(art.zip_path) as zf:
        names = zf.namelist()
    modules = {n.removeprefix("python/") for n in names if n.endswith(".py")}
    assert "cardstatus/config.py" in modules
    for tooling in ("cli", "local", "localdb", "serve", "__main__", "database", "openapi"):
        assert f"cardstatus/{tooling}.py" not in modules, tooling
    assert not [n for n in names if "cardstatus_dev" in n or n.startswith("python/functions/")]
    print(f"\ncode layer zip: {art.zip_path.stat().st_size} bytes, {len(modules)} modules")


def test_a_second_build_of_a_layer_waits_for_the_first() -> None:
    """Two builds at once (a test run beside `cdk synth`) once shared the staging folder and
    left a broken code.zip under a valid stamp: a build now holds its layer's lock."""
    import threading

    build.build_code()  # nothing to do after this but check the stamp
    done = threading.Event()
    with build.one_build_at_a_time("code"):
        second = threading.Thread(target=lambda: (build.build_code(), done.set()))
        second.start()
        assert not done.wait(1.0)  # it waits for the lock held here
    second.join(60)
    assert done.is_set()
    with zipfile.ZipFile(build.build_code().zip_path) as zf:
        assert zf.testzip() is None


def test_code_layer_ships_cpython312_bytecode() -> None:
    """Lambda's /opt is read-only: without .pyc every cold start compiles every module."""
    art = build.build_code()
    with zipfile.ZipFile(art.zip_path) as zf:
        _assert_bytecode(zf.namelist(), zf.read, build.LAYER_RUNTIME_DIR, art.note)
    if HAVE_312:
        assert "python/cardstatus/__pycache__/db.cpython-312.pyc" in zf.namelist()


def test_compile_tree_is_reproducible_and_independent_of_the_build_dir(tmp_path: Path) -> None:
    if not HAVE_312:
        pytest.skip("covered by test_compile_tree_without_python312_warns_and_ships_sources")
    trees = []
    for where in ("one", "elsewhere/two"):
        src = tmp_path / where / "python" / "pkg"
        src.mkdir(parents=True)
        # A set literal of strings: marshalled in hash order (the build fixes the seed).
        (src / "__init__.py").write_text("X = frozenset({'a', 'b', 'c', 'd', 'e', 'f'})\n")
        (src / "mod.py").write_text("def f(x):\n    return x in {'q', 'r', 's', 't'}\n")
        assert build.compile_tree(src.parent, build.LAYER_RUNTIME_DIR) == ""
        trees.append(src)
    for name in ("__init__", "mod"):
        one, two = (t / "__pycache__" / f"{name}.{PYC}" for t in trees)
        assert one.read_bytes() == two.read_bytes()
        assert b"/opt/python/pkg/" in one.read_bytes()
        assert str(tmp_path).encode() not in one.read_bytes()
    # The .pyc is what 3.12 loads (no recompilation: the source is never looked at again).
    probe = "import pkg.mod, sys; print(pkg.mod.__cached__, pkg.mod.f('q'))"
    out = subprocess.run(
        [build.find_python312().python, "-B", "-c", probe],
        env={**build._compile_env(), "PYTHONPATH": str(trees[0].parent)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.split() == [str(trees[0] / "__pycache__" / f"mod.{PYC}"), "True"]


def test_compile_tree_without_python312_warns_and_ships_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = build.Bytecode(None, note="no CPython 3.12 was found: ... ship sources only")
    monkeypatch.setattr(build, "find_python312", lambda: missing)
    (tmp_path / "m.py").write_text("x = 1\n")
    assert build.compile_tree(tmp_path, build.LAYER_RUNTIME_DIR) == missing.note
    assert "WARNING: no CPython 3.12" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.pyc"))
    assert missing.fingerprint() == "sources only"  # part of the stamps: rebuilt once found


def test_python312_lookup_checks_what_it_finds(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pyenv shim named python3.12 that cannot run, or a wrong version, is not taken."""
    monkeypatch.setenv(build.PYTHON312_ENV, "/nonexistent/python3.12")
    found = build.find_python312.__wrapped__()
    assert found.python is None and build.PYTHON312_ENV in found.note
    monkeypatch.setenv(build.PYTHON312_ENV, "none")
    assert build.find_python312.__wrapped__().python is None
    monkeypatch.delenv(build.PYTHON312_ENV)
    found = build.find_python312.__wrapped__()
    if found.python is not None:
        assert found.version.startswith("3.12.")


def test_missing_python312_is_a_synth_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    from infra import layers

    missing = build.Bytecode(None, note="no CPython 3.12 was found: sources only")
    code = build.LayerArtifact("code", build.BUILD / "code.zip", build.BUILD / "code", 0, False)
    monkeypatch.setattr(build, "find_python312", lambda: missing)
    monkeypatch.setattr(build, "build_code", lambda: code)
    assert missing.note in layers.layer_assets("cached").warnings


@pytest.mark.slow
def test_deps_layer_is_arm64_without_boto3_tests_or_pandas() -> None:
    """Builds the layer with pip (PyPI access; a few seconds when cached by the stamp)."""
    art = build.build_deps()
    site = art.directory / "python"
    so_files = list((site / "psycopg2").glob("_psycopg*.so"))
    assert so_files and all("aarch64" in p.name for p in so_files), so_files
    assert "cpython-312" in so_files[0].name
    for banned in ("boto3", "botocore", "s3transfer", "pandas", "numpy"):
        assert not (site / banned).exists(), banned
    assert not [p for p in site.rglob("*") if p.is_dir() and p.name == "tests"]
    for needed in (
        "aws_lambda_powertools",
        "phonenumbers",
        "pydantic",
        "pydantic_core",
        "aws_xray_sdk",
    ):
        assert (site / needed).is_dir(), needed
    with zipfile.ZipFile(art.zip_path) as zf:
        names = zf.namelist()
        _assert_bytecode(names, zf.read, build.LAYER_RUNTIME_DIR, art.note or _deps_note())
    assert all(n.startswith("python/") for n in names)
    unzipped_mb = art.unzipped_bytes / 1e6
    print(
        f"\ndeps layer: {unzipped_mb:.1f} MB unzipped, "
        f"{art.zip_path.stat().st_size / 1e6:.1f} MB zipped ({'rebuilt' if art.rebuilt else 'cached'})"
    )
    # Lambda's limit is 250 MB unzipped for function + layers; stay far below it.
    assert unzipped_mb < 60


def _deps_note() -> str:
    """A cached deps build has no note: the fallback's warning is find_python312()'s."""
    return build.find_python312().note


@pytest.mark.parametrize("name", ["api", "audit", "ingest", "migrate", "sweeper", "void"])
def test_function_asset_is_its_handler_package_only(name: str) -> None:
    """Each function ships functions/__init__.py and functions/<name>/ only, so its handler
    `functions.<name>.app.handler` imports the same way in Lambda as in the tests."""
    from infra.functions import function_asset

    root = function_asset(name)
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert "functions/__init__.py" in files
    assert f"functions/{name}/app.py" in files
    shared = ("functions/__init__.py", f"functions/__pycache__/__init__.{PYC}")
    assert all(f in shared or f.startswith(f"functions/{name}/") for f in files)
    _assert_bytecode(
        files, lambda f: (root / f).read_bytes(), build.FUNCTION_RUNTIME_DIR, _deps_note()
    )
