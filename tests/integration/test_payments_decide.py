"""What a webhook and the gateway's re-query mean for a pending payment (pure: no
database, no gateway; here beside the other payment tests)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ledgerline.gateways.base import GatewayPayment, PaymentStatus, WebhookEvent
from ledgerline.payments.decide import Expected, NotSettledYet, decide

CREATED = Expected(Decimal("5000.00"), "NGN")


def webhook(amount="5000", currency="NGN", status=PaymentStatus.SUCCEEDED):
    return WebhookEvent(
        provider="paystack", event_id="charge.success:1", kind="payment", type="charge.success", reference="LL-1",
        amount=None if amount is None else Decimal(amount), currency=currency, status=str(status),
    )  # fmt: skip


def gateway(amount="5000.0000", currency="NGN", status=PaymentStatus.SUCCEEDED):
    return GatewayPayment(reference="LL-1", provider_id="1", amount=Decimal(amount), currency=currency, status=status)


def test_all_three_agreeing_credit():
    assert decide(CREATED, webhook(), gateway()).outcome == "succeeded"


def test_a_webhook_without_an_amount_is_judged_by_the_gateway():
    assert decide(CREATED, webhook(amount=None, currency=None), gateway()).outcome == "succeeded"


@pytest.mark.parametrize(
    ("event", "said", "says"),
    [
        (
            webhook(),
            gateway(amount="4999.99"),
            "the gateway reports 4999.99 NGN; the payment was created for 5000.00 NGN",
        ),
        (webhook(), gateway(currency="USD"), "the gateway reports 5000.00 USD"),
        (webhook(amount="9000"), gateway(), "the webhook says 9000.00 NGN; the gateway reports 5000.00 NGN"),
        (webhook(currency="GHS"), gateway(), "the webhook says 5000.00 GHS"),
        (webhook(), gateway(amount="6000"), "the gateway reports 6000.00 NGN"),  # an overpayment too
    ],
)
def test_any_disagreement_flags_the_payment(event, said, says):
    decision = decide(CREATED, event, said)

    assert decision.outcome == "flagged"
    assert says in decision.reason


def test_the_gateway_decides_the_outcome_not_the_webhook():
    assert decide(CREATED, webhook(status=PaymentStatus.SUCCEEDED), gateway(status=PaymentStatus.FAILED)).outcome == (
        "failed"
    )
    assert decide(CREATED, webhook(status=PaymentStatus.FAILED), gateway()).outcome == "succeeded"
    assert decide(CREATED, webhook(), gateway(status=PaymentStatus.REVERSED)).outcome == "flagged"


def test_a_success_the_gateway_has_not_settled_is_asked_again_later():
    with pytest.raises(NotSettledYet):
        decide(CREATED, webhook(), gateway(status=PaymentStatus.PENDING))

    assert decide(CREATED, webhook(status=PaymentStatus.FAILED), gateway(status=PaymentStatus.PENDING)).outcome == (
        "record"
    )
