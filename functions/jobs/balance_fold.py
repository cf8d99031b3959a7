"""Scheduled (balance-fold): fold hot system accounts' appended deltas into their cached
balances, so reading those balances stays a short sum."""

from typing import Any

from ledgerline import ledger
from ledgerline.db import transaction
from ledgerline.observability import logger


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    logger.set_correlation_id(event.get("id"))
    folded = transaction(ledger.fold)
    logger.info("balance deltas folded", extra={"folded": folded})
    return {"folded": folded}
