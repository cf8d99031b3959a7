"""Request bodies of the ledger routes (pydantic; they are also the OpenAPI schemas).

Unknown fields are refused. Amounts are strings in major units; the currency's minor
units are applied by ``money.parse_amount`` inside the operation, so a refusal is a
stored, replayable answer for the request's Idempotency-Key.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, StrictStr
from pydantic_core import PydanticCustomError

from ledgerline.ledger.holds import MAX_EXPIRY_SECONDS


def _amount_is_text(value: Any) -> Any:
    if not isinstance(value, str):
        raise PydanticCustomError(
            "amount_type", 'send the amount as a string in major units, e.g. "150.00", not as a JSON number'
        )
    return value


AmountText = Annotated[
    str,
    BeforeValidator(_amount_is_text),
    Field(description='Major units as a string, e.g. "150.00"; at most the currency\'s decimals', examples=["150.00"]),
]
Currency = Annotated[StrictStr, Field(description="ISO 4217 code, e.g. NGN", examples=["NGN"], max_length=3)]
Reason = Annotated[StrictStr, Field(min_length=3, max_length=500, description="Why; kept in the audit trail")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateAccount(_Body):
    currency: Currency
    name: StrictStr | None = Field(default=None, min_length=1, max_length=100)


class CreateTransfer(_Body):
    from_account_id: UUID
    to_account_id: UUID
    amount: AmountText
    currency: Currency
    description: StrictStr | None = Field(default=None, max_length=500)


class CreateHold(_Body):
    account_id: UUID
    amount: AmountText
    currency: Currency
    expires_in_seconds: StrictInt | None = Field(default=None, ge=1, le=MAX_EXPIRY_SECONDS)
    description: StrictStr | None = Field(default=None, max_length=500)


class CaptureHold(_Body):
    to_account_id: UUID
    amount: AmountText | None = None


class VoidHold(_Body):
    reason: StrictStr | None = Field(default=None, max_length=500)


class CreateAdjustment(_Body):
    account_id: UUID
    amount: AmountText
    currency: Currency
    direction: Literal["credit", "debit"]
    reason: Reason


class ReverseTransaction(_Body):
    reason: Reason


class ChangeAccountStatus(_Body):
    reason: StrictStr | None = Field(default=None, max_length=500)
