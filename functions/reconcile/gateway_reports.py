"""Scheduled (reconcile, daily): yesterday's report of every configured provider against
the ledger, then any other runs administrators queued (POST /v1/admin/reconciliations;
the reconcile-queued schedule also runs those every 15 minutes).

Each run is stored with its findings; a run with discrepancies emits the
ReconciliationDiscrepancies metric and e-mails finance (ledgerline.reconciliation.run).
A provider whose run fails is logged and marked failed, and the others still run.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from ledgerline.observability import logger
from ledgerline.reconciliation import jobs, run


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.set_correlation_id(event.get("id"))
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    jobs.queue_day(run.configured_providers(), yesterday)
    return jobs.execute_queued()
