"""What the reconcile schedules do: queue yesterday's runs, execute the queued ones."""

from __future__ import annotations

from datetime import date
from typing import Any

from ledgerline.db import transaction
from ledgerline.observability import logger
from ledgerline.reconciliation import run, store


def queue_day(providers: list[str], day: date) -> None:
    for provider in providers:
        _queue(provider, day)


def _queue(provider: str, day: date) -> None:
    transaction(lambda cur: store.create_run(cur, provider, day))


def execute_queued() -> dict[str, Any]:
    """Every queued run, oldest first; a failed run is logged and marked failed, and the
    others still run. Runs another worker claimed are skipped."""
    from ledgerline.gateways import registry

    done: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    for queued in transaction(store.queued_runs, read_only=True):
        try:
            gateway = registry.gateway(queued["provider"])
            summary = run.execute(queued["id"], gateway.list_payments)
        except run.RunTaken:
            continue
        except Exception as exc:
            logger.exception("reconciliation run failed", extra={"run_id": queued["id"]})
            failed.append({"run_id": queued["id"], "error": f"{type(exc).__name__}: {exc}"})
            continue
        done.append(run.summary_json(summary))
        if summary.discrepancy_count:
            logger.error("reconciliation discrepancies", extra=run.summary_json(summary))
    return {"ok": not failed, "runs": done, "failed": failed}
