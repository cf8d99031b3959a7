"""Scheduled (reconcile-queued, every 15 minutes): execute the reconciliation runs
administrators queued (POST /v1/admin/reconciliations), oldest first. The request only
writes the queued row; the work happens here, one run after another, within the timeout
(what is left waits for the next tick)."""

from typing import Any

from ledgerline.observability import logger
from ledgerline.reconciliation import jobs


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.set_correlation_id(event.get("id"))
    return jobs.execute_queued()
