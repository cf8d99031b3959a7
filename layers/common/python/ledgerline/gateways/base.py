"""What every payment gateway adapter offers, in the ledger's terms.

Adapters (``paystack``, ``stripe``, ``flutterwave``) speak their provider's wire format
(../shared/GATEWAYS.md) and give back these values: amounts are ``Decimal`` in major units
of an ISO 4217 currency (the adapter converts from the provider's minor units), statuses are
ours. Every call has a timeout and bounded retries; what still fails is
``GatewayUnavailable`` (try again later: a queue message stays for retry) or
``GatewayRefused`` (the provider said no: retrying the same call will not help).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

PROVIDERS = ("paystack", "stripe", "flutterwave")


class PaymentStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REVERSED = "reversed"  # refunded or charged back after success


class PayoutStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class GatewayError(Exception):
    """A gateway call that did not give an answer the caller can use. ``status`` is the
    provider's HTTP status when it answered; ``code`` its error code when it gave one
    (``duplicate_reference``, ``unsupported``...)."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class GatewayUnavailable(GatewayError):
    """Timeout, connection failure, 5xx or 429 after the bounded retries: try again later."""


class GatewayRefused(GatewayError):
    """The provider refused the call (4xx): the same call will not succeed on retry."""


class SignatureInvalid(Exception):
    """A webhook whose signature does not verify (missing, wrong, stale or far-future)."""


@dataclass(frozen=True)
class Checkout:
    """What a client needs to pay: the provider's hosted page or client secret."""

    reference: str
    provider_id: str | None  # the provider's own id (Stripe PaymentIntent, Paystack access code...)
    data: dict[str, Any]  # returned to the client as the top-up's ``checkout`` object


@dataclass(frozen=True)
class GatewayPayment:
    """A payment as the gateway's books have it (verify, and each row of a day's report)."""

    reference: str
    provider_id: str
    amount: Decimal
    currency: str
    status: PaymentStatus
    fee: Decimal | None = None
    paid_at: datetime | None = None


@dataclass(frozen=True)
class Page:
    items: list[GatewayPayment]
    next_cursor: str | None


@dataclass(frozen=True)
class Payout:
    reference: str
    provider_id: str
    status: PayoutStatus
    reason: str | None = None  # why it failed, in the provider's words


@dataclass(frozen=True)
class PayoutItem:
    """One transfer of a bulk payout (issue 19): the same fields as ``create_payout``'s."""

    reference: str
    amount: Decimal
    bank_code: str
    account_number: str
    account_name: str
    narration: str


@dataclass(frozen=True)
class BankAccount:
    bank_code: str
    account_number: str
    account_name: str


@dataclass(frozen=True)
class WebhookEvent:
    """A verified webhook, parsed. ``kind`` says what it is about; other fields may be
    None for events this system does not act on (``kind == "other"``)."""

    provider: str
    event_id: str  # the provider's event id (dedupe key); derived from the body when it has none
    kind: str  # "payment" | "payout" | "other"
    type: str  # the provider's event type, as sent (charge.success, payment_intent.succeeded...)
    reference: str | None
    amount: Decimal | None
    currency: str | None
    status: str | None  # a PaymentStatus or PayoutStatus value
    occurred_at: datetime | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)


class Gateway(Protocol):
    provider: str

    def initialize_payment(
        self, *, reference: str, amount: Decimal, currency: str, email: str, idempotency_key: str
    ) -> Checkout:
        """Start a checkout. The same ``idempotency_key`` (and reference) gives back the same
        checkout, never a second payment, so a retried request is safe."""
        ...

    def verify_payment(self, reference: str, provider_id: str | None = None) -> GatewayPayment:
        """The payment as the gateway has it now (the re-query after a webhook)."""
        ...

    def list_payments(self, day: date, cursor: str | None = None) -> Page:
        """One page of the day's payments (UTC), for reconciliation."""
        ...

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
        """Send money to a bank account; idempotent on ``reference``."""
        ...

    def create_bulk_payout(self, *, currency: str, items: list[PayoutItem], title: str) -> list[Payout]:
        """Send many transfers in one currency through the provider's bulk transfer API,
        one ``Payout`` per item (in order), each settled by its own webhook; idempotent on
        each item's reference. ``GatewayRefused(code="unsupported")`` where there is none."""
        ...

    def verify_payout(self, reference: str, provider_id: str | None = None) -> Payout:
        """The payout as the gateway has it now (the re-query after its webhook). Stripe and
        Flutterwave find a payout by ``provider_id`` only (``GatewayRefused`` without it)."""
        ...

    def resolve_account(self, bank_code: str, account_number: str) -> BankAccount:
        """The name on a bank account (account-name enquiry)."""
        ...

    def verify_webhook(self, headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> None:
        """Raise ``SignatureInvalid`` unless ``body`` carries a valid signature in ``headers``
        (header names case-insensitive); constant-time comparisons only."""
        ...

    def parse_webhook(self, body: bytes) -> WebhookEvent:
        """A verified body as an event (raise ``ValueError`` for a body it cannot read)."""
        ...
