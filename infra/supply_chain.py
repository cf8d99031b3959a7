"""What Ledgerline runs, known exactly: one lock, the licences the layer may ship, the SBOM.

* ``uv.lock`` is the one lock (uv, universal: Linux, CPython 3.11 and 3.12, x86_64 and the
  Lambdas' aarch64). ``requirements/<set>.txt`` are its exports with every file's hash,
  one per environment (``EXPORTS``); pip installs them with ``--require-hashes``:
  ``make test``/``make run`` the ``dev`` set, the layer build the ``runtime`` set.
* ``make lock`` re-resolves and re-exports (``make lock LOCK_ARGS=--upgrade`` to move every
  pin, ``LOCK_ARGS='--upgrade-package boto3'`` one). ``check`` (in ``make lint``) fails
  when ``pyproject.toml`` and the lock, or the lock and its exports, disagree.
* ``licences.toml`` is the allow-list of licences the Lambda layer may ship;
  ``licence_findings`` names every runtime package outside it.
* ``write_sbom`` writes the layer's CycloneDX SBOM (``make synth``: beside the templates).

``python -m infra.supply_chain check | export | licences``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import subprocess
import sys
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PROJECT = "ledgerline"
LOCK_FILE = "uv.lock"
EXPORT_DIR = "requirements"
POLICY_FILE = "licences.toml"
SBOM_FILE = "ledgerline-layer.cdx.json"
# Each environment and the extras it installs: the layer (runtime), a laptop that only
# runs the stack (local), a developer or CI (dev: everything make test needs), a deploy
# machine (infra).
EXPORTS: Mapping[str, tuple[str, ...]] = {
    "runtime": (),
    "local": ("local",),
    "dev": ("dev", "infra"),
    "infra": ("infra",),
}
HOW_TO_UPDATE = "run `make lock` (it re-resolves uv.lock and rewrites requirements/*.txt) and commit the result"


# -- the lock ----------------------------------------------------------------------------


def _requirement_key(requirement: Requirement, extra: str | None = None) -> tuple[str, str, str, str]:
    marker = str(requirement.marker) if requirement.marker else ""
    if extra:
        marker = f"({marker}) and extra == '{extra}'" if marker else f"extra == '{extra}'"
    return (
        canonicalize_name(requirement.name),
        ",".join(sorted(str(s) for s in requirement.specifier)),
        ",".join(sorted(requirement.extras)),
        str(Marker(marker)) if marker else "",
    )


def declared_requirements(root: Path = PROJECT_ROOT) -> set[tuple[str, str, str, str]]:
    """What ``pyproject.toml`` asks for: its dependencies and every extra's."""
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    found = {_requirement_key(Requirement(r)) for r in project.get("dependencies", [])}
    for extra, requirements in project.get("optional-dependencies", {}).items():
        found |= {_requirement_key(Requirement(r), extra) for r in requirements}
    return found


def locked_requirements(root: Path = PROJECT_ROOT) -> set[tuple[str, str, str, str]]:
    """What ``uv.lock`` was resolved for (uv records the project's requirements in it)."""
    lock = tomllib.loads((root / LOCK_FILE).read_text())
    project = next(p for p in lock["package"] if p["name"] == PROJECT)
    found = set()
    for entry in project.get("metadata", {}).get("requires-dist", []):
        text = entry["name"]
        if entry.get("extras"):
            text += f"[{','.join(entry['extras'])}]"
        text += entry.get("specifier", "")
        if entry.get("marker"):
            text += f"; {entry['marker']}"
        found.add(_requirement_key(Requirement(text)))
    return found


def export(extras: Iterable[str], root: Path = PROJECT_ROOT) -> str:
    """One environment's requirements, exported from the lock (no resolution: offline)."""
    command = ["uv", "export", "--frozen", "--no-emit-project", "--no-header", "--format", "requirements-txt"]
    for extra in extras:
        command += ["--extra", extra]
    done = subprocess.run(
        [sys.executable, "-m", "uv", *command[1:]], cwd=root, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"uv export failed: {done.stderr.strip()}")
    return f"# Exported from uv.lock by `make lock`: do not edit; {HOW_TO_UPDATE}.\n{done.stdout}"


def export_file(name: str) -> Path:
    """An environment's requirements file, relative to the project's root."""
    return Path(EXPORT_DIR) / f"{name}.txt"


def export_path(name: str, root: Path = PROJECT_ROOT) -> Path:
    return root / export_file(name)


def lock_findings(root: Path = PROJECT_ROOT) -> list[str]:
    """Why the lock cannot be trusted as it is (empty when pyproject, lock and exports agree)."""
    if not (root / LOCK_FILE).is_file():
        return [f"{LOCK_FILE} is missing: {HOW_TO_UPDATE}"]
    findings = []
    declared, locked = declared_requirements(root), locked_requirements(root)
    for name, specifier, extras, marker in sorted(declared - locked):
        findings.append(f"pyproject.toml asks for {name}{f'[{extras}]' if extras else ''}{specifier}"
                        f"{f' ({marker})' if marker else ''}, which {LOCK_FILE} was not resolved for")  # fmt: skip
    for name, specifier, _, marker in sorted(locked - declared):
        findings.append(f"{LOCK_FILE} was resolved for {name}{specifier}{f' ({marker})' if marker else ''}, "
                        "which pyproject.toml no longer asks for")  # fmt: skip
    if findings:
        return [*findings, HOW_TO_UPDATE]
    for name, extras in EXPORTS.items():
        path = export_path(name, root)
        if not path.is_file() or path.read_text() != export(extras, root):
            findings.append(f"{path.relative_to(root)} is not the export of {LOCK_FILE}: {HOW_TO_UPDATE}")
    return findings


def pins(name: str, root: Path = PROJECT_ROOT) -> dict[str, str]:
    """An export's pins that apply to this interpreter: canonical name -> version."""
    found = {}
    for line in export_path(name, root).read_text().splitlines():
        if not line or line[0] in "# " or line.startswith("--"):
            continue
        requirement = Requirement(line.rstrip(" \\"))
        if requirement.marker is None or requirement.marker.evaluate():
            (version,) = (s.version for s in requirement.specifier)
            found[canonicalize_name(requirement.name)] = version
    return found


def write_exports(root: Path = PROJECT_ROOT) -> None:
    (root / EXPORT_DIR).mkdir(exist_ok=True)
    for name, extras in EXPORTS.items():
        export_path(name, root).write_text(export(extras, root))


# -- licences ----------------------------------------------------------------------------

# Trove classifiers that name exactly one SPDX licence (a bare "BSD License" does not).
_CLASSIFIERS = {
    "License :: OSI Approved :: MIT License": "MIT",
    "License :: OSI Approved :: MIT No Attribution License (MIT-0)": "MIT-0",
    "License :: OSI Approved :: Apache Software License": "Apache-2.0",
    "License :: OSI Approved :: ISC License (ISCL)": "ISC",
    "License :: OSI Approved :: Python Software Foundation License": "PSF-2.0",
    "License :: OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
}


@dataclass(frozen=True)
class Policy:
    allowed: frozenset[str]  # SPDX ids
    declared: Mapping[str, str]  # package -> SPDX expression, where its metadata says none
    exceptions: Mapping[str, str]  # package -> why it ships although its licence is not allowed

    @classmethod
    def load(cls, root: Path = PROJECT_ROOT) -> Policy:
        data = tomllib.loads((root / POLICY_FILE).read_text())
        return cls(
            allowed=frozenset(data["allowed"]),
            declared={canonicalize_name(k): v["licence"] for k, v in data.get("declared", {}).items()},
            exceptions={canonicalize_name(k): v["reason"] for k, v in data.get("exceptions", {}).items()},
        )


def _spdx(text: str | None) -> str | None:
    """``text`` as a valid SPDX expression of known ids, else None."""
    if not text or "\n" in text.strip():
        return None
    from license_expression import ExpressionError, get_spdx_licensing

    licensing = get_spdx_licensing()
    try:
        parsed = licensing.parse(text.strip(), validate=True, strict=True)
    except ExpressionError:
        return None
    return str(parsed) if parsed is not None and not licensing.unknown_license_keys(parsed) else None


def licence_of(dist: importlib.metadata.Distribution, policy: Policy) -> str | None:
    """The package's SPDX licence expression: the policy's declaration, else the
    metadata's License-Expression, its License field if that is SPDX, or its one
    unambiguous classifier; None when none of these says."""
    metadata = dist.metadata
    name = canonicalize_name(metadata["Name"])
    if name in policy.declared:
        return policy.declared[name]
    for text in (metadata.get("License-Expression"), metadata.get("License")):
        if expression := _spdx(text):
            return expression
    mapped = sorted({_CLASSIFIERS[c] for c in metadata.get_all("Classifier") or [] if c in _CLASSIFIERS})
    return " OR ".join(mapped) if mapped else None


def _allowed(expression: str, allowed: frozenset[str]) -> bool:
    from license_expression import AND, OR, LicenseSymbol, LicenseWithExceptionSymbol, get_spdx_licensing

    def ok(node: object) -> bool:
        if isinstance(node, LicenseWithExceptionSymbol):
            return node.license_symbol.key in allowed
        if isinstance(node, LicenseSymbol):
            return node.key in allowed
        if isinstance(node, OR):
            return any(ok(arg) for arg in node.args)
        if isinstance(node, AND):
            return all(ok(arg) for arg in node.args)
        return False

    return ok(get_spdx_licensing().parse(expression))


def licence_findings(dists: Iterable[importlib.metadata.Distribution], policy: Policy) -> list[str]:
    """One line per package the layer may not ship (empty when every licence is allowed)."""
    findings = []
    for dist in dists:
        name = canonicalize_name(dist.metadata["Name"])
        if name == PROJECT or name in policy.exceptions:
            continue
        expression = licence_of(dist, policy)
        if expression is None:
            findings.append(f"{name} {dist.version}: no licence could be determined; declare it in {POLICY_FILE}")
        elif not _allowed(expression, policy.allowed):
            findings.append(f"{name} {dist.version}: {expression} is not in {POLICY_FILE}'s allowed list")
    return findings


def runtime_distributions(root: Path = PROJECT_ROOT) -> list[importlib.metadata.Distribution]:
    """This environment's copies of the layer's packages (installed from the same lock)."""
    return [importlib.metadata.distribution(name) for name in sorted(pins("runtime", root))]


# -- the SBOM ----------------------------------------------------------------------------


def write_sbom(site: Path, path: Path, root: Path = PROJECT_ROOT) -> int:
    """Write the CycloneDX (JSON, 1.6) SBOM of the packages installed in the layer folder
    ``site``: name, version, purl and licence of each. Returns how many it lists."""
    from cyclonedx.contrib.license.factories import LicenseFactory
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    policy = Policy.load(root)
    version = tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]
    bom = Bom()
    layer = Component(name=f"{PROJECT}-layer", version=version, type=ComponentType.LIBRARY, bom_ref=PROJECT)
    bom.metadata.component = layer
    dists = sorted(importlib.metadata.distributions(path=[str(site)]), key=lambda d: canonicalize_name(d.name))
    packages = []
    for dist in dists:
        name = canonicalize_name(dist.metadata["Name"])
        expression = licence_of(dist, policy)
        purl = PackageURL(type="pypi", name=name, version=dist.version)
        packages.append(
            Component(
                name=name,
                version=dist.version,
                type=ComponentType.LIBRARY,
                purl=purl,
                bom_ref=purl.to_string(),
                licenses=[LicenseFactory().make_from_string(expression)] if expression else [],
            )
        )
    bom.components.update(packages)
    bom.register_dependency(layer, packages)  # the layer ships each of them (a flat graph: pip resolved nothing)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(JsonV1Dot6(bom).output_as_string(indent=2))
    return len(dists)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the lock, the licences, the SBOM")
    parser.add_argument("command", choices=("check", "export", "licences"))
    args = parser.parse_args(argv)
    if args.command == "export":
        write_exports()
        print(f"wrote {', '.join(str(export_path(n).relative_to(PROJECT_ROOT)) for n in EXPORTS)}")
        return 0
    if args.command == "licences":
        findings = licence_findings(runtime_distributions(), Policy.load())
        print(json.dumps({"runtime_packages": len(pins("runtime")), "findings": findings}, indent=2))
        return 1 if findings else 0
    findings = lock_findings()
    for finding in findings:
        print(f"lock: {finding}", file=sys.stderr)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
