"""The Escrow as the API shows it, and the request bodies of the escrow routes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from ledgerline.ledger.schemas import AmountText, Currency


@dataclass(frozen=True)
class Escrow:
    """One escrow: ``body`` is ``escrow_json`` (the shape the money routes answer with),
    ``allowed_transitions`` what the viewer may move it to now (``escrow_transitions``)."""

    id: UUID
    buyer_id: UUID
    seller_id: UUID
    status: str
    amount: Decimal
    currency: str
    account_id: UUID
    created_at: datetime
    allowed_transitions: tuple[str, ...]
    body: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {**self.body, "allowed_transitions": list(self.allowed_transitions)}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


Reason = Annotated[
    StrictStr, Field(min_length=3, max_length=2000, description="Why; kept with the dispute and audited")
]


class CreateEscrow(_Body):
    seller_id: UUID
    amount: AmountText
    currency: Currency
    description: Annotated[StrictStr, Field(min_length=1, max_length=500, description="What is bought")]


class FundEscrow(_Body):
    account_id: UUID = Field(description="The buyer's wallet, in the escrow's currency")


class DisputeEscrow(_Body):
    reason: Reason


class ResolveDispute(_Body):
    outcome: Literal["release", "refund"]
    reason: Reason
