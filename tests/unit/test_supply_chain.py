"""The lock, the environment built from it, and the licences the layer may ship."""

from __future__ import annotations

import importlib.metadata
import shutil
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from infra import supply_chain
from infra.supply_chain import Policy

ROOT = supply_chain.PROJECT_ROOT
# Installed beside the lock, never from it: the installer itself, and this project.
NOT_LOCKED = {"pip", supply_chain.PROJECT}


def test_pyproject_the_lock_and_its_exports_agree() -> None:
    assert supply_chain.lock_findings() == []


def test_this_environment_holds_exactly_the_locked_versions() -> None:
    installed = {
        canonicalize_name(d.metadata["Name"]): d.version
        for d in importlib.metadata.distributions()
        if canonicalize_name(d.metadata["Name"]) not in NOT_LOCKED
    }
    locked = supply_chain.pins("dev")
    assert {n: v for n, v in installed.items() if locked.get(n) != v} == {}, "installed, but not as locked"
    assert {n: v for n, v in locked.items() if installed.get(n) != v} == {}, "locked, but not installed"


def _copy_of_the_project(tmp_path: Path) -> Path:
    for name in ("pyproject.toml", supply_chain.LOCK_FILE):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / supply_chain.EXPORT_DIR, tmp_path / supply_chain.EXPORT_DIR)
    return tmp_path


def test_a_range_changed_without_the_lock_names_the_command_to_run(tmp_path: Path) -> None:
    root = _copy_of_the_project(tmp_path)
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text()
    assert '"pyotp>=2.9",' in text
    pyproject.write_text(text.replace('"pyotp>=2.9",', '"pyotp>=2.10",'))

    findings = supply_chain.lock_findings(root)
    assert any("pyotp>=2.10" in f and "not resolved for" in f for f in findings), findings
    assert any("pyotp>=2.9" in f and "no longer asks for" in f for f in findings), findings
    assert "make lock" in findings[-1]


def test_a_new_dependency_without_the_lock_is_named(tmp_path: Path) -> None:
    root = _copy_of_the_project(tmp_path)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"pyotp>=2.9",', '"pyotp>=2.9",\n    "left-pad>=1",'))
    assert "left-pad>=1" in supply_chain.lock_findings(root)[0]


def test_an_export_edited_by_hand_is_named(tmp_path: Path) -> None:
    root = _copy_of_the_project(tmp_path)
    runtime = supply_chain.export_path("runtime", root)
    runtime.write_text(runtime.read_text().replace("pyotp==", "pyotp>="))
    assert supply_chain.lock_findings(root) == [
        f"requirements/runtime.txt is not the export of uv.lock: {supply_chain.HOW_TO_UPDATE}"
    ]


def test_every_runtime_package_carries_an_allowed_licence() -> None:
    dists = supply_chain.runtime_distributions()
    assert len(dists) == len(supply_chain.pins("runtime"))
    assert supply_chain.licence_findings(dists, Policy.load()) == []


@pytest.fixture
def strict() -> Policy:
    """The repository's policy, without its exceptions."""
    policy = Policy.load()
    return Policy(allowed=policy.allowed, declared=policy.declared, exceptions={})


def test_a_licence_outside_the_list_is_named_with_its_package(strict: Policy) -> None:
    driver = importlib.metadata.distribution("psycopg2-binary")
    assert supply_chain.licence_findings([driver], strict) == [
        f"psycopg2-binary {driver.version}: LGPL-3.0-or-later is not in licences.toml's allowed list"
    ]
    assert supply_chain.licence_findings([driver], Policy.load()) == [], "shipped as a stated exception"


def test_either_choice_of_an_or_is_enough_and_every_part_of_an_and_is_needed(strict: Policy) -> None:
    allowed = frozenset({"MIT"})
    assert supply_chain._allowed("MIT OR GPL-3.0-only", allowed)
    assert not supply_chain._allowed("MIT AND GPL-3.0-only", allowed)
    assert not supply_chain._allowed("GPL-3.0-or-later", strict.allowed)


def test_a_package_whose_licence_cannot_be_read_is_refused(strict: Policy, tmp_path: Path) -> None:
    info = tmp_path / "mystery-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mystery\nVersion: 1.0\nLicense: see LICENSE\n")
    (dist,) = importlib.metadata.distributions(path=[str(tmp_path)])
    assert supply_chain.licence_of(dist, strict) is None
    assert supply_chain.licence_findings([dist], strict) == [
        "mystery 1.0: no licence could be determined; declare it in licences.toml"
    ]
