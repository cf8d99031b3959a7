"""An invoice's amount from its lines: exact Decimal, never rounded; a line the currency
cannot hold is refused with the field that says which."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledgerline import errors, money
from ledgerline.invoices import pricing


def line(quantity: object, unit_price: object, description: str = "thing") -> dict[str, object]:
    return {"description": description, "quantity": quantity, "unit_price": unit_price}


def test_the_amount_is_the_exact_sum_of_quantity_times_unit_price():
    priced = pricing.price([line(2, "1500.00"), line("1.5", "0.10"), line("0.0008", "12.5")], "NGN")

    assert priced.amount == Decimal("3000.16")
    assert [str(x.total) for x in priced.lines] == ["3000.00", "0.150", "0.01000"]
    assert priced.stored()[1] == {"description": "thing", "quantity": "1.5", "unit_price": "0.10"}


@pytest.mark.parametrize(
    ("items", "currency", "field"),
    [
        ([line("1.5", "0.01")], "NGN", "items.0"),  # 0.015: finer than a kobo, refused, not rounded
        ([line(1, "0.5")], "JPY", "items.0"),
        ([line(1, "0.0005")], "KWD", "items.0"),  # KWD has three decimals
        ([line(1, "1.00"), line(3, "0.333")], "USD", "items.1"),
        ([line(1.5, "1.00")], "NGN", "items.0.quantity"),  # a JSON fraction: send it as text
        ([line(True, "1.00")], "NGN", "items.0.quantity"),
        ([line("1e2", "1.00")], "NGN", "items.0.quantity"),
        ([line("1234567890", "1.00")], "NGN", "items.0.quantity"),
        ([line(1, 5)], "NGN", "items.0.unit_price"),
        ([line(1, "05.00")], "NGN", "items.0.unit_price"),
        ([line(1, "1.00000")], "NGN", "items.0.unit_price"),
        ([line(1, "1.00", description=" ")], "NGN", "items.0.description"),
        ([line(1, "0.00")], "NGN", "items"),
        ([], "NGN", "items"),
        ([line(1, "1.00")] * 101, "NGN", "items"),
        ([line(999_999_999, "999999999.00"), line(999_999_999, "999999999.00")], "NGN", "items"),
    ],
)
def test_a_line_the_currency_cannot_hold_is_refused_naming_it(items, currency, field):
    with pytest.raises(errors.ValidationFailed) as refused:
        pricing.price(items, currency)

    assert field in [e.field for e in refused.value.errors]


@given(
    currency=st.sampled_from(sorted(money.CURRENCIES)),
    lines=st.lists(st.tuples(st.integers(1, 10_000), st.integers(0, 10**9)), min_size=1, max_size=20),
)
def test_whole_quantities_of_prices_in_minor_units_always_price_exactly(currency, lines):
    exponent = money.minor_units(currency)
    items = [line(q, str(money.from_minor(units, currency))) for q, units in lines]
    expected = sum((q * money.from_minor(units, currency) for q, units in lines), Decimal(0))
    if expected == 0:
        with pytest.raises(errors.ValidationFailed):
            pricing.price(items, currency)
        return

    priced = pricing.price(items, currency)

    assert priced.amount == expected
    assert priced.amount == priced.amount.quantize(Decimal(1).scaleb(-exponent))
    assert money.to_minor(priced.amount, currency) == sum(q * units for q, units in lines)
