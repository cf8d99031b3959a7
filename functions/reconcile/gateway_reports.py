"""Scheduled (reconcile, daily): yesterday's report of every configured provider against
the ledger, then the runs administrators queued (POST /v1/admin/reconciliations).

Each run is stored with its findings; a run with discrepancies emits the
ReconciliationDiscrepancies metric and e-mails finance (ledgerline.reconciliation.run).
A provider whose run fails is logged and the others still run.
"""

from datetime import UTC, date, datetime, timedelta
from typing import Any

from ledgerline.db import transaction
from ledgerline.gateways import registry
from ledgerline.observability import logger
from ledgerline.reconciliation import run, store


def _queue(provider: str, day: date) -> None:
    transaction(lambda cur: store.create_run(cur, provider, day))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.set_correlation_id(event.get("id"))
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    done: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    for provider in run.configured_providers():
        _queue(provider, yesterday)
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
