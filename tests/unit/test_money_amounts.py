"""Amounts are parsed exactly and strictly, or refused with a message that says why."""

from decimal import Decimal

import pytest

from ledgerline import errors, money


@pytest.mark.parametrize(
    ("text", "currency", "expected"),
    [
        ("150000.00", "NGN", Decimal("150000.00")),
        ("0.01", "USD", Decimal("0.01")),
        ("7", "JPY", Decimal("7")),
        ("1.234", "KWD", Decimal("1.234")),
        ("999999999999999.99", "NGN", Decimal("999999999999999.99")),
        ("10.5", "NGN", Decimal("10.5")),
    ],
)
def test_plain_amounts_within_the_currencys_decimals_are_exact(text, currency, expected):
    amount = money.parse_amount(text, currency)
    assert amount == expected and isinstance(amount, Decimal)


@pytest.mark.parametrize(
    ("value", "currency", "message"),
    [
        ("0", "NGN", "greater than zero"),
        ("0.00", "NGN", "greater than zero"),
        ("-5", "NGN", "plain decimal"),
        ("+5", "NGN", "plain decimal"),
        ("1e3", "NGN", "plain decimal"),
        ("1E3", "NGN", "plain decimal"),
        ("NaN", "NGN", "plain decimal"),
        ("Infinity", "NGN", "plain decimal"),
        ("-Infinity", "NGN", "plain decimal"),
        (" 10", "NGN", "plain decimal"),
        ("10 ", "NGN", "plain decimal"),
        ("1,000.00", "NGN", "plain decimal"),
        ("010", "NGN", "plain decimal"),
        (".5", "NGN", "plain decimal"),
        ("5.", "NGN", "plain decimal"),
        ("", "NGN", "plain decimal"),
        ("\u0661\u0660", "NGN", "plain decimal"),  # Arabic-Indic digits
        ("10.001", "NGN", "3 decimal places; NGN allows 2"),
        ("1.5", "JPY", "1 decimal places; JPY allows 0"),
        ("1.0001", "KWD", "4 decimal places; KWD allows 3"),
        ("1000000000000000", "NGN", "too large"),
        ("9999999999999999.99", "USD", "too large"),
        (10, "NGN", "as a string"),
        (Decimal("10.5"), "NGN", "as a string"),
        (10.5, "NGN", "as a string"),
        (None, "NGN", "as a string"),
        (True, "NGN", "as a string"),
    ],
)
def test_bad_amounts_are_refused_never_rounded(value, currency, message):
    with pytest.raises(errors.ValidationFailed, match=message) as caught:
        money.parse_amount(value, currency)
    assert caught.value.status == 422 and caught.value.errors[0].field == "amount"


@pytest.mark.parametrize("currency", ["XYZ", "ngn", "", "NG", None, 566])
def test_unknown_currencies_are_refused(currency):
    with pytest.raises(errors.ValidationFailed, match="not supported"):
        money.check_currency(currency)


def test_formatting_uses_the_currencys_minor_units():
    assert money.format_amount(Decimal("5"), "NGN") == "5.00"
    assert money.format_amount(Decimal("-5.5000"), "USD") == "-5.50"
    assert money.format_amount(Decimal("7.0000"), "JPY") == "7"
    assert money.format_amount(Decimal("1.2340"), "KWD") == "1.234"


def test_minor_unit_conversion_is_exact_both_ways():
    assert money.to_minor(Decimal("150.25"), "NGN") == 15025
    assert money.from_minor(15025, "NGN") == Decimal("150.25")
    assert money.to_minor(Decimal("12"), "JPY") == 12
    with pytest.raises(ValueError):
        money.to_minor(Decimal("1.005"), "USD")
