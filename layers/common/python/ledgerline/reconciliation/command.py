"""``ledgerline reconcile --provider P --date D``: one run now, with a progress bar."""

from __future__ import annotations

import argparse
import json

from ledgerline.reconciliation.admin import parse_day


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--provider", required=True, choices=("paystack", "stripe", "flutterwave"))
    parser.add_argument("--date", required=True, help="the UTC day, YYYY-MM-DD (a day that is over)")
    parser.add_argument("--grace-minutes", type=int, default=None, help="match window past each midnight")
    return parser


def main(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from ledgerline.gateways import registry
    from ledgerline.reconciliation import run

    day = parse_day(args.date)
    progress = run.Progress()
    grace = timedelta(minutes=args.grace_minutes) if args.grace_minutes is not None else None
    summary = run.reconcile(args.provider, day, registry.gateway(args.provider), progress=progress, grace=grace)
    progress.done(summary.gateway_count)
    print(json.dumps(run.summary_json(summary), indent=2))
    return 1 if summary.discrepancy_count else 0
