"""``make synth``: build the assets, synthesize every stack into ``cdk.out`` with plain
Python (no CDK CLI, no AWS account), run cdk-nag and cfn-lint, write the Lambda layer's
SBOM (``cdk.out/ledgerline-layer.cdx.json``, CycloneDX) and check its licences, and print
timings and resource counts.

Exit status 1 when a validation (cdk-nag, CloudFormation rules) fails, the full report
being ``cdk.out/validation-report.json``, or when cfn-lint reports an error (warnings are
listed, and do not fail).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

# Before anything imports aws_cdk: starting jsii's Node process is part of the cost.
_PROCESS_STARTED = time.perf_counter()

PROJECT_ROOT = Path(__file__).resolve().parent.parent

NESTED_SUFFIX = ".nested.template.json"
LINT_REPORT = "cfn-lint-report.txt"
CFN_RESOURCE_LIMIT = 500


def stack_templates(outdir: Path) -> dict[str, list[str]]:
    """Template files of each stack of a cloud assembly (its own first, then its nested
    stacks'), in manifest order."""
    manifest = json.loads((outdir / "manifest.json").read_text())
    found: dict[str, list[str]] = {}
    for name, artifact in manifest.get("artifacts", {}).items():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        assets = outdir / f"{name}.assets.json"
        files = json.loads(assets.read_text()).get("files", {}).values() if assets.is_file() else []
        nested = sorted(f["source"]["path"] for f in files if f["source"]["path"].endswith(NESTED_SUFFIX))
        found[name] = [artifact["properties"]["templateFile"], *nested]
    return found


def resource_counts(outdir: Path) -> dict[str, int]:
    """Resources per template: ``Stack`` and, for nested stacks, ``Stack/NestedFile``."""
    counts: dict[str, int] = {}
    for name, files in stack_templates(outdir).items():
        for index, file in enumerate(files):
            label = name if index == 0 else f"{name}/{file.removesuffix(NESTED_SUFFIX).removeprefix(name)}"
            counts[label] = len(json.loads((outdir / file).read_text()).get("Resources", {}))
    return counts


def validation_summary(outdir: Path) -> list[str]:
    """One line per unacknowledged finding of the validation report (empty when clean)."""
    report = outdir / "validation-report.json"
    if not report.is_file():
        return []
    lines = []
    for plugin in json.loads(report.read_text()).get("pluginReports", []):
        for violation in plugin.get("violations", []):
            if violation.get("severity") != "error":
                continue
            for construct in violation.get("violatingConstructs", []):
                lines.append(f"{plugin['pluginName']}: {violation['ruleName']} at {construct['constructPath']}")
    return lines


def format_report(counts: dict[str, int], timings: dict[str, float]) -> str:
    """The table ``make synth`` prints: resources per stack (nested stacks indented) and timings."""
    labels = {name: ("  " + name.split("/", 1)[1] if "/" in name else name) for name in counts}
    width = max([len(label) for label in labels.values()] + [len("total")])
    rows = [f"{'stack':<{width}}  resources"]
    rows += [f"{labels[name]:<{width}}  {count:>9}" for name, count in counts.items()]
    rows.append(f"{'total':<{width}}  {sum(counts.values()):>9}")
    rows.append("")
    rows += [f"{label}: {seconds:.1f} s" for label, seconds in timings.items()]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outdir", default=str(PROJECT_ROOT / "cdk.out"))
    parser.add_argument("--no-checks", action="store_true", help="skip cdk-nag and cfn-lint (not for CI)")
    parser.add_argument("-c", "--context", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    context = dict(item.split("=", 1) for item in args.context)

    from infra.app import build_app
    from infra.assets import prepare_assets

    started = time.perf_counter()
    assets = prepare_assets()
    assets_done = time.perf_counter()
    built = build_app(outdir=args.outdir, context=context, assets=assets, checks=not args.no_checks)
    constructed = time.perf_counter()
    failed = False
    try:
        built.app.synth()
    except RuntimeError as error:  # jsii surfaces ValidationFailed as RuntimeError
        if "Validation" not in str(error):
            raise
        failed = True
    finished = time.perf_counter()

    outdir = Path(args.outdir)
    lint_errors = [] if args.no_checks or failed else lint_summary(outdir)
    linted = time.perf_counter()
    licence_errors = layer_bill_of_materials(assets.layer / "python", outdir)
    timings = {
        "start (Python, jsii, aws-cdk-lib)": started - _PROCESS_STARTED,
        "assets (layer + functions)": assets_done - started,
        "construct": constructed - assets_done,
        "synth + checks": finished - constructed,
        "cfn-lint": linted - finished,
        "synth time": finished - _PROCESS_STARTED,
    }
    counts = resource_counts(outdir)
    print(format_report(counts, timings))
    crowded = [f"{name} ({count})" for name, count in counts.items() if count > CFN_RESOURCE_LIMIT * 0.8]
    if crowded:
        print(f"\nnear CloudFormation's {CFN_RESOURCE_LIMIT}-resource limit: {', '.join(crowded)}", file=sys.stderr)
    if failed:
        print("\nvalidation failed:", *validation_summary(outdir), sep="\n  ", file=sys.stderr)
        print(f"full report: {outdir / 'validation-report.json'}", file=sys.stderr)
        return 1
    if lint_errors:
        print("\ncfn-lint errors:", *lint_errors, sep="\n  ", file=sys.stderr)
        return 1
    if licence_errors:
        print("\nthe layer ships licences licences.toml does not allow:", *licence_errors, sep="\n  ", file=sys.stderr)
        return 1
    return 0


def layer_bill_of_materials(site: Path, outdir: Path) -> list[str]:
    """Write the layer's SBOM beside the templates; the packages whose licence is not allowed."""
    from importlib.metadata import distributions

    from infra import supply_chain

    path = outdir / supply_chain.SBOM_FILE
    count = supply_chain.write_sbom(site, path)
    print(f"SBOM: {count} packages of the Lambda layer in {path}")
    return supply_chain.licence_findings(distributions(path=[str(site)]), supply_chain.Policy.load())


def lint_summary(outdir: Path) -> list[str]:
    """cfn-lint over every template of the assembly: prints warnings, returns the errors
    (one line each; a missing cfn-lint is an error too, ``make synth`` installs it)."""
    from infra.lint import lint_templates

    files = [file for stack_files in stack_templates(outdir).values() for file in stack_files]
    try:
        findings = lint_templates([outdir / file for file in files])
    except ImportError:
        return ["cfn-lint is not installed: pip install -e '.[infra]'"]
    (outdir / LINT_REPORT).write_text("".join(f"{f.level}: {f}\n" for f in findings))
    warnings = Counter(f.rule for f in findings if f.level != "error")
    counted = ", ".join(f"{rule} x{count}" for rule, count in sorted(warnings.items())) or "no warnings"
    print(f"cfn-lint: {len(files)} templates; {counted} (all findings: {outdir / LINT_REPORT})")
    return [str(f) for f in findings if f.level == "error"]


if __name__ == "__main__":
    sys.exit(main())
