"""Scheduled (outbox-relay): send committed outbox rows to their SQS queues, then purge
rows relayed long ago."""

from typing import Any

from ledgerline import outbox
from ledgerline.batches import drain
from ledgerline.observability import logger

SAFETY_MARGIN_SECONDS = 10.0  # stop claiming batches well before the Lambda timeout
PURGE_BATCH = 10_000


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    logger.set_correlation_id(event.get("id"))
    remaining = context.get_remaining_time_in_millis() / 1000 if context else 60.0
    result = outbox.relay(time_budget=max(1.0, remaining - SAFETY_MARGIN_SECONDS))
    purged = drain(lambda cur: outbox.purge_relayed(cur, limit=PURGE_BATCH), PURGE_BATCH, context)
    logger.info("outbox relayed", extra={"relayed": result.relayed, "failed": result.failed, "purged": purged})
    return {"relayed": result.relayed, "failed": result.failed, "purged": purged}
