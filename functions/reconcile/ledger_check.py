"""Scheduled (ledger-check): re-check every ledger invariant over the whole ledger.

Findings are logged as errors (an alarm fires on them in AWS) and counted in a metric;
the books are never changed here: a repair (``ledger.rebuild_balances``) is a decision
for an operator.
"""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from ledgerline import ledger, metric_names
from ledgerline.db import transaction
from ledgerline.observability import logger, metrics


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.set_correlation_id(event.get("id"))
    findings = transaction(ledger.check_invariants)
    metrics.add_metric(name=metric_names.LEDGER_IMBALANCE, unit=MetricUnit.Count, value=len(findings))
    if metrics.metric_set:
        metrics.flush_metrics()
    if findings:
        for f in findings:
            logger.error(
                "ledger invariant broken", extra={"invariant": f.invariant, "detail": f.detail, "data": f.data}
            )
    else:
        logger.info("ledger invariants hold")
    return {"ok": not findings, "findings": [f.to_json() for f in findings]}
