"""Scheduled (outbox-purge): delete outbox rows relayed longer ago than the retention
(``LEDGERLINE_OUTBOX_RETENTION_DAYS``), batch by batch, as the owner role (through the
SECURITY DEFINER ``outbox_purge_relayed``: the application role cannot delete them)."""

from typing import Any

from ledgerline import outbox
from ledgerline.batches import drain
from ledgerline.observability import logger

BATCH = 10_000


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    logger.set_correlation_id(event.get("id"))
    purged = drain(lambda cur: outbox.purge_relayed(cur, limit=BATCH), BATCH, context)
    logger.info("outbox purged", extra={"purged": purged})
    return {"purged": purged}
