"""Request bodies of the payment routes (pydantic; also the OpenAPI schemas)."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from ledgerline.ledger.schemas import AmountText, Currency, Reason, _Body


class CreateTopup(_Body):
    account_id: UUID
    amount: AmountText
    currency: Currency
    provider: Literal["paystack", "stripe", "flutterwave"]


class ResolvePayment(_Body):
    outcome: Literal["credit", "fail"]
    reason: Reason
    # What was received, when it is not what the payment was created for (credit only).
    amount: AmountText | None = None
