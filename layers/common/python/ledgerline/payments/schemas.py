"""Request bodies of the payment routes (pydantic; also the OpenAPI schemas)."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from ledgerline.ledger.schemas import AmountText, Currency, _Body


class CreateTopup(_Body):
    account_id: UUID
    amount: AmountText
    currency: Currency
    provider: Literal["paystack", "stripe", "flutterwave"]
