"""cfn-lint finds no error in any synthesized template, nested stacks included."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from infra.lint import lint_templates
from infra.synth import LINT_REPORT, lint_summary, stack_templates
from tests.infra.conftest import Synthesized


def test_cfn_lint_finds_no_error_in_any_template(real: Synthesized, probe: Synthesized) -> None:
    """Both apps' templates (``real``, ``probe``: tests/infra/conftest.py), in one pool."""
    if importlib.util.find_spec("cfnlint") is None:
        pytest.skip("cfn-lint is not installed: pip install -e '.[infra]' to lint the synthesized templates")
    paths = []
    for app in (real, probe):
        files = [file for stack_files in stack_templates(app.outdir).values() for file in stack_files]
        nested = [file for file in files if file.endswith(".nested.template.json")]
        assert len(files) >= 10 and nested, files
        paths += [app.outdir / file for file in files]
    findings = lint_templates(paths)
    errors = [str(f) for f in findings if f.level == "error"]
    assert not errors, "cfn-lint errors:\n" + "\n".join(errors)
    # Warnings are allowed; they are printed for the record (pytest -s).
    for warning in sorted({f"{f.rule} {f.message.split(' dependency')[0]}" for f in findings if f.level != "error"}):
        print(warning)


def test_a_cfn_lint_error_is_what_fails_make_synth(tmp_path: Path) -> None:
    if importlib.util.find_spec("cfnlint") is None:
        pytest.skip("cfn-lint is not installed: pip install -e '.[infra]' to lint the synthesized templates")
    (tmp_path / "manifest.json").write_text(
        json.dumps({"artifacts": {"Broken": {"type": "aws:cloudformation:stack",
                                             "properties": {"templateFile": "Broken.template.json"}}}})
    )  # fmt: skip
    (tmp_path / "Broken.template.json").write_text(
        json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": "soon"}}}})
    )
    errors = lint_summary(tmp_path)
    assert errors and all("Broken.template.json" in line for line in errors)
    assert (tmp_path / LINT_REPORT).read_text().startswith("error: ")
