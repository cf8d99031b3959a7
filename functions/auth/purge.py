"""Scheduled (auth-purge): drop expired revocations, one-time tokens and old throttles."""

from typing import Any

from ledgerline.auth import maintenance
from ledgerline.db import transaction
from ledgerline.observability import logger


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    logger.set_correlation_id(event.get("id"))
    purged = transaction(maintenance.purge)
    logger.info("identity state purged", extra=purged)
    return purged
