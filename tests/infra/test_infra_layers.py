"""The Lambda layers: deps built for arm64 without Docker, code layer with the RDS CA bundle."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from infra.layers import load_build_module

build = load_build_module()


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
    assert not list(art.directory.rglob("__pycache__"))
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
    assert not [p for p in site.rglob("*") if p.is_dir() and p.name in ("tests", "__pycache__")]
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
    assert all(n.startswith("python/") for n in names)
    unzipped_mb = art.unzipped_bytes / 1e6
    print(
        f"\ndeps layer: {unzipped_mb:.1f} MB unzipped, "
        f"{art.zip_path.stat().st_size / 1e6:.1f} MB zipped ({'rebuilt' if art.rebuilt else 'cached'})"
    )
    # Lambda's limit is 250 MB unzipped for function + layers; stay far below it.
    assert unzipped_mb < 60


@pytest.mark.parametrize("name", ["api", "ingest", "migrate", "sweeper"])
def test_function_asset_is_its_handler_package_only(name: str) -> None:
    """Each function ships functions/__init__.py and functions/<name>/ only, so its handler
    `functions.<name>.app.handler` imports the same way in Lambda as in the tests."""
    from infra.functions import function_asset

    root = function_asset(name)
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert "functions/__init__.py" in files
    assert f"functions/{name}/app.py" in files
    assert all(f == "functions/__init__.py" or f.startswith(f"functions/{name}/") for f in files)
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]
