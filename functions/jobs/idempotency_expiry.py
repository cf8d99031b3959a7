"""Scheduled (idempotency-expiry): purge Idempotency-Keys older than 24 h."""

import time
from typing import Any

from ledgerline import idempotency
from ledgerline.db import transaction
from ledgerline.observability import logger

BATCH = 10_000
SAFETY_MARGIN_SECONDS = 10.0


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    logger.set_correlation_id(event.get("id"))
    remaining = context.get_remaining_time_in_millis() / 1000 if context else 60.0
    deadline = time.monotonic() + max(1.0, remaining - SAFETY_MARGIN_SECONDS)
    purged = 0
    while True:
        n = transaction(lambda cur: idempotency.purge_expired(cur, limit=BATCH))
        purged += n
        if n < BATCH or time.monotonic() >= deadline:
            break
    logger.info("idempotency keys purged", extra={"purged": purged})
    return {"purged": purged}
