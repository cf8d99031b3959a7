"""The gateway's checkout for a new top-up.

A money route's first statement is its money statement (the Idempotency-Key is claimed
there, with the pending payment), so the gateway is asked only afterwards, and the
request may run twice (a retry with the same key replays the stored payment). The
checkout is therefore initialised with the payment's id as the gateway's idempotency key
and reference: a second run gets the very same checkout, never a second one. The first
checkout is kept on the payment and handed out again by ``GET /v1/payments/{id}``.
"""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from ledgerline import errors
from ledgerline.db import transaction
from ledgerline.gateways.base import GatewayRefused, GatewayUnavailable
from ledgerline.payments import store
from ledgerline.payments.model import Payment

# How long a run refused by its gateway waits for a racing run's checkout to be kept.
RACE_WAIT_SECONDS = 3.0


class GatewayDown(errors.DomainError):
    status = 503
    code = "gateway_unavailable"
    title = "Payment gateway unavailable"


class GatewayDeclined(errors.DomainError):
    status = 502
    code = "gateway_refused"
    title = "Payment gateway refused"


def open_checkout(payment: Payment) -> Payment:
    """The payment with its checkout: the one kept, or a new one from its gateway."""
    if payment.checkout is not None or payment.status != "pending":
        return payment
    from ledgerline.gateways.registry import gateway  # deferred: loads the adapters

    request = transaction(lambda cur: store.checkout_request(cur, payment.id), read_only=True)
    if request.checkout is not None:
        return payment.with_checkout(request.checkout)
    if request.status != "pending":
        return payment  # settled since (a late replay): nothing left to pay
    try:
        opened = gateway(request.provider).initialize_payment(
            reference=request.reference,
            amount=request.amount,
            currency=request.currency,
            email=request.email,
            idempotency_key=str(request.payment_id),
        )
    except GatewayUnavailable:
        raise GatewayDown(
            f"payment {payment.id} is created but {request.provider} did not answer; retry this request with the"
            f" same Idempotency-Key, or read the checkout later from GET /v1/payments/{payment.id}",
            headers={"Retry-After": "5"},
        ) from None
    except GatewayRefused as exc:
        # A run racing this one may have opened it first (Paystack refuses a reference it
        # has seen): its checkout is the one, once it is kept.
        raced = _wait_for_checkout(request.payment_id)
        if raced is not None:
            return payment.with_checkout(raced)
        raise GatewayDeclined(
            f"{request.provider} refused to open a checkout for payment {payment.id}: {exc}; it stays pending"
        ) from None
    kept: dict[str, Any] = transaction(
        lambda cur: store.save_checkout(cur, request.payment_id, opened.provider_id, opened.data)
    )
    return payment.with_checkout(kept)


def _wait_for_checkout(payment_id: UUID, *, seconds: float = RACE_WAIT_SECONDS) -> dict[str, Any] | None:
    deadline = time.monotonic() + seconds
    while True:
        request = transaction(lambda cur: store.checkout_request(cur, payment_id), read_only=True)
        if request.checkout is not None or time.monotonic() >= deadline:
            return request.checkout
        time.sleep(0.1)
