"""Settings from context, asset building and naming: fast checks without a synth."""

from __future__ import annotations

import ast
import json
import subprocess
from importlib.metadata import distributions
from pathlib import Path

import pytest
from aws_cdk import App
from packaging.utils import canonicalize_name

from infra import assets as build
from infra import constants as c
from infra import supply_chain
from infra.app import Tables, build_app
from infra.assets import AssetPaths
from infra.settings import InfraSettings
from ledgerline.routes import ROUTES, Access, Route


def _settings(**context: str) -> InfraSettings:
    return InfraSettings.from_context(App(context=context).node)


def test_context_overrides_defaults_with_typed_values() -> None:
    settings = _settings(auditRetentionDays="2555", dbMaxCapacity="16", bastion="true",
                         resourcePrefix="ll-stage")  # fmt: skip
    assert settings.audit_retention_days == 2555
    assert settings.db_max_capacity == 16.0
    assert settings.bastion is True
    assert settings.resource_prefix == "ll-stage"
    assert _settings() == InfraSettings()


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"auditRetentionDays": "forever"}, "auditRetentionDays='forever': expected int"),
        ({"auditRetentionDays": "0"}, "at least 1 day"),
        ({"bastion": "maybe"}, "expected bool"),
        ({"resourcePrefix": "Ledger_Line"}, "lowercase"),
        ({"dbMinCapacity": "4", "dbMaxCapacity": "2"}, "dbMinCapacity"),
    ],
)
def test_bad_context_is_refused_with_the_key_and_what_to_do(context: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _settings(**context)


def test_function_names_too_long_for_lambda_are_refused_with_a_hint() -> None:
    names = c.Names("a-rather-long-prefix")
    with pytest.raises(ValueError, match="shorter resource prefix"):
        names.route_function("X" * 60)
    assert c.queue_url_env("merchant-webhooks") == "LEDGERLINE_QUEUE_MERCHANT_WEBHOOKS_URL"


def _project(root: Path) -> Path:
    (root / "layers/common/python/ledgerline").mkdir(parents=True)
    (root / "layers/common/python/ledgerline/__init__.py").write_text("VERSION = 1\n")
    (root / "layers/common/python/ledgerline/__pycache__").mkdir()
    (root / "layers/common/python/ledgerline/__pycache__/x.pyc").write_bytes(b"\0")
    (root / "requirements").mkdir()
    (root / build.RUNTIME_LOCK).write_text("pyjwt==2.8.0 --hash=sha256:" + "0" * 64 + "\n")
    return root


def test_layer_is_rebuilt_only_when_its_inputs_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _project(tmp_path)
    installs: list[list[str]] = []

    def fake_pip(command: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        installs.append(command)
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(build.subprocess, "run", fake_pip)
    layer = build.build_layer(root, tmp_path / "build/layer")
    build.build_layer(root, tmp_path / "build/layer")
    assert len(installs) == 1, "an unchanged layer is not rebuilt"
    command = installs[0]
    platforms = {command[i + 1] for i, arg in enumerate(command) if arg == "--platform"}
    assert platforms == {"manylinux2014_aarch64", "manylinux_2_28_aarch64", "manylinux_2_34_aarch64"}
    assert command[command.index("--python-version") + 1] == "3.12"
    assert "--only-binary=:all:" in command
    assert {"--require-hashes", "--no-deps"} <= set(command), "exactly the lock, every file's hash checked"
    assert command[-2:] == ["--requirement", str(root / build.RUNTIME_LOCK)]
    assert (layer / "python/ledgerline/__init__.py").read_text() == "VERSION = 1\n"
    assert not list(layer.rglob("__pycache__"))
    assert not (layer / ".fingerprint").exists(), "the cache stamp is not shipped in the layer"

    (root / "layers/common/python/ledgerline/__init__.py").write_text("VERSION = 2\n")
    build.build_layer(root, tmp_path / "build/layer")
    (root / build.RUNTIME_LOCK).write_text("pyjwt==2.9.0 --hash=sha256:" + "1" * 64 + "\n")
    build.build_layer(root, tmp_path / "build/layer")
    assert len(installs) == 3, "a new lock rebuilds the layer"


def test_a_failed_pip_install_says_so_and_keeps_the_previous_layer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _project(tmp_path)
    results = iter([0, 1])
    monkeypatch.setattr(
        build.subprocess,
        "run",
        lambda command, **_: subprocess.CompletedProcess(command, next(results), "", "no wheel"),
    )
    layer = build.build_layer(root, tmp_path / "build/layer")
    (root / "layers/common/python/ledgerline/__init__.py").write_text("VERSION = 2\n")
    with pytest.raises(RuntimeError, match="no wheel"):
        build.build_layer(root, tmp_path / "build/layer")
    assert (layer / "python/ledgerline/__init__.py").read_text() == "VERSION = 1\n"


def _ledgerline_imports(source: Path) -> set[str]:
    """Every ``ledgerline.*`` module a file imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "ledgerline")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "ledgerline":
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)  # "from pkg import module"
    return found


def test_the_layer_ships_no_laptop_stand_in_no_test_helper_and_nothing_that_needs_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(build.subprocess, "run", lambda command, **_: subprocess.CompletedProcess(command, 0, "", ""))
    site = build.build_layer(build.PROJECT_ROOT, tmp_path / "layer") / "python"
    shipped = {p.relative_to(site).as_posix() for p in site.rglob("*.py")}

    assert "ledgerline/routes.py" in shipped and "ledgerline/db/migrate.py" in shipped
    assert not [p for p in shipped if p.startswith("ledgerline/local/")]
    assert not [p for p in shipped if p.endswith(("/testing.py", "/cli.py"))]
    assert list((site / "ledgerline/db/routines").glob("*.sql")), "the routine files ship with the migrator"

    def importable(name: str) -> bool:
        """A shipped module, or a name a shipped module binds (``from ledgerline.db import Cursor``)."""
        path = name.replace(".", "/")
        if f"{path}.py" in shipped or f"{path}/__init__.py" in shipped:
            return True
        parent, _, attr = path.rpartition("/")
        module = site / f"{parent}.py" if f"{parent}.py" in shipped else site / parent / "__init__.py"
        return module.is_file() and attr in _bound_names(module)

    handlers = build.stage_functions(build.PROJECT_ROOT, tmp_path / "functions")
    sources = [*site.joinpath("ledgerline").rglob("*.py"), *handlers.rglob("*.py")]
    missing = {
        f"{source.name}: {name}" for source in sources for name in _ledgerline_imports(source) if not importable(name)
    }
    assert not missing, f"shipped code imports what the layer leaves out: {sorted(missing)}"


def _bound_names(module: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.parse(module.read_text()).body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))  # a, b = ...
    return names


def test_layer_dir_override_must_be_a_layer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(c.LAYER_DIR_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match="python/"):
        build.prepare_assets(build_dir=tmp_path / "build")


def test_the_real_layer_holds_exactly_the_locked_packages_and_its_sbom_lists_each_with_its_licence(
    tmp_path: Path,
) -> None:
    # A real pip install for arm64 from requirements/runtime.txt (cached in build/layer by
    # its fingerprint, as make synth does).
    site = build.build_layer(build.PROJECT_ROOT, build.PROJECT_ROOT / "build/layer") / "python"
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in distributions(path=[str(site)])}
    assert installed == supply_chain.pins("runtime")

    sbom = tmp_path / supply_chain.SBOM_FILE
    assert supply_chain.write_sbom(site, sbom) == len(installed)
    document = json.loads(sbom.read_text())
    assert document["bomFormat"] == "CycloneDX" and document["specVersion"] == "1.6"
    listed = {c["name"]: c for c in document["components"]}
    assert {name: c["version"] for name, c in listed.items()} == installed
    assert listed["boto3"]["purl"] == f"pkg:pypi/boto3@{installed['boto3']}"
    unlicensed = [name for name, c in listed.items() if not c.get("licenses")]
    assert not unlicensed, f"the SBOM names no licence for {unlicensed}"


def test_an_api_without_discovery_routes_still_gets_its_authorizer(assets: AssetPaths) -> None:
    # The Lambda authorizer reads no discovery document: nothing to serve first, nothing to warn about.
    private = Route("GET", "/v1/infra-probe/private", "functions.infra_probe.private", Access.USER, "private")
    built = build_app(tables=Tables(routes=(ROUTES[0], private)), assets=assets, checks=False)
    warnings = [entry.data for entry in built.api.http.node.metadata if entry.type == "aws:cdk:warning"]
    assert built.api.http.authorizer is not None
    assert not warnings


def test_the_bastion_exists_only_when_asked_for(real, probe) -> None:  # type: ignore[no-untyped-def]
    real.template(c.NETWORK_STACK).resource_count_is("AWS::EC2::Instance", 0)
    probe.template(c.NETWORK_STACK).has_resource_properties(
        "AWS::EC2::Instance",
        {"InstanceType": "t4g.nano", "BlockDeviceMappings": [{"DeviceName": "/dev/xvda",
                                                              "Ebs": {"Encrypted": True, "VolumeSize": 8}}]},
    )  # fmt: skip
    instance = next(iter(probe.resources(c.NETWORK_STACK, "AWS::EC2::Instance").values()))["Properties"]
    assert "AppSecurityGroup" in str(instance["SecurityGroupIds"])
    assert "KeyName" not in instance, "SSM only: no SSH key"
