"""The fee each gateway's contract says it takes, which FEE_MISMATCH compares against.

The ledger records no fee of its own (a top-up credits the gross amount), so the only
thing a reported fee can be checked against is the contracted schedule: a fee that is not
the schedule's, to the currency's minor unit, is a FEE_MISMATCH. The rates are the ones
the fake gateway charges (ledgerline/local/fake_wire/common.py ``fee_of``); a real
deployment's contract would be configuration.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from ledgerline.money import CURRENCIES

# provider: (rate, fixed fee in minor units)
SCHEDULE: dict[str, tuple[Decimal, int]] = {
    "paystack": (Decimal("0.015"), 0),
    "stripe": (Decimal("0.029"), 30),
    "flutterwave": (Decimal("0.014"), 0),
}


def expected_fee(provider: str, amount: Decimal, currency: str) -> Decimal | None:
    """The contracted fee (major units) for a payment of ``amount``; None when unknown."""
    terms = SCHEDULE.get(provider)
    if terms is None or currency not in CURRENCIES:
        return None
    rate, fixed = terms
    unit = Decimal(1).scaleb(-CURRENCIES[currency])
    if provider == "flutterwave":
        # Flutterwave states fees to the thousandth (26.875); the comparison rounds both
        # sides to the currency's minor unit, as it does with the reported one.
        return (amount * rate).quantize(Decimal("0.001"), ROUND_HALF_UP)
    return (amount * rate + fixed * unit).quantize(unit, ROUND_HALF_UP)
