"""Scheduled (overdue-invoices): flag PENDING invoices past their due date as OVERDUE,
a batch per transaction (``batches.drain``), each audited as a system action."""

from typing import Any

from ledgerline.batches import drain
from ledgerline.invoices import store
from ledgerline.observability import logger


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    logger.set_correlation_id(event.get("id"))
    flagged = drain(lambda cur: store.mark_overdue(cur, limit=store.OVERDUE_BATCH), store.OVERDUE_BATCH, context)
    logger.info("invoices flagged overdue", extra={"flagged": flagged})
    return {"flagged": flagged}
