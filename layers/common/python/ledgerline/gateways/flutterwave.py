"""Flutterwave v3: JSON, amounts in MAJOR units (decimals allowed, kept as ``Decimal``),
the envelope ``{status: "success", message, data, meta}``; webhooks carry ``verif-hash``
(the secret hash itself) or ``flutterwave-signature`` (base64 HMAC-SHA256 of the body),
accepted as configured (../shared/GATEWAYS.md §3)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
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
from ledgerline.gateways.http import Adapter, Connection, parse_json, parse_time, reading
from ledgerline.money import minor_units, to_minor

BULK_TRANSFERS = 100  # per POST /v3/bulk-transfers

_PAYMENT_STATUS = {
    "successful": PaymentStatus.SUCCEEDED,
    "succeeded": PaymentStatus.SUCCEEDED,  # v4's word
    "failed": PaymentStatus.FAILED,
    "cancelled": PaymentStatus.FAILED,
}
_PAYOUT_STATUS = {"SUCCESSFUL": PayoutStatus.SUCCEEDED, "FAILED": PayoutStatus.FAILED}


def _read_error(body: Any) -> tuple[str, str | None]:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):  # v4's envelope
            return str(error.get("message") or "refused"), error.get("type")
        return str(body.get("message") or "refused"), None
    return str(body)[:200], None


def major(value: Any, currency: str) -> Decimal:
    """A major-unit amount from the wire (a JSON number read as Decimal, or a string),
    exact to the currency's minor units; a fraction beyond them is refused, not rounded."""
    amount = Decimal(str(value))
    if amount != amount.quantize(Decimal(1).scaleb(-minor_units(currency))):
        raise ValueError(f"flutterwave sent {value} {currency}: more decimals than {currency} has")
    return amount


def fee(value: Any) -> Decimal | None:
    # Fees keep every decimal Flutterwave sends (26.875 NGN): they are reported, not posted.
    return None if value is None else Decimal(str(value))


class Flutterwave(Adapter):
    provider = "flutterwave"
    read_error = staticmethod(_read_error)

    def __init__(
        self,
        *,
        secret_hash: str,
        webhook_schemes: Iterable[str] = signatures.FLUTTERWAVE_SCHEMES,
        **connection: Unpack[Connection],
    ) -> None:
        self._secret_hash = secret_hash
        self._schemes = tuple(webhook_schemes)
        unknown = set(self._schemes) - set(signatures.FLUTTERWAVE_SCHEMES)
        if unknown or not self._schemes:  # a typo in the settings fails at start, not at the first webhook
            raise ValueError(
                f"Flutterwave webhook schemes {sorted(unknown)}: use some of {signatures.FLUTTERWAVE_SCHEMES}"
            )
        super().__init__(**connection)

    # ------------------------------------------------------------------ payments

    def initialize_payment(
        self, *, reference: str, amount: Decimal, currency: str, email: str, idempotency_key: str
    ) -> Checkout:
        to_minor(amount, currency)  # major units on the wire, but never finer than the currency
        with reading(self.provider, "initialize"):
            data = self._data(
                self._http.post_json(
                    "/v3/payments",
                    {"tx_ref": reference, "amount": amount, "currency": currency, "customer": {"email": email}},
                ).body
            )
            return Checkout(reference=reference, provider_id=None, data={"link": data["link"]})

    def verify_payment(self, reference: str, provider_id: str | None = None) -> GatewayPayment:
        if provider_id:
            body = self._http.get(f"/v3/transactions/{quote(provider_id, safe='')}/verify").body
        else:
            body = self._http.get("/v3/transactions/verify_by_reference", {"tx_ref": reference}).body
        with reading(self.provider, "verify"):
            payment = self._payment(self._data(body))
        if payment.reference != reference:
            raise GatewayRefused(
                f"flutterwave: transaction {provider_id} belongs to another reference", code="mismatch"
            )
        return payment

    def list_payments(self, day: date, cursor: str | None = None) -> Page:
        page = int(cursor or 1)
        answer = self._http.get("/v3/transactions", {"from": day.isoformat(), "to": day.isoformat(), "page": page}).body
        with reading(self.provider, "list"):
            items = [self._payment(t) for t in self._data(answer)]
            info = (answer.get("meta") or {}).get("page_info") or {}
            more = page < int(info.get("total_pages") or 0)
            return Page(items=items, next_cursor=str(page + 1) if more else None)

    def _payment(self, data: Mapping[str, Any]) -> GatewayPayment:
        currency = str(data["currency"]).upper()
        return GatewayPayment(
            reference=str(data["tx_ref"]),
            provider_id=str(data["id"]),
            amount=major(data["amount"], currency),
            currency=currency,
            status=_PAYMENT_STATUS.get(str(data.get("status")).lower(), PaymentStatus.PENDING),
            fee=fee(data.get("app_fee")),
            paid_at=parse_time(data.get("created_at")) if data.get("status") == "successful" else None,
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
        to_minor(amount, currency)
        with reading(self.provider, "payout"):
            data = self._data(
                self._http.post_json(
                    "/v3/transfers",
                    {
                        "account_bank": bank_code,
                        "account_number": account_number,
                        "amount": amount,
                        "currency": currency,
                        "debit_currency": currency,
                        "narration": narration,
                        "reference": reference,
                        "beneficiary_name": account_name,
                    },
                ).body
            )
            return self._payout(data)

    def create_bulk_payout(self, *, currency: str, items: list[PayoutItem], title: str) -> list[Payout]:
        # POST /v3/bulk-transfers answers the batch's id only: each transfer is pending
        # until its own webhook (its id is not known yet; the batch's stands for it).
        payouts: list[Payout] = []
        with reading(self.provider, "bulk payout"):
            for chunk in (items[i : i + BULK_TRANSFERS] for i in range(0, len(items), BULK_TRANSFERS)):
                for item in chunk:
                    to_minor(item.amount, currency)  # an amount the currency cannot take fails here
                batch = self._data(
                    self._http.post_json(
                        "/v3/bulk-transfers",
                        {
                            "title": title[:100],
                            "bulk_data": [
                                {"bank_code": i.bank_code, "account_number": i.account_number, "amount": i.amount,
                                 "currency": currency, "narration": i.narration, "reference": i.reference}
                                for i in chunk
                            ],
                        },
                    ).body
                )  # fmt: skip
                payouts.extend(
                    Payout(reference=i.reference, provider_id=f"bulk-{batch['id']}", status=PayoutStatus.PENDING)
                    for i in chunk
                )
        return payouts

    def verify_payout(self, reference: str, provider_id: str | None = None) -> Payout:
        if not provider_id:  # v3 fetches a transfer by its id
            raise GatewayRefused("flutterwave finds a transfer by its id only", code="unsupported")
        with reading(self.provider, "verify payout"):
            payout = self._payout(self._data(self._http.get(f"/v3/transfers/{quote(provider_id, safe='')}").body))
        if payout.reference != reference:
            raise GatewayRefused(f"flutterwave: transfer {provider_id} belongs to another reference", code="mismatch")
        return payout

    @staticmethod
    def _payout(data: Mapping[str, Any]) -> Payout:
        status = _PAYOUT_STATUS.get(str(data.get("status")).upper(), PayoutStatus.PENDING)  # NEW, PENDING
        return Payout(
            reference=str(data["reference"]),
            provider_id=str(data["id"]),
            status=status,
            reason=(data.get("complete_message") or None) if status is PayoutStatus.FAILED else None,
        )

    def resolve_account(self, bank_code: str, account_number: str) -> BankAccount:
        with reading(self.provider, "resolve"):
            data = self._data(
                self._http.post_json(
                    "/v3/accounts/resolve", {"account_number": account_number, "account_bank": bank_code}
                ).body
            )
            return BankAccount(
                bank_code=bank_code, account_number=str(data["account_number"]), account_name=str(data["account_name"])
            )

    # ------------------------------------------------------------------ webhooks

    def verify_webhook(self, headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> None:
        signatures.verify_flutterwave(headers, body, self._secret_hash, self._schemes)

    def parse_webhook(self, body: bytes) -> WebhookEvent:
        event = parse_json(body)
        if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
            raise ValueError("not a Flutterwave event: expected {event, data}")
        type_ = str(event.get("event") or event.get("type") or "")  # v3 "event", v4 "type"
        if not type_:
            raise ValueError("a Flutterwave event without its type")
        data = event["data"]
        currency = str(data["currency"]).upper() if data.get("currency") else None
        amount = major(data["amount"], currency) if currency and data.get("amount") is not None else None
        kind, status, reference = "other", None, None
        if type_ == "charge.completed":
            kind = "payment"
            status = str(_PAYMENT_STATUS.get(str(data.get("status")).lower(), PaymentStatus.PENDING))
            reference = data.get("tx_ref") or data.get("reference")
        elif type_ in ("transfer.completed", "transfer.disburse"):
            kind = "payout"
            status = str(_PAYOUT_STATUS.get(str(data.get("status")).upper(), PayoutStatus.PENDING))
            reference = data.get("reference")
        # v3 events have no id: the type, the object and its status identify one delivery's
        # content (a resend of the same outcome is the same event).
        event_id = event.get("id") or f"{type_}:{data.get('id')}:{data.get('status')}"
        return WebhookEvent(
            provider=self.provider,
            event_id=str(event_id),
            kind=kind,
            type=type_,
            reference=str(reference) if reference else None,
            amount=amount,
            currency=currency,
            status=status,
            occurred_at=parse_time(data.get("created_at")),
            raw=event,
        )

    @staticmethod
    def _data(body: Any) -> Any:
        """The envelope's data; ``status: "error"`` is the provider saying no, anything else
        that is not the envelope is an answer we cannot read (ValueError, see ``reading``)."""
        if isinstance(body, dict) and body.get("status") in ("error", "failed"):
            raise GatewayRefused(f"flutterwave: {body.get('message') or 'refused'}")
        if not isinstance(body, dict) or body.get("status") != "success" or "data" not in body:
            raise ValueError("not a Flutterwave envelope")
        return body["data"]
