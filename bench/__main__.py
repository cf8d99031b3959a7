"""`python -m bench [--quick] [--only NAME ...]`: run the scenarios that exist, print a
table, write bench/results.json."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback

from bench import harness

# Scenario modules in the order of the Benchmarks issue; each exposes run(quick) -> [Figure].
SCENARIOS = [
    "transfers",
    "balance",
    "http",
    "coldstart",
    "webhooks",
    "audit",
    "crypto",
    "invariants",
    "reconcile",
    "geo",
    "escrow",
    "batch_transfers",
    "bulk_payouts",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench")
    parser.add_argument("--quick", action="store_true", help="short runs (about 2.5 minutes)")
    parser.add_argument("--only", nargs="*", choices=SCENARIOS)
    args = parser.parse_args(argv)
    os.environ.setdefault("LEDGERLINE_ENV", "test")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    os.environ["LEDGERLINE_RATE_LIMITS"] = "login=off;otp=off;money=off;default=off"
    os.environ["LEDGERLINE_VELOCITY"] = "off"
    os.environ.setdefault("LEDGERLINE_STATEMENT_TIMEOUT_MS", "600000")  # bulk set-up statements

    figures: list[harness.Figure] = []
    failed = []
    started = time.monotonic()
    for name in args.only or SCENARIOS:
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"bench.{name}":
                print(f"[{name}] not built yet", file=sys.stderr)
                continue
            raise
        print(f"[{name}] running…", file=sys.stderr, flush=True)
        began = time.monotonic()
        try:
            figures += module.run(args.quick)
        except Exception:
            traceback.print_exc()
            failed.append(name)
        print(f"[{name}] {time.monotonic() - began:.0f} s", file=sys.stderr, flush=True)
    harness.write(figures, quick=args.quick)
    harness.RESULTS.with_suffix(".md").write_text(harness.markdown(figures) + "\n")
    print(harness.table(figures))
    print(f"\n{len(figures)} figures in {time.monotonic() - started:.0f} s → {harness.RESULTS}", file=sys.stderr)
    if failed:
        print(f"scenarios that failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
