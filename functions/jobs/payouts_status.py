"""Scheduled (payouts-status): ask the gateways about payouts they accepted and have not
answered (a lost webhook); a final answer settles the withdrawal, one overdue is logged
as an error (ledgerline.payments.withdrawals.check_unanswered)."""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from ledgerline import metric_names
from ledgerline.observability import logger, metrics
from ledgerline.payments import withdrawals


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    logger.set_correlation_id(event.get("id"))
    counts = withdrawals.check_unanswered()
    # an alarm fires on any (ledgerline.metric_names; infra/components/monitoring.py)
    metrics.add_metric(name=metric_names.PAYOUTS_OVERDUE, unit=MetricUnit.Count, value=counts.get("past_deadline", 0))
    if metrics.metric_set:
        metrics.flush_metrics()
    logger.info("payouts asked about", extra=counts)
    return counts
