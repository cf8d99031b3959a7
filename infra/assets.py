"""Lambda code assets, built without Docker.

* The common layer: ``build/layer/python`` = ``ledgerline`` + the runtime dependencies,
  exactly as locked (``requirements/runtime.txt``, every file's hash checked), installed
  for Python 3.12 on arm64 (manylinux wheels only). It is rebuilt only when its inputs
  change (a fingerprint file next to it).
* The function code: a copy of the ``functions`` package without tests and caches.

Set ``LEDGERLINE_LAYER_DIR`` to an existing layer folder to skip the pip install (the
infra tests do, with a tiny placeholder, so they never wait on PyPI).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from infra.constants import LAYER_DIR_ENV
from infra.supply_chain import export_file

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LAYER_SOURCE = Path("layers/common/python/ledgerline")
FUNCTIONS_SOURCE = Path("functions")
_CACHES_AND_TESTS = ("__pycache__", "*.pyc", "tests", "test_*.py", "*_test.py", ".pytest_cache")
# What no Lambda runs: the laptop stand-ins (embedded PostgreSQL, moto, the local
# gateway), the test helpers and the operator's command line.
NOT_SHIPPED = ("local", "testing.py", "cli.py")
_IGNORED = shutil.ignore_patterns(*_CACHES_AND_TESTS)
_LAYER_IGNORED = shutil.ignore_patterns(*_CACHES_AND_TESTS, *NOT_SHIPPED)
_PIP_TARGET = (
    # The Python 3.12 runtime is Amazon Linux 2023 (glibc 2.34). pip matches each tag
    # exactly, so every manylinux generation up to it is named.
    *(arg for tag in ("manylinux2014", "manylinux_2_28", "manylinux_2_34") for arg in ("--platform", f"{tag}_aarch64")),
    "--only-binary=:all:",
    "--python-version",
    "3.12",
    "--implementation",
    "cp",
)


@dataclass(frozen=True)
class AssetPaths:
    functions: Path  # folder whose root holds the ``functions`` package
    layer: Path  # folder whose root holds ``python/`` (the Lambda layer layout)


def prepare_assets(root: Path = PROJECT_ROOT, build_dir: Path | None = None) -> AssetPaths:
    build = build_dir or root / "build"
    override = os.environ.get(LAYER_DIR_ENV)
    layer = Path(override) if override else build_layer(root, build / "layer")
    if not (layer / "python").is_dir():
        raise FileNotFoundError(f"{layer} has no python/ folder; a Lambda layer needs python/<packages>")
    return AssetPaths(functions=stage_functions(root, build / "functions"), layer=layer)


RUNTIME_LOCK = export_file("runtime")  # what the layer ships, exactly as locked


def layer_fingerprint(root: Path = PROJECT_ROOT) -> str:
    digest = hashlib.sha256()
    digest.update((root / RUNTIME_LOCK).read_bytes())
    digest.update(" ".join(_PIP_TARGET).encode())
    for path in _source_files(root / LAYER_SOURCE):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def build_layer(root: Path, dest: Path) -> Path:
    """Build the layer folder ``dest`` (``dest/python/...``) unless it is up to date."""
    fingerprint = layer_fingerprint(root)
    stamp = dest.with_name(dest.name + ".fingerprint")  # outside the asset: not shipped
    if stamp.is_file() and dest.is_dir() and stamp.read_text() == fingerprint:
        return dest
    staging = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    site = staging / "python"
    site.mkdir(parents=True)
    print(f"building Lambda layer in {dest} (pip install for arm64, Python 3.12)", file=sys.stderr)
    pip = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--require-hashes",
            "--no-deps",  # the lock lists every package: pip resolves nothing
            *_PIP_TARGET,
            "--target",
            str(site),
            "--requirement",
            str(root / RUNTIME_LOCK),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if pip.returncode != 0:
        raise RuntimeError(f"pip could not build the Lambda layer:\n{pip.stdout}{pip.stderr}")
    shutil.copytree(root / LAYER_SOURCE, site / "ledgerline", ignore=_LAYER_IGNORED)
    for cache in site.rglob("__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(dest, ignore_errors=True)
    staging.rename(dest)
    stamp.write_text(fingerprint)
    return dest


def stage_functions(root: Path, dest: Path) -> Path:
    """Copy ``functions/`` to ``dest/functions`` (only code the Lambdas import)."""
    target = dest / "functions"
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(root / FUNCTIONS_SOURCE, target, ignore=_IGNORED)
    return dest


def migrations_hash(root: Path, pattern: str) -> str:
    """A hash of the SQL files the migrator applies (paths and contents): the migrations and
    the routine files (one per function, re-applied when they change), for the migration
    trigger."""
    digest = hashlib.sha256()
    for path in sorted(root.glob(pattern)):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _source_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
