"""Scheduled (hold-expiry): expire active holds past their expiry, releasing their amounts."""

from typing import Any

from ledgerline import ledger
from ledgerline.batches import drain
from ledgerline.ledger.holds import EXPIRY_BATCH
from ledgerline.observability import logger


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    logger.set_correlation_id(event.get("id"))
    expired = drain(lambda cur: ledger.expire_due(cur, limit=EXPIRY_BATCH), EXPIRY_BATCH, context)
    logger.info("holds expired", extra={"expired": expired})
    return {"expired": expired}
