"""cfn-lint over a cloud assembly: every stack's template and its nested stacks'.

``make synth`` (``infra.synth``) fails on any error; warnings are printed. The templates
are environment-agnostic, so they are checked against the region's resource specs of
``LINT_REGIONS``.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

LINT_REGIONS = ("us-east-1",)
_LEVELS = {"E": "error", "W": "warning", "I": "informational"}


@dataclass(frozen=True)
class LintFinding:
    template: str  # <assembly directory>/<file name>
    rule: str  # E3002, W3005 ...
    level: str  # error | warning | informational
    message: str
    path: str  # where in the template: Resources/<id>/Properties/...

    def __str__(self) -> str:
        return f"{self.rule} {self.template} {self.path}: {self.message}"


def lint_templates(templates: list[Path]) -> list[LintFinding]:
    """Lint the template files in parallel (one pool of processes for all of them, whatever
    assembly each is from: starting a pool costs seconds); raises ImportError without cfn-lint."""
    import cfnlint.api  # noqa: F401 - fail here, in the caller's process, when it is missing

    paths = [str(path) for path in templates]
    workers = max(1, min(len(paths), os.cpu_count() or 1))
    # spawn, not fork: the caller may run jsii's Node process and its threads.
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return [finding for found in pool.map(_lint_one, paths) for finding in found]


def _lint_one(path: str) -> list[LintFinding]:
    from cfnlint.api import lint_file
    from cfnlint.config import ManualArgs

    matches = lint_file(Path(path), ManualArgs(regions=list(LINT_REGIONS)))
    return [
        LintFinding(
            template=f"{Path(path).parent.name}/{Path(path).name}",
            rule=match.rule.id,
            level=_LEVELS.get(match.rule.id[:1], "error"),
            message=match.message,
            path="/".join(str(part) for part in match.path),
        )
        for match in matches
    ]
