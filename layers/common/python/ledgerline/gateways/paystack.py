"""Paystack: JSON, amounts in minor units (kobo), upper-case currencies, the envelope
``{status, message, data, meta}``; webhooks signed HMAC-SHA512 with the secret key
(../shared/GATEWAYS.md §1)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any
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
from ledgerline.gateways.http import Adapter, parse_json, parse_time, reading
from ledgerline.money import from_minor, to_minor

PAGE_SIZE = 50
BULK_TRANSFERS = 100  # the most one POST /transfer/bulk carries

# "abandoned" is a checkout the customer has not finished: it may still be paid, so it
# stays pending until the day's report or an expiry settles it.
_PAYMENT_STATUS = {
    "success": PaymentStatus.SUCCEEDED,
    "failed": PaymentStatus.FAILED,
    "reversed": PaymentStatus.REVERSED,
}
_PAYOUT_STATUS = {
    "success": PayoutStatus.SUCCEEDED,
    "failed": PayoutStatus.FAILED,
    "reversed": PayoutStatus.FAILED,  # the money came back to the balance
    "rejected": PayoutStatus.FAILED,
    "blocked": PayoutStatus.FAILED,
    "abandoned": PayoutStatus.FAILED,
}


def _read_error(body: Any) -> tuple[str, str | None]:
    if isinstance(body, dict):
        return str(body.get("message") or "refused"), body.get("code")
    return str(body)[:200], None


class Paystack(Adapter):
    provider = "paystack"
    read_error = staticmethod(_read_error)

    # ------------------------------------------------------------------ payments

    def initialize_payment(
        self, *, reference: str, amount: Decimal, currency: str, email: str, idempotency_key: str
    ) -> Checkout:
        # Paystack has no idempotency header: the reference is the key. A reference used
        # before is refused (400 duplicate_reference): never a second payment.
        units = to_minor(amount, currency)
        with reading(self.provider, "initialize"):
            data = self._data(
                self._http.post_json(
                    "/transaction/initialize",
                    {"email": email, "amount": units, "currency": currency, "reference": reference},
                ).body
            )
            return Checkout(
                reference=str(data["reference"]),
                provider_id=str(data["access_code"]),
                data={
                    "authorization_url": data["authorization_url"],
                    "access_code": data["access_code"],
                    "reference": data["reference"],
                },
            )

    def verify_payment(self, reference: str, provider_id: str | None = None) -> GatewayPayment:
        with reading(self.provider, "verify"):
            return self._payment(self._data(self._http.get(f"/transaction/verify/{quote(reference, safe='')}").body))

    def list_payments(self, day: date, cursor: str | None = None) -> Page:
        page = int(cursor or 1)
        answer = self._http.get(
            "/transaction",
            {
                "from": f"{day.isoformat()}T00:00:00.000Z",
                "to": f"{day.isoformat()}T23:59:59.999Z",  # inclusive
                "page": page,
                "perPage": PAGE_SIZE,
            },
        ).body
        with reading(self.provider, "list"):
            items = [self._payment(t) for t in self._data(answer)]
            more = page < int((answer.get("meta") or {}).get("pageCount") or 0)
            return Page(items=items, next_cursor=str(page + 1) if more else None)

    def _payment(self, data: Mapping[str, Any]) -> GatewayPayment:
        currency = str(data["currency"]).upper()
        fees = data.get("fees")
        return GatewayPayment(
            reference=str(data["reference"]),
            provider_id=str(data["id"]),
            amount=from_minor(int(data["amount"]), currency),
            currency=currency,
            status=_PAYMENT_STATUS.get(str(data.get("status")), PaymentStatus.PENDING),
            fee=from_minor(int(fees), currency) if fees is not None else None,
            paid_at=parse_time(data.get("paid_at") or data.get("paidAt")),
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
        # A recipient per account (Paystack answers the existing one for the same account),
        # then the transfer, whose reference is its idempotency key.
        units = to_minor(amount, currency)
        with reading(self.provider, "payout"):
            recipient = self._data(
                self._http.post_json(
                    "/transferrecipient",
                    {
                        "type": "nuban",
                        "name": account_name,
                        "account_number": account_number,
                        "bank_code": bank_code,
                        "currency": currency,
                    },
                ).body
            )
            data = self._data(
                self._http.post_json(
                    "/transfer",
                    {
                        "source": "balance",
                        "amount": units,
                        "recipient": recipient["recipient_code"],
                        "reference": reference,
                        "reason": narration,
                        "currency": currency,
                    },
                ).body
            )
            return self._payout(data)

    def verify_payout(self, reference: str, provider_id: str | None = None) -> Payout:
        with reading(self.provider, "verify payout"):
            return self._payout(self._data(self._http.get(f"/transfer/verify/{quote(reference, safe='')}").body))

    @staticmethod
    def _payout(data: Mapping[str, Any]) -> Payout:
        return Payout(
            reference=str(data["reference"]),
            provider_id=str(data["transfer_code"]),
            status=_PAYOUT_STATUS.get(str(data.get("status")), PayoutStatus.PENDING),
            reason=data.get("failures") or data.get("gateway_response"),
        )

    def create_bulk_payout(self, *, currency: str, items: list[PayoutItem], title: str) -> list[Payout]:
        # A recipient per account (the existing one comes back for the same account), then
        # ``POST /transfer/bulk``, at most 100 transfers a request.
        payouts: list[Payout] = []
        with reading(self.provider, "bulk payout"):
            for chunk in (items[i : i + BULK_TRANSFERS] for i in range(0, len(items), BULK_TRANSFERS)):
                transfers = []
                for item in chunk:
                    recipient = self._data(
                        self._http.post_json(
                            "/transferrecipient",
                            {"type": "nuban", "name": item.account_name, "account_number": item.account_number,
                             "bank_code": item.bank_code, "currency": currency},
                        ).body
                    )  # fmt: skip
                    transfers.append({"amount": to_minor(item.amount, currency), "reference": item.reference,
                                      "reason": item.narration, "recipient": recipient["recipient_code"]})  # fmt: skip
                queued = self._data(
                    self._http.post_json(
                        "/transfer/bulk", {"currency": currency, "source": "balance", "transfers": transfers}
                    ).body
                )
                by_reference = {str(q["reference"]): q for q in queued}
                payouts.extend(self._payout(by_reference[item.reference]) for item in chunk)
        return payouts

    def resolve_account(self, bank_code: str, account_number: str) -> BankAccount:
        with reading(self.provider, "resolve"):
            data = self._data(
                self._http.get("/bank/resolve", {"account_number": account_number, "bank_code": bank_code}).body
            )
            return BankAccount(
                bank_code=bank_code, account_number=str(data["account_number"]), account_name=str(data["account_name"])
            )

    # ------------------------------------------------------------------ webhooks

    def verify_webhook(self, headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> None:
        signatures.verify_paystack(headers, body, self._secret_key)

    def parse_webhook(self, body: bytes) -> WebhookEvent:
        event = parse_json(body)
        if (
            not isinstance(event, dict)
            or not isinstance(event.get("event"), str)
            or not isinstance(event.get("data"), dict)
        ):
            raise ValueError("not a Paystack event: expected {event, data}")
        kind_of = event["event"]
        data = event["data"]
        currency = str(data["currency"]).upper() if data.get("currency") else None
        amount = from_minor(int(data["amount"]), currency) if currency and data.get("amount") is not None else None
        if kind_of == "charge.success":
            kind, status = "payment", str(_PAYMENT_STATUS.get(str(data.get("status")), PaymentStatus.PENDING))
        elif kind_of in ("transfer.success", "transfer.failed", "transfer.reversed"):
            kind, status = "payout", str(_PAYOUT_STATUS.get(str(data.get("status")), PayoutStatus.PENDING))
        else:
            kind, status = "other", None
        # Paystack events carry no id: the event name and the object's id identify one.
        return WebhookEvent(
            provider=self.provider,
            event_id=f"{kind_of}:{data.get('id') or data.get('reference')}",
            kind=kind,
            type=kind_of,
            reference=str(data["reference"]) if data.get("reference") else None,
            amount=amount,
            currency=currency,
            status=status,
            occurred_at=parse_time(data.get("paid_at") or data.get("updatedAt") or data.get("updated_at")),
            raw=event,
        )

    @staticmethod
    def _data(body: Any) -> Any:
        """The envelope's data; ``status: false`` is the provider saying no, anything else
        that is not the envelope is an answer we cannot read (ValueError, see ``reading``)."""
        if isinstance(body, dict) and body.get("status") is False:
            raise GatewayRefused(f"paystack: {body.get('message') or 'refused'}", code=body.get("code"))
        if not isinstance(body, dict) or body.get("status") is not True or "data" not in body:
            raise ValueError("not a Paystack envelope")
        return body["data"]
