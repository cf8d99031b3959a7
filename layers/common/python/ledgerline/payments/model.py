"""A payment as the API shows it (docs/api.md "Payments")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from ledgerline.ledger.model import as_datetime, money_json
from ledgerline.money import Money

STATUSES = ("pending", "succeeded", "failed", "flagged")


@dataclass(frozen=True)
class Payment:
    id: UUID
    reference: str
    status: str  # one of STATUSES
    provider: str
    account_id: UUID
    amount: Money
    checkout: dict[str, Any] | None
    transaction_id: UUID | None
    reason: str | None  # why it is flagged or failed
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_json(cls, j: dict[str, Any]) -> Payment:
        """From ``payment_json`` (the database's one rendering of a payment)."""
        return cls(
            id=UUID(str(j["id"])),
            reference=j["reference"],
            status=j["status"],
            provider=j["provider"],
            account_id=UUID(str(j["account_id"])),
            amount=Money(Decimal(j["amount"]["amount"]), j["amount"]["currency"]),
            checkout=j.get("checkout"),
            transaction_id=UUID(str(j["transaction_id"])) if j.get("transaction_id") else None,
            reason=j.get("reason"),
            created_at=as_datetime(j["created_at"].replace("Z", "+00:00")),
            updated_at=as_datetime(j["updated_at"].replace("Z", "+00:00")),
        )

    def with_checkout(self, checkout: dict[str, Any]) -> Payment:
        return Payment(**{**self.__dict__, "checkout": checkout})

    def to_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "reference": self.reference,
            "status": self.status,
            "provider": self.provider,
            "account_id": str(self.account_id),
            "amount": money_json(self.amount.amount, self.amount.currency),
            "checkout": self.checkout,
            "transaction_id": str(self.transaction_id) if self.transaction_id else None,
            "reason": self.reason,
            "created_at": _time(self.created_at),
            "updated_at": _time(self.updated_at),
        }


def _time(at: datetime) -> str:
    # api_time's rendering: microseconds, always, and Z.
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
