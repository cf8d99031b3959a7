"""An invoice's lines and their amount, exactly: pure Decimal arithmetic, no database.

A line is ``{description, quantity, unit_price}``. Quantities and unit prices are exact
decimal numerals with at most four decimals (the ledger's NUMERIC(19,4): a price per unit
may be finer than the currency, e.g. 0.0125 USD per message); a quantity may also be a
JSON integer. A line's total, quantity x unit_price, must be a whole number of the
currency's minor units: one that is not (1.5 x 0.01 NGN = 0.015) is refused, never
rounded. The amount is the sum of the totals. The database derives the same amount on
every write (``invoice_guard``); this module says what is wrong first, field by field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ledgerline import money
from ledgerline.errors import FieldError, ValidationFailed

MAX_ITEMS = 100
MAX_QUANTITY_DIGITS = 9  # before the point
_QUANTITY = re.compile(r"(0|[1-9][0-9]{0,8})(\.[0-9]{1,4})?")
_PRICE = re.compile(r"(0|[1-9][0-9]{0,14})(\.[0-9]{1,4})?")


@dataclass(frozen=True)
class Line:
    description: str
    quantity: Decimal
    unit_price: Decimal

    @property
    def total(self) -> Decimal:
        return self.quantity * self.unit_price

    def stored(self) -> dict[str, str]:
        """As the invoice keeps it (exact decimal text)."""
        return {"description": self.description, "quantity": str(self.quantity), "unit_price": str(self.unit_price)}


@dataclass(frozen=True)
class Priced:
    lines: tuple[Line, ...]
    amount: Decimal

    def stored(self) -> list[dict[str, str]]:
        return [line.stored() for line in self.lines]


def price(items: list[Any], currency: str) -> Priced:
    """The lines of a request and their amount, or a 422 naming every field that is wrong."""
    exponent = money.minor_units(currency)
    unit = Decimal(1).scaleb(-exponent)
    problems: list[FieldError] = []
    lines: list[Line] = []
    if not 1 <= len(items) <= MAX_ITEMS:
        problems.append(FieldError("items", f"send 1 to {MAX_ITEMS} lines"))
    for n, item in enumerate(items[:MAX_ITEMS]):
        where = f"items.{n}"
        description = str(_field(item, "description") or "").strip()
        if not 1 <= len(description) <= 500:
            problems.append(FieldError(f"{where}.description", "say what is billed, in 1 to 500 characters"))
        quantity = _decimal(_field(item, "quantity"), _QUANTITY)
        if quantity is None or quantity == 0:
            problems.append(FieldError(f"{where}.quantity", 'a positive number, e.g. 2 or "1.5" (at most 4 decimals)'))
        unit_price = _decimal(_field(item, "unit_price"), _PRICE, text_only=True)
        if unit_price is None:
            problems.append(
                FieldError(f"{where}.unit_price", 'a decimal amount as a string, e.g. "150.00" (at most 4 decimals)')
            )
        if quantity is None or unit_price is None or quantity == 0:
            continue
        line = Line(description, quantity, unit_price)
        if line.total != line.total.quantize(unit):
            problems.append(
                FieldError(
                    where,
                    f"{quantity} x {unit_price} = {line.total} has more decimals than {currency} allows ({exponent})",
                )
            )
        lines.append(line)
    if problems:
        raise ValidationFailed(f"the invoice's items are not valid: {problems[0].field}: {problems[0].message}",
                               errors=problems)  # fmt: skip
    amount = sum((line.total for line in lines), Decimal(0))
    if amount <= 0:
        raise ValidationFailed("an invoice amounts to more than zero", errors=[FieldError("items", "bill something")])
    if amount >= Decimal(10) ** money.MAX_INTEGER_DIGITS:
        raise ValidationFailed(
            "the invoice's amount is too large",
            errors=[FieldError("items", f"at most {money.MAX_INTEGER_DIGITS} digits before the decimal point")],
        )
    return Priced(tuple(lines), amount)


def _field(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, dict) else getattr(item, name, None)


def _decimal(value: Any, pattern: re.Pattern[str], *, text_only: bool = False) -> Decimal | None:
    """An exact decimal from text matching ``pattern`` (or a JSON integer, unless text_only)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and not text_only:
        value = str(value)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        return None
    return Decimal(value)
