"""Shared benchmark plumbing: repeated runs, medians, machine facts, the results file."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results.json"


@dataclass
class Figure:
    scenario: str
    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str | None = None
    goal: str | None = None
    runs: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["ratio"] = None if self.ratio is None else round(self.ratio, 3)
        return out


@dataclass
class Skipped:
    """A figure that could not be measured in this run, and why (kept in results.json and
    shown in the tables, so a missing baseline is never mistaken for a missing feature)."""

    scenario: str
    name: str
    reason: str


SKIPPED: list[Skipped] = []


def skip(scenario: str, name: str, reason: str) -> None:
    print(f"[{scenario}] skipped {name!r}: {reason}", file=sys.stderr, flush=True)
    SKIPPED.append(Skipped(scenario, name, reason))


def interleaved(
    sides: dict[str, Callable[[], Any]], rounds: int, *, before: Callable[[], None] | None = None, warmup: bool = True
) -> dict[str, list[Any]]:
    """Measure every side once per round, round after round, so that slow drift on a small
    shared machine (checkpoints, autovacuum, tables growing) weighs on each side alike;
    ``before`` runs ahead of every measurement (e.g. a CHECKPOINT). An optional warm-up
    round is measured and dropped."""
    results: dict[str, list[Any]] = {name: [] for name in sides}
    for index in range(rounds + int(warmup)):
        for name, measure in sides.items():
            if before is not None:
                before()
            value = measure()
            if index >= int(warmup):
                results[name].append(value)
    return results


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    with contextlib.suppress(ValueError, OSError):
        mem_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_commit": _git_commit(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _git_commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def write(figures: list[Figure], *, quick: bool, path: Path = RESULTS, skipped: list[Skipped] | None = None) -> None:
    skipped = SKIPPED if skipped is None else skipped
    path.write_text(
        json.dumps(
            {
                "machine": machine(),
                "quick": quick,
                "figures": [f.as_json() for f in figures],
                "skipped": [asdict(s) for s in skipped],
            },
            indent=2,
            default=str,
        )
    )


def table(figures: list[Figure]) -> str:
    rows = [("scenario", "figure", "value", "unit", "baseline", "ratio", "goal")]
    for f in figures:
        rows.append(
            (
                f.scenario,
                f.name,
                f"{f.value:,.1f}" if f.value >= 10 else f"{f.value:.3f}",
                f.unit,
                "" if f.baseline is None else f"{f.baseline:,.1f} ({f.baseline_name})",
                "" if f.ratio is None else f"{f.ratio:.2f}",
                f.goal or "",
            )
        )
    for s in SKIPPED:
        rows.append((s.scenario, s.name, "skipped", "", s.reason, "", ""))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(figures: list[Figure]) -> str:
    """The README's performance table."""
    lines = ["| scenario | figure | value | baseline (same run) | ratio | goal |", "|---|---|---|---|---|---|"]
    for f in figures:
        value = f"{f.value:,.1f} {f.unit}" if f.value >= 10 else f"{f.value:.3f} {f.unit}"
        p99 = f.extra.get("p99_ms")
        if p99 is not None:
            value += f" (p50 {f.extra.get('p50_ms')} ms, p99 {p99} ms)"
        base = "" if f.baseline is None else f"{f.baseline:,.1f} ({f.baseline_name})"
        ratio = "" if f.ratio is None else f"{f.ratio:.2f}"
        lines.append(f"| {f.scenario} | {f.name} | {value} | {base} | {ratio} | {f.goal or ''} |")
    for s in SKIPPED:
        lines.append(f"| {s.scenario} | {s.name} | skipped: {s.reason} |  |  |  |")
    return "\n".join(lines)
