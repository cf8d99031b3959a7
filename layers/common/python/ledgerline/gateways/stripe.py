"""Stripe: form-encoded requests, JSON answers, amounts in minor units, lower-case
currencies, ``Idempotency-Key`` on every POST; webhooks signed ``t=...,v1=...``
(../shared/GATEWAYS.md §2).

Our reference travels as ``metadata[reference]`` on the PaymentIntent and the payout:
Stripe has no reference field of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Unpack
from urllib.parse import quote

from ledgerline.gateways import signatures
from ledgerline.gateways.base import (
    BankAccount,
    Checkout,
    GatewayPayment,
    GatewayRefused,
    Page,
    PaymentStatus,
    Payout,
    PayoutItem,
    PayoutStatus,
    WebhookEvent,
)
from ledgerline.gateways.http import Adapter, Connection, parse_json, reading
from ledgerline.money import from_minor, to_minor

PAGE_SIZE = 100  # Stripe's maximum
_PAYOUT_STATUS = {
    "paid": PayoutStatus.SUCCEEDED,
    "failed": PayoutStatus.FAILED,
    "canceled": PayoutStatus.FAILED,
}
_PAYOUT_EVENTS = {"payout.paid", "payout.failed", "payout.canceled", "payout.created", "payout.updated"}


def _read_error(body: Any) -> tuple[str, str | None]:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error.get("type") or "refused"), error.get("code") or error.get("type")
    return str(body)[:200], None


def _payment_status(intent: Mapping[str, Any]) -> PaymentStatus:
    status = intent.get("status")
    if status == "succeeded":
        charge = intent.get("latest_charge")
        if isinstance(charge, dict) and charge.get("refunded"):
            return PaymentStatus.REVERSED
        return PaymentStatus.SUCCEEDED
    if status == "canceled":
        return PaymentStatus.FAILED
    # After a declined attempt the intent goes back to requires_payment_method with the
    # decline in last_payment_error (and payment_intent.payment_failed is sent).
    if status == "requires_payment_method" and intent.get("last_payment_error"):
        return PaymentStatus.FAILED
    return PaymentStatus.PENDING


class Stripe(Adapter):
    provider = "stripe"
    read_error = staticmethod(_read_error)

    def __init__(self, *, webhook_secrets: Iterable[str], **connection: Unpack[Connection]) -> None:
        super().__init__(**connection)
        self._webhook_secrets = [s for s in webhook_secrets if s]

    # ------------------------------------------------------------------ payments

    def initialize_payment(
        self, *, reference: str, amount: Decimal, currency: str, email: str, idempotency_key: str
    ) -> Checkout:
        intent = self._http.post_form(
            "/v1/payment_intents",
            {
                "amount": to_minor(amount, currency),
                "currency": currency.lower(),
                "receipt_email": email,
                "metadata[reference]": reference,
                "automatic_payment_methods[enabled]": "true",
            },
            headers={"Idempotency-Key": f"topup-{idempotency_key}"},
        ).body
        with reading(self.provider, "initialize"):
            return Checkout(
                reference=reference,
                provider_id=str(intent["id"]),
                data={"payment_intent_id": intent["id"], "client_secret": intent["client_secret"]},
            )

    def verify_payment(self, reference: str, provider_id: str | None = None) -> GatewayPayment:
        if provider_id:
            intent = self._http.get(
                f"/v1/payment_intents/{quote(provider_id, safe='')}", {"expand[]": "latest_charge.balance_transaction"}
            ).body
        else:
            found = self._http.get(
                "/v1/payment_intents/search",
                {
                    "query": f"metadata['reference']:'{_quoted(reference)}'",
                    "expand[]": "data.latest_charge.balance_transaction",
                },
            ).body
            with reading(self.provider, "search"):
                matches = list(found["data"])
            if not matches:
                raise GatewayRefused(
                    f"stripe: no PaymentIntent has reference {reference!r}", status=404, code="not_found"
                )
            intent = matches[0]
        with reading(self.provider, "verify"):
            payment = self._payment(intent)
        if payment.reference != reference:
            raise GatewayRefused(f"stripe: PaymentIntent {provider_id} belongs to another reference", code="mismatch")
        return payment

    def list_payments(self, day: date, cursor: str | None = None) -> Page:
        start = int(datetime.combine(day, time(), UTC).timestamp())
        end = int(datetime.combine(day + timedelta(days=1), time(), UTC).timestamp())
        answer = self._http.get(
            "/v1/payment_intents",
            {
                "created[gte]": start,
                "created[lt]": end,
                "limit": PAGE_SIZE,
                "starting_after": cursor,
                "expand[]": "data.latest_charge.balance_transaction",
            },
        ).body
        with reading(self.provider, "list"):
            intents = list(answer["data"])
            items = [self._payment(i) for i in intents]
            more = bool(answer.get("has_more")) and bool(intents)
            return Page(items=items, next_cursor=str(intents[-1]["id"]) if more else None)

    def _payment(self, intent: Mapping[str, Any]) -> GatewayPayment:
        currency = str(intent["currency"]).upper()
        status = _payment_status(intent)
        received = intent.get("amount_received")
        # What was paid once it succeeded (an underpayment shows here), else what is asked.
        units = (
            received if status in (PaymentStatus.SUCCEEDED, PaymentStatus.REVERSED) and received else intent["amount"]
        )
        fee = None
        charge = intent.get("latest_charge")
        if isinstance(charge, dict) and isinstance(charge.get("balance_transaction"), dict):
            fee = from_minor(int(charge["balance_transaction"]["fee"]), currency)
        paid_at = None
        if status is PaymentStatus.SUCCEEDED and isinstance(charge, dict) and charge.get("created"):
            paid_at = datetime.fromtimestamp(int(charge["created"]), UTC)
        return GatewayPayment(
            reference=str((intent.get("metadata") or {}).get("reference") or ""),
            provider_id=str(intent["id"]),
            amount=from_minor(int(units), currency),
            currency=currency,
            status=status,
            fee=fee,
            paid_at=paid_at,
        )

    # ------------------------------------------------------------------ payouts

    def create_payout(
        self,
        *,
        reference: str,
        amount: Decimal,
        currency: str,
        bank_code: str,
        account_number: str,
        account_name: str,
        narration: str,
    ) -> Payout:
        # A Stripe payout goes to a bank account attached to the Stripe account; the
        # destination is kept in metadata for the operator (Stripe has no per-call bank
        # details on this endpoint).
        payout = self._http.post_form(
            "/v1/payouts",
            {
                "amount": to_minor(amount, currency),
                "currency": currency.lower(),
                "description": narration,
                "metadata[reference]": reference,
                "metadata[bank_code]": bank_code,
                "metadata[account_number]": account_number,
                "metadata[account_name]": account_name,
            },
            headers={"Idempotency-Key": f"payout-{reference}"},
        ).body
        with reading(self.provider, "payout"):
            return self._payout(payout, reference)

    def verify_payout(self, reference: str, provider_id: str | None = None) -> Payout:
        if not provider_id:  # payouts are not searchable by metadata
            raise GatewayRefused("stripe finds a payout by its id (po_...) only", code="unsupported")
        payout = self._http.get(f"/v1/payouts/{quote(provider_id, safe='')}").body
        with reading(self.provider, "verify payout"):
            found = self._payout(payout, reference)
        if (payout.get("metadata") or {}).get("reference") != reference:
            raise GatewayRefused(f"stripe: payout {provider_id} belongs to another reference", code="mismatch")
        return found

    @staticmethod
    def _payout(payout: Mapping[str, Any], reference: str) -> Payout:
        return Payout(
            reference=reference,
            provider_id=str(payout["id"]),
            status=_PAYOUT_STATUS.get(str(payout.get("status")), PayoutStatus.PENDING),
            reason=payout.get("failure_message"),
        )

    def create_bulk_payout(self, *, currency: str, items: list[PayoutItem], title: str) -> list[Payout]:
        raise GatewayRefused("stripe offers no bulk transfer API", code="unsupported")

    def resolve_account(self, bank_code: str, account_number: str) -> BankAccount:
        raise GatewayRefused("stripe offers no account-name enquiry", code="unsupported")

    # ------------------------------------------------------------------ webhooks

    def verify_webhook(self, headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> None:
        signatures.verify_stripe(headers, body, self._webhook_secrets, now=now)

    def parse_webhook(self, body: bytes) -> WebhookEvent:
        event = parse_json(body)
        if not isinstance(event, dict) or event.get("object") != "event" or not isinstance(event.get("data"), dict):
            raise ValueError("not a Stripe event: expected an Event object")
        obj = event["data"].get("object")
        if not isinstance(obj, dict):
            raise ValueError("a Stripe event without data.object")
        type_ = str(event["type"])
        occurred = datetime.fromtimestamp(int(event["created"]), UTC) if event.get("created") else None
        reference = (obj.get("metadata") or {}).get("reference")
        currency = str(obj["currency"]).upper() if obj.get("currency") else None
        kind, status, amount = "other", None, None
        if type_.startswith("payment_intent.") and obj.get("object") == "payment_intent" and currency:
            kind = "payment"
            payment = self._payment(obj)
            status, amount = str(payment.status), payment.amount
            if type_ == "payment_intent.payment_failed":
                status = str(PaymentStatus.FAILED)
        elif type_ in _PAYOUT_EVENTS and obj.get("object") == "payout" and currency:
            kind = "payout"
            status = str(_PAYOUT_STATUS.get(str(obj.get("status")), PayoutStatus.PENDING))
            amount = from_minor(int(obj["amount"]), currency)
        return WebhookEvent(
            provider=self.provider,
            event_id=str(event["id"]),
            kind=kind,
            type=type_,
            reference=str(reference) if reference else None,
            amount=amount,
            currency=currency,
            status=status,
            occurred_at=occurred,
            raw=event,
        )


def _quoted(value: str) -> str:
    """A value inside the search language's single quotes."""
    return value.replace("\\", "\\\\").replace("'", "\\'")
