"""Scenario 5: cold start — importing each handler module in a fresh interpreter."""

from __future__ import annotations

import importlib.util
import os
import re
import statistics
import subprocess
import sys

from bench.harness import Figure
from ledgerline import jobs, routes

QUICK_RECHECK = 5  # slowest modules measured 3 times in a quick run

_PROBE = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"


def handler_modules() -> list[str]:
    modules = [r.handler for r in routes.ROUTES]
    modules += [s.handler for s in jobs.SCHEDULES if not s.planned]
    modules += [q.consumer for q in jobs.QUEUES if not q.planned]
    return sorted(m for m in set(modules) if importlib.util.find_spec(m) is not None)


def import_seconds(module: str) -> float:
    env = {**os.environ, "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true"}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(module=module)], capture_output=True, text=True, env=env, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def heaviest_imports(module: str, top: int = 5) -> list[tuple[str, float]]:
    """The slowest imports (cumulative µs) under ``python -X importtime``."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"], capture_output=True, text=True, check=True
    )
    found = []
    for line in out.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|(\s*)(\S+)", line)
        if m and len(m.group(2)) <= 3:  # top-level and first-level imports only
            found.append((m.group(3), int(m.group(1)) / 1000))
    return sorted(found, key=lambda x: -x[1])[:top]


def run(quick: bool) -> list[Figure]:
    per_module = {}
    if quick:
        # One import each, then the slowest few again: the worst is still a median of 3.
        for module in handler_modules():
            per_module[module] = import_seconds(module) * 1000
        for module in sorted(per_module, key=per_module.__getitem__)[-QUICK_RECHECK:]:
            again = [import_seconds(module) * 1000 for _ in range(2)]
            per_module[module] = statistics.median([per_module[module], *again])
    else:
        for module in handler_modules():
            per_module[module] = statistics.median(import_seconds(module) for _ in range(5)) * 1000
    worst_module = max(per_module, key=per_module.__getitem__)
    values = list(per_module.values())
    return [
        Figure(
            "cold start", "handler import, median over handlers", statistics.median(values), "ms", goal="worst ≤ 300 ms"
        ),
        Figure(
            "cold start",
            "handler import, worst",
            per_module[worst_module],
            "ms",
            goal="≤ 300 ms",
            extra={
                "module": worst_module,
                "heaviest_imports_ms": heaviest_imports(worst_module),
                "modules": len(values),
            },
        ),
    ]
