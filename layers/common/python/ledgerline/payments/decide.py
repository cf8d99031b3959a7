"""What a verified webhook and the gateway's re-query mean for a pending payment.

Pure: no database, no gateway. The re-query is the truth about the outcome (a webhook
only prompts the question); the money is credited only when the webhook, the gateway
and the payment as created all agree on amount and currency. Any disagreement, an
underpayment included, flags the payment for a person and credits nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ledgerline.gateways.base import GatewayPayment, PaymentStatus, WebhookEvent
from ledgerline.money import format_amount

SUCCEEDED, FAILED, FLAGGED, RECORD = "succeeded", "failed", "flagged", "record"


class NotSettledYet(Exception):
    """The gateway still has the payment pending: the webhook is retried later."""


@dataclass(frozen=True)
class Expected:
    """The payment as created."""

    amount: Decimal
    currency: str


@dataclass(frozen=True)
class Decision:
    outcome: str  # SUCCEEDED | FAILED | FLAGGED | RECORD (keep the event, change nothing)
    reason: str | None = None


def decide(expected: Expected, event: WebhookEvent, gateway: GatewayPayment) -> Decision:
    """The decision for a pending payment; ``NotSettledYet`` while the gateway has not
    settled a payment the webhook says succeeded (asked again later)."""
    if gateway.status is PaymentStatus.PENDING:
        if event.status == PaymentStatus.SUCCEEDED:
            raise NotSettledYet(f"the gateway still has payment {gateway.reference} pending")
        # A failed attempt the customer may follow with another: nothing to decide yet.
        return Decision(RECORD)
    if gateway.status is PaymentStatus.FAILED:
        return Decision(FAILED, "the gateway reports the payment failed")
    if gateway.status is PaymentStatus.REVERSED:
        return Decision(FLAGGED, "the gateway reports the payment reversed before it was credited")
    said = _money(gateway.amount, gateway.currency)
    if said != _money(expected.amount, expected.currency):
        return Decision(
            FLAGGED,
            f"the gateway reports {_show(*said)}; the payment was created for {_show(expected.amount, expected.currency)}",
        )
    if event.amount is not None and _money(event.amount, event.currency) != said:
        return Decision(
            FLAGGED, f"the webhook says {_show(event.amount, event.currency)}; the gateway reports {_show(*said)}"
        )
    return Decision(SUCCEEDED)


def _money(amount: Decimal, currency: str | None) -> tuple[Decimal, str]:
    return amount, (currency or "").upper()


def _show(amount: Decimal, currency: str | None) -> str:
    return f"{format_amount(amount, currency.upper())} {currency.upper()}" if currency else f"{amount} ?"
