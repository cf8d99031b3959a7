"""What a reconciliation run finds, in the API's terms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The discrepancy kinds, as reconcile_compare names them (a CHECK in migration 0019).
KINDS = (
    "MISSING_IN_LEDGER",  # the gateway took the money; the ledger credited nothing
    "MISSING_IN_GATEWAY",  # the ledger credited a payment of the day the report lacks
    "AMOUNT_MISMATCH",  # both succeeded, same currency, different amounts (minor units)
    "CURRENCY_MISMATCH",  # both succeeded, different currencies
    "STATUS_MISMATCH",  # the gateway says failed or reversed; the ledger credited it
    "DUPLICATE_IN_GATEWAY",  # one reference reported more than once
    "FEE_MISMATCH",  # the reported fee is not the contracted schedule's fee
)
STATUSES = ("open", "explained", "resolved")


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    provider: str
    day: str
    gateway_count: int
    ledger_count: int
    discrepancy_count: int
    totals: dict[str, Any]
    duration_ms: int
    staged_ms: int = 0  # of which: the report read and COPYed into staging


@dataclass(frozen=True)
class Discrepancy:
    kind: str
    reference: str
    status: str
