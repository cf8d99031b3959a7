"""What the invoice routes answer, and the invoice machine as the API describes it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

STATUSES = ("PENDING", "PAID", "CANCELLED", "OVERDUE")
# The machine (invoice_guard enforces it for every writer): PAID and CANCELLED are final.
TRANSITIONS = {
    "PENDING": ("PAID", "CANCELLED", "OVERDUE"),
    "OVERDUE": ("PAID", "CANCELLED"),
    "PAID": (),
    "CANCELLED": (),
}

# Audit actions (category invoices).
CREATED, UPDATED, DELETED, PAID, PAYMENT_FAILED, OVERDUE = (
    "invoice.created", "invoice.updated", "invoice.deleted", "invoice.paid", "invoice.payment_failed",
    "invoice.overdue",
)  # fmt: skip
ACTIONS = (CREATED, UPDATED, DELETED, PAID, PAYMENT_FAILED, OVERDUE)


@dataclass(frozen=True)
class Invoice:
    """An invoice as the API shows it (``invoice_json``: the one rendering, which the
    payment's answer uses too), with who it is between."""

    id: UUID
    seller_id: UUID
    buyer_id: UUID
    status: str
    body: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return self.body
