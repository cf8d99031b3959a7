"""Money: exact Decimal amounts in a currency's ISO 4217 minor units. Never a float.

Amounts travel as strings in major units ("150000.00"). Parsing is strict: a plain
decimal numeral, no exponent, sign, whitespace, NaN or Infinity, and no more decimal
places than the currency has (rejected, never rounded).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ledgerline.errors import FieldError, ValidationFailed

# ISO 4217 minor units. The ledger's ``currencies`` table is seeded from the same list.
CURRENCIES: dict[str, int] = {
    "NGN": 2, "USD": 2, "EUR": 2, "GBP": 2, "KES": 2, "GHS": 2, "ZAR": 2, "JPY": 0, "KWD": 3,
    "XOF": 0, "UGX": 0, "RWF": 0, "EGP": 2, "CAD": 2,
}  # fmt: skip

# NUMERIC(19,4): 15 digits before the point.
MAX_INTEGER_DIGITS = 15
_AMOUNT = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]+)?")


@dataclass(frozen=True)
class Money:
    amount: Decimal
    currency: str

    def to_json(self) -> dict[str, str]:
        return {"amount": format_amount(self.amount, self.currency), "currency": self.currency}


def minor_units(currency: str) -> int:
    try:
        return CURRENCIES[currency]
    except KeyError:
        raise ValidationFailed(
            f"currency {currency!r} is not supported",
            errors=[FieldError("currency", f"use one of {', '.join(sorted(CURRENCIES))}")],
        ) from None


def check_currency(value: Any, field: str = "currency") -> str:
    if not isinstance(value, str) or value not in CURRENCIES:
        raise ValidationFailed(
            f"currency {value!r} is not supported",
            errors=[FieldError(field, f"use an ISO 4217 code, one of {', '.join(sorted(CURRENCIES))}")],
        )
    return value


def parse_amount(value: Any, currency: str, field: str = "amount", *, allow_zero: bool = False) -> Decimal:
    """Parse a request amount (a string in major units) exactly, or raise ValidationFailed."""
    exponent = minor_units(currency)

    def fail(message: str) -> ValidationFailed:
        return ValidationFailed(f"{field}: {message}", errors=[FieldError(field, message)])

    if not isinstance(value, str):
        raise fail('send the amount as a string, e.g. "150.00", not as a JSON number')
    m = _AMOUNT.fullmatch(value)
    if not m:
        raise fail(f'{value!r} is not a plain decimal amount like "150.00" (no sign, exponent or spaces)')
    if len(m.group(1)) > MAX_INTEGER_DIGITS:
        raise fail(f"amount is too large: at most {MAX_INTEGER_DIGITS} digits before the decimal point")
    places = len(m.group(2) or ".") - 1
    if places > exponent:
        raise fail(f"amount has {places} decimal places; {currency} allows {exponent}")
    amount = Decimal(value)
    if amount == 0 and not allow_zero:
        raise fail("amount must be greater than zero")
    return amount


def format_amount(amount: Decimal, currency: str) -> str:
    """Render in the currency's minor units: Decimal('5') NGN → '5.00'."""
    exponent = CURRENCIES.get(currency, 2)
    return str(amount.quantize(Decimal(1).scaleb(-exponent)))


def to_minor(amount: Decimal, currency: str) -> int:
    """Major → minor units (kobo, cents) for gateways; exact or an error."""
    scaled = amount.scaleb(minor_units(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} {currency} has more decimals than {currency} allows")
    return int(scaled)


def from_minor(units: int, currency: str) -> Decimal:
    return Decimal(units).scaleb(-minor_units(currency))
