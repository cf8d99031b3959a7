"""Scheduled (outbox-relay): the sweep. Transactions publish their outbox rows right after
they commit (``outbox.publish``); this sends whatever a failed or interrupted publish, or
a routine's ``INSERT INTO outbox``, left pending. The purge is its own job (outbox-purge)."""

from typing import Any

from ledgerline import outbox
from ledgerline.observability import logger

SAFETY_MARGIN_SECONDS = 10.0  # stop claiming batches well before the Lambda timeout


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    logger.set_correlation_id(event.get("id"))
    remaining = context.get_remaining_time_in_millis() / 1000 if context else 60.0
    result = outbox.relay(time_budget=max(1.0, remaining - SAFETY_MARGIN_SECONDS))
    logger.info("outbox relayed", extra={"relayed": result.relayed, "failed": result.failed})
    return {"relayed": result.relayed, "failed": result.failed}
