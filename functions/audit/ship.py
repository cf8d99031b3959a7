"""Scheduled (audit-ship, every minute): chain committed audit rows and ship them to the
Object Lock bucket with a signed checkpoint (ledgerline.audit_trail.shipper). What a run
leaves undone, the next tick continues from the chain head."""

from typing import Any

from ledgerline.audit_trail import shipper
from ledgerline.batches import SAFETY_MARGIN_SECONDS
from ledgerline.observability import logger


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    logger.set_correlation_id(event.get("id"))
    remaining = context.get_remaining_time_in_millis() / 1000 if context else 45.0
    report = shipper.ship(time_budget=max(1.0, remaining - SAFETY_MARGIN_SECONDS))
    logger.info("audit shipped", extra=report.to_json())
    return report.to_json()
