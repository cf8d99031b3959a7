"""Synthesize the CDK app once per test session and hand out its templates.

Two apps are synthesized (with cdk-nag), each exactly once:

* ``real``: the app from the real tables (``ROUTES``, ``SCHEDULES``, ``QUEUES``) — what
  ``make synth`` deploys.
* ``probe``: the same tables plus ``PROBE_ROUTES``, rows that exercise what the real
  table may not have yet (every access level, a money route, every grant in ``GRANTS``),
  and the optional parts switched on (``PROBE_CONTEXT``).

The Lambda layer is a tiny placeholder (``LEDGERLINE_LAYER_DIR``), so no test waits on
``pip install``; set ``LEDGERLINE_LAYER_DIR`` yourself to synthesize with a real layer.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from infra.app import LedgerlineApp, Tables, build_app
from infra.assets import AssetPaths, prepare_assets
from infra.constants import LAYER_DIR_ENV
from infra.synth import stack_templates
from ledgerline.jobs import QUEUES, SCHEDULES
from ledgerline.routes import GRANTS, ROUTES, Access, RateLimit, Route

PROBE_ROUTES: tuple[Route, ...] = (
    Route("POST", "/v1/infra-probe/transfers", "functions.infra_probe.transfer", Access.USER,
          "Probe: a money route", money=True, limit=RateLimit.MONEY, grants=("kms:field", "secret:blind-index")),
    Route("GET", "/v1/infra-probe/accounts/{id}", "functions.infra_probe.account", Access.USER,
          "Probe: a user route with a path parameter"),
    Route("POST", "/v1/infra-probe/admin", "functions.infra_probe.admin", Access.ADMIN,
          "Probe: an admin route", grants=("kms:jwt-sign",)),
    Route("GET", "/v1/infra-probe/audit", "functions.infra_probe.audit", Access.AUDITOR,
          "Probe: an auditor route", grants=("s3:audit-read",)),
    Route("POST", "/v1/infra-probe/webhooks/{provider}", "functions.infra_probe.webhook", Access.PUBLIC,
          "Probe: a public route with grants", grants=("secret:gateways", "sqs:gateway-webhooks")),
    # Every grant of the vocabulary: a grant the CDK app cannot map fails synthesis here.
    Route("POST", "/v1/infra-probe/everything", "functions.infra_probe.everything", Access.ADMIN,
          "Probe: every grant", grants=tuple(GRANTS)),
)  # fmt: skip
PROBE_CONTEXT = {"bastion": "true", "emailFrom": "no-reply@ledgerline.example"}
DISCOVERY_ROUTES: tuple[Route, ...] = (
    Route("GET", "/.well-known/openid-configuration", "functions.infra_probe.oidc", Access.PUBLIC, "Probe: OIDC"),
    Route("GET", "/.well-known/jwks.json", "functions.infra_probe.jwks", Access.PUBLIC, "Probe: JWKS",
          grants=("kms:jwt-verify",)),
)  # fmt: skip


@dataclass
class Synthesized:
    built: LedgerlineApp
    outdir: Path
    validation_error: str | None
    _raws: dict[str, dict[str, Any]] = field(default_factory=dict)
    _templates: dict[str, Template] = field(default_factory=dict)
    _found: dict[tuple[str, str], dict[str, dict[str, Any]]] = field(default_factory=dict)

    @property
    def tables(self) -> Tables:
        return self.built.tables

    def files(self, stack_name: str) -> list[str]:
        """The stack's template file, then its nested stacks' (the API's route groups)."""
        return stack_templates(self.outdir)[stack_name]

    def _load(self, file: str) -> dict[str, Any]:
        if file not in self._raws:
            self._raws[file] = json.loads((self.outdir / file).read_text())
        return self._raws[file]

    def raw(self, stack_name: str) -> dict[str, Any]:
        """The stack's own template (without its nested stacks)."""
        return self._load(self.files(stack_name)[0])

    def raws(self, stack_name: str) -> list[dict[str, Any]]:
        return [self._load(file) for file in self.files(stack_name)]

    def template(self, stack_name: str) -> Template:
        """``Template`` of the stack's own template."""
        return self._template(self.files(stack_name)[0])

    def _template(self, file: str) -> Template:
        if file not in self._templates:
            self._templates[file] = Template.from_json(self._load(file))
        return self._templates[file]

    def resources(self, stack_name: str, resource_type: str) -> dict[str, dict[str, Any]]:
        """``Template.find_resources`` over the stack and its nested stacks, remembered."""
        key = (stack_name, resource_type)
        if key not in self._found:
            found: dict[str, dict[str, Any]] = {}
            for file in self.files(stack_name):
                found |= self._template(file).find_resources(resource_type)
            self._found[key] = found
        return self._found[key]

    def all_resources(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for stack in self.built.stacks:
            for raw in self.raws(stack.stack_name):
                for logical_id, resource in raw["Resources"].items():
                    yield stack.stack_name, logical_id, resource

    def parameter(self, stack_name: str, name: str) -> Any:
        """What the stack passes to its nested stacks as parameter ``name``."""
        values = {
            json.dumps(r["Properties"]["Parameters"][name], sort_keys=True)
            for r in self.raw(stack_name)["Resources"].values()
            if r["Type"] == "AWS::CloudFormation::Stack" and name in r["Properties"].get("Parameters", {})
        }
        assert len(values) == 1, f"{stack_name} passes {name} {len(values)} ways"
        return json.loads(values.pop())

    @property
    def report(self) -> dict[str, Any]:
        return json.loads((self.outdir / "validation-report.json").read_text())


def _synthesize(outdir: Path, assets: AssetPaths, tables: Tables, context: dict[str, str]) -> Synthesized:
    built = build_app(outdir=str(outdir), context=context, tables=tables, assets=assets, checks=True)
    try:
        built.app.synth()
        error = None
    except RuntimeError as exc:  # cdk-nag findings: the tests read the report
        error = str(exc)
    return Synthesized(built, outdir, error)


@pytest.fixture(scope="session")
def assets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AssetPaths]:
    build = tmp_path_factory.mktemp("build")
    placeholder = None
    if not os.environ.get(LAYER_DIR_ENV):
        placeholder = build / "placeholder-layer"
        (placeholder / "python" / "ledgerline_layer_placeholder").mkdir(parents=True)
        (placeholder / "python" / "ledgerline_layer_placeholder" / "__init__.py").write_text("")
        os.environ[LAYER_DIR_ENV] = str(placeholder)
    try:
        yield prepare_assets(build_dir=build)
    finally:
        if placeholder is not None:
            del os.environ[LAYER_DIR_ENV]


@pytest.fixture(scope="session")
def real(assets: AssetPaths, tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return _synthesize(tmp_path_factory.mktemp("cdk-real"), assets, Tables(), {})


@pytest.fixture(scope="session")
def probe(assets: AssetPaths, tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    served = {(r.method, r.path) for r in ROUTES}
    discovery = tuple(r for r in DISCOVERY_ROUTES if (r.method, r.path) not in served)
    tables = Tables(routes=(*ROUTES, *discovery, *PROBE_ROUTES), schedules=SCHEDULES, queues=QUEUES)
    return _synthesize(tmp_path_factory.mktemp("cdk-probe"), assets, tables, PROBE_CONTEXT)


@pytest.fixture(scope="session", params=["real", "probe"])
def synthesized(request: pytest.FixtureRequest) -> Synthesized:
    """Both apps, for properties that must hold whatever the route table holds."""
    return request.getfixturevalue(request.param)
