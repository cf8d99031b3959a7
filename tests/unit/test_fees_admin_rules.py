"""Fee schedule input, checked before anything is written (ledgerline.fees): exact
Decimals in the currency's minor units, percent 0..100 with at most four decimals, a
known transaction kind, maximum not below minimum; every refusal names its field."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ledgerline import errors, fees


def schedule(**over):
    args = {"currency": "NGN", "transaction_kind": "escrow_release", "percent": "1.5", "fixed": "100.00",
            "minimum": "0", "maximum": None, **over}  # fmt: skip
    return fees.check_schedule(**args)


def test_a_good_schedule_is_exact() -> None:
    got = schedule(percent="100", fixed="0.01", minimum="5", maximum="5.00")
    assert got == fees.FeeScheduleInput("NGN", "escrow_release", Decimal("100"), Decimal("0.01"), Decimal("5"),
                                        Decimal("5.00"))  # fmt: skip
    assert schedule(currency="JPY", fixed="3", minimum="0").fixed == Decimal(3)
    assert schedule(currency="KWD", fixed="0.125").fixed == Decimal("0.125")
    assert schedule(percent="0.0001").percent == Decimal("0.0001")


@pytest.mark.parametrize(
    "over, field",
    [
        ({"percent": "100.0001"}, "percent"),
        ({"percent": "00.5"}, "percent"),
        ({"percent": ".5"}, "percent"),
        ({"percent": "1.23456"}, "percent"),
        ({"percent": "NaN"}, "percent"),
        ({"percent": " 1"}, "percent"),
        ({"fixed": "0.001"}, "fixed"),
        ({"currency": "JPY", "fixed": "0.5"}, "fixed"),
        ({"minimum": "1e3"}, "minimum"),
        ({"minimum": "10", "maximum": "9.99"}, "maximum"),
        ({"transaction_kind": "transfer"}, "transaction_kind"),
        ({"currency": "ngn"}, "currency"),
    ],
)
def test_each_refusal_names_its_field(over, field) -> None:
    with pytest.raises(errors.ValidationFailed) as refused:
        schedule(**over)
    assert field in {e.field for e in refused.value.errors}


def test_only_kinds_a_fee_is_charged_on_are_known() -> None:
    assert fees.TRANSACTION_KINDS == ("escrow_release",)
