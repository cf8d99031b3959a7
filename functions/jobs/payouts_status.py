"""Scheduled (payouts-status): ask the gateways about payouts they accepted and have not
answered (a lost webhook); a final answer settles the withdrawal, one overdue is logged
as an error (ledgerline.payments.withdrawals.check_unanswered)."""

from typing import Any

from ledgerline.observability import logger
from ledgerline.payments import withdrawals


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    logger.set_correlation_id(event.get("id"))
    counts = withdrawals.check_unanswered()
    logger.info("payouts asked about", extra=counts)
    return counts
