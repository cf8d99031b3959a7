"""Scheduled (idempotency-expiry): purge Idempotency-Keys older than 24 h."""

from typing import Any

from ledgerline import idempotency
from ledgerline.batches import drain
from ledgerline.observability import logger

BATCH = 10_000


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    logger.set_correlation_id(event.get("id"))
    purged = drain(lambda cur: idempotency.purge_expired(cur, limit=BATCH), BATCH, context)
    logger.info("idempotency keys purged", extra={"purged": purged})
    return {"purged": purged}
