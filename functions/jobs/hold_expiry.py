"""Scheduled (hold-expiry): expire active holds past their expiry, releasing their amounts."""

import time
from typing import Any

from ledgerline import ledger
from ledgerline.db import transaction
from ledgerline.ledger.holds import EXPIRY_BATCH
from ledgerline.observability import logger

SAFETY_MARGIN_SECONDS = 10.0


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    logger.set_correlation_id(event.get("id"))
    remaining = context.get_remaining_time_in_millis() / 1000 if context else 60.0
    deadline = time.monotonic() + max(1.0, remaining - SAFETY_MARGIN_SECONDS)
    expired = 0
    # One batch per transaction: a long backlog never holds many locks for long.
    while True:
        n = transaction(lambda cur: ledger.expire_due(cur, limit=EXPIRY_BATCH))
        expired += n
        if n < EXPIRY_BATCH or time.monotonic() >= deadline:
            break
    logger.info("holds expired", extra={"expired": expired})
    return {"expired": expired}
