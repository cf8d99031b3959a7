"""Request bodies of the invoice routes (pydantic; also the OpenAPI schemas). Unknown
fields are refused; the lines are priced by ``pricing`` (exact, field by field)."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from ledgerline.ledger.schemas import Currency

Quantity = Annotated[
    StrictInt | StrictStr,
    Field(description='How many: a positive integer, or decimal text with at most 4 decimals ("1.5")', examples=[2]),
]
UnitPrice = Annotated[
    StrictStr,
    Field(description='Price of one, in major units as a string ("150.00"; at most 4 decimals)', examples=["150.00"],
          max_length=25),
]  # fmt: skip


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Item(_Body):
    description: StrictStr = Field(min_length=1, max_length=500)
    quantity: Quantity
    unit_price: UnitPrice


Items = Annotated[list[Item], Field(min_length=1, max_length=100)]
DueDate = Annotated[date, Field(description="The last day to pay (YYYY-MM-DD, UTC): today or later")]


class CreateInvoice(_Body):
    buyer_id: UUID
    currency: Currency
    items: Items
    due_date: DueDate


class UpdateInvoice(_Body):
    """Only the fields sent change; the amount follows the items."""

    buyer_id: UUID | None = None
    currency: Currency | None = None
    items: Items | None = None
    due_date: DueDate | None = None


class PayInvoice(_Body):
    account_id: UUID = Field(description="The buyer's wallet, in the invoice's currency")
    version: StrictInt | None = Field(
        default=None, ge=1, le=2_147_483_647,
        description="The version of the invoice agreed to: another (the seller changed it since) is 409, nothing paid",
    )  # fmt: skip
