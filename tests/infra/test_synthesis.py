"""The app synthesizes, from the tables, with cdk-nag and CloudFormation rules clean."""

from __future__ import annotations

from pathlib import Path

from infra import constants as c
from infra import nag
from infra.constants import (
    API_STACK,
    AUDIT_STACK,
    DATA_STACK,
    JOBS_STACK,
    NETWORK_STACK,
    OBSERVABILITY_STACK,
    SECURITY_STACK,
)
from infra.synth import CFN_RESOURCE_LIMIT, format_report, resource_counts, validation_summary
from tests.infra.conftest import Synthesized

STACKS = [NETWORK_STACK, SECURITY_STACK, DATA_STACK, AUDIT_STACK, API_STACK, JOBS_STACK, OBSERVABILITY_STACK]


def test_every_stack_is_synthesized_environment_agnostic(synthesized: Synthesized) -> None:
    counts = resource_counts(synthesized.outdir)
    assert [name for name in counts if "/" not in name] == STACKS
    assert all(0 < count <= CFN_RESOURCE_LIMIT for count in counts.values())
    for stack in synthesized.built.stacks:
        assert stack.environment == "aws://unknown-account/unknown-region"


def test_validation_passes_with_no_unacknowledged_finding(synthesized: Synthesized) -> None:
    assert synthesized.validation_error is None, "\n".join(validation_summary(synthesized.outdir))
    for plugin in synthesized.report["pluginReports"]:
        open_findings = [
            f"{v['ruleName']} ({v['severity']}) at {c['constructPath']}"
            for v in plugin.get("violations", [])
            for c in v["violatingConstructs"]
        ]
        assert not open_findings, f"{plugin['pluginName']}: " + "; ".join(open_findings)


def test_cdk_nag_ran_and_every_acknowledgment_gives_a_reason(synthesized: Synthesized) -> None:
    plugins = {p["pluginName"]: p for p in synthesized.report["pluginReports"]}
    assert "AwsSolutions" in plugins, "cdk-nag did not run"
    acknowledged = plugins["AwsSolutions"]["suppressedViolations"]
    assert acknowledged, "cdk-nag ran but acknowledged nothing: is it really checking?"
    for finding in acknowledged:
        assert len(finding["reason"].strip()) >= 20, f"{finding['acknowledgedId']} needs a real reason"


def test_synth_report_lists_each_stack_its_route_groups_and_the_total(real: Synthesized) -> None:
    counts = resource_counts(real.outdir)
    report = format_report(counts, {"synth time": 1.5}).splitlines()
    assert report[len(counts) + 1].split() == ["total", str(sum(counts.values()))]
    groups = [line for line in report if line.startswith("  ")]
    assert len(groups) == len(real.built.api.http.groups) > 0
    assert "synth time: 1.5 s" in report


def test_route_groups_follow_the_handler_packages(synthesized: Synthesized) -> None:
    areas = {route.handler.split(".")[1] for route in synthesized.tables.routes}
    assert set(synthesized.built.api.http.groups) == areas


def test_a_failed_validation_is_summarized_one_line_per_open_error(tmp_path: Path) -> None:
    (tmp_path / "validation-report.json").write_text(
        '{"pluginReports": [{"pluginName": "AwsSolutions", "violations": ['
        '{"ruleName": "AwsSolutions-S1", "severity": "error", "violatingConstructs": [{"constructPath": "A/B"}]},'
        '{"ruleName": "W1", "severity": "warning", "violatingConstructs": [{"constructPath": "A/C"}]}]}]}'
    )
    assert validation_summary(tmp_path) == ["AwsSolutions: AwsSolutions-S1 at A/B"]


def test_stacks_deploy_in_lifecycle_order(real: Synthesized) -> None:
    order = [s.stack_name for s in real.built.stacks]
    for stack in real.built.stacks:
        for dependency in stack.dependencies:
            assert order.index(dependency.stack_name) < order.index(stack.stack_name), (stack, dependency)
    assert {d.stack_name for d in real.built.api.dependencies} >= {c.DATA_STACK, c.AUDIT_STACK}
    assert {d.stack_name for d in real.built.jobs.dependencies} >= {c.API_STACK, c.AUDIT_STACK}


def test_no_acknowledgment_is_stale(real: Synthesized, probe: Synthesized) -> None:
    used = {
        (app.built.app, finding["acknowledgedAt"], finding["acknowledgedId"])
        for app in (real, probe)
        for plugin in app.report["pluginReports"]
        for finding in plugin.get("suppressedViolations", [])
    }
    made = [(scope.node.root, scope.node.path, rule) for scope, rule in nag.ACKNOWLEDGMENTS
            if scope.node.root in (real.built.app, probe.built.app)]  # fmt: skip
    assert made
    stale = [f"{path}: {rule}" for root, path, rule in made if (root, path, rule) not in used]
    assert not stale, "acknowledgments that suppress nothing: " + "; ".join(stale)
