"""What the fake gateway's providers share: its books (payments and payouts), the
misbehaviour it is told, a request and its reply, and the checks every provider makes
(amounts, currencies, bank accounts) with the refusals they answer."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from ledgerline.gateways import signatures
from ledgerline.money import CURRENCIES, from_minor, minor_units

if TYPE_CHECKING:
    from ledgerline.local.fake_gateway import FakeGateway

DEFAULT_HOST = "127.0.0.1"
PAYSTACK_CURRENCIES = ("NGN", "GHS", "ZAR", "KES", "USD")
PAYSTACK_PAGE_SIZE = 50
FLUTTERWAVE_PAGE_SIZE = 10
FLUTTERWAVE_BLACKLISTED_ACCOUNT = "0690000036"  # the provider's own test-mode trap
UNKNOWN_ACCOUNT = "0000000000"  # resolves to nothing, on every provider


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def epoch(at: datetime) -> int:
    return int(at.timestamp())


# --------------------------------------------------------------------------- books


@dataclass
class Payment:
    provider: str
    reference: str
    id: str  # the provider's id: Paystack and Flutterwave numbers, Stripe pi_...
    requested: Decimal  # what the checkout asked for (major units)
    amount: Decimal  # what was paid (major units); the requested amount until then
    currency: str
    email: str
    created_at: datetime
    status: str = "pending"  # "pending" | "success" | "failed"
    paid_at: datetime | None = None
    access_code: str = ""
    client_secret: str = ""
    charge_id: str = ""


@dataclass
class Transfer:
    provider: str
    reference: str
    id: str  # Paystack TRF_..., Stripe po_..., Flutterwave a number
    amount: Decimal
    currency: str
    bank_code: str
    account_number: str
    account_name: str
    narration: str
    created_at: datetime
    status: str = "pending"  # "pending" | "success" | "failed"
    reason: str | None = None
    numeric_id: int = 0


@dataclass
class Misbehaviour:
    """What the fake does wrong, per provider, until reset. The API calls' failures:"""

    verify: str | None = None  # "fail" (500) | "slow" | "wrong_amount" | "pending" | "not_found" | "garbage"
    list: str | None = None  # "fail" (500) | "slow"
    payout: str | None = None  # "fail" (accepted, then fails) | "refuse" (400) | "error" (500) | "slow" | "hold"
    # A payout reference seen before is refused (400 duplicate_reference, as Paystack's docs
    # show) instead of answered with its transfer.
    duplicate_reference: bool = False
    unavailable: int = 0  # the next N API calls answer 503
    rate_limited: int = 0  # the next N API calls answer 429
    slow_seconds: Decimal = Decimal(5)
    # ... and the webhooks it sends:
    duplicates: int = 0  # each webhook is delivered 1 + N times
    # A delivery the API does not answer 2xx is tried again, up to N more times (the
    # providers retry until 200, over hours; here a moment apart).
    webhook_retries: int = 0
    webhook_retry_seconds: Decimal = Decimal("0.1")
    signature: str = "valid"  # "invalid": signed with a wrong key; "stale": Stripe t 10 minutes old
    flutterwave_scheme: str = "signature"  # "signature" | "verif-hash" | "both"
    webhook_delay_seconds: Decimal = Decimal("0.2")  # before a payout's outcome is delivered

    CHOICES = {
        "verify": (None, "fail", "slow", "wrong_amount", "pending", "not_found", "garbage"),
        "list": (None, "fail", "slow"),
        "payout": (None, "fail", "refuse", "error", "slow", "hold"),
        "signature": ("valid", "invalid", "stale"),
        "flutterwave_scheme": ("signature", "verif-hash", "both"),
    }

    def update(self, changes: Mapping[str, Any]) -> None:
        known = {f.name: f for f in fields(self)}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown misbehaviour {name!r}; use {sorted(known)}")
            if name in self.CHOICES and value not in self.CHOICES[name]:
                raise ValueError(f"{name} must be one of {self.CHOICES[name]}")
            counts = ("unavailable", "rate_limited", "duplicates", "webhook_retries")
            if name in counts and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise ValueError(f"{name} must be a count >= 0")
            if name in ("slow_seconds", "webhook_delay_seconds", "webhook_retry_seconds"):
                value = Decimal(str(value))  # JSON-safe (the fake writes no floats)
                if not value.is_finite() or value < 0:
                    raise ValueError(f"{name} must be >= 0")
            setattr(self, name, value)


class Garbage(Exception):
    """Answer 200 with what no adapter can read (a proxy's page in place of the API's)."""


class Refusal(Exception):
    """An answer other than 2xx, in the provider's own error format."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


@dataclass
class Request:
    provider: str
    method: str
    path: str  # below the provider's prefix
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    match: re.Match[str] | None = None

    def q(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def fields(self) -> dict[str, Any]:
        """JSON or form-encoded, as the provider accepts (form keys kept as sent)."""
        ctype = (signatures.header(self.headers, "Content-Type") or "").lower()
        if not self.body:
            return {}
        if "application/x-www-form-urlencoded" in ctype:
            return {k: v[-1] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}
        try:
            value = json.loads(self.body, parse_float=Decimal)
        except ValueError:
            raise Refusal(400, "the body is not valid JSON") from None
        if not isinstance(value, dict):
            raise Refusal(400, "the body must be a JSON object")
        return value


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[["FakeGateway", Request], Reply]


@dataclass(frozen=True)
class Wire:
    """One provider's side of the fake: its API routes (method, path pattern below its
    prefix, handler), its webhooks for a payment's and a payout's outcome, and its report
    of a day (the ``/_fake/{provider}/transactions`` answer)."""

    routes: list[tuple[str, re.Pattern[str], Handler]]
    payment_event: Callable[[FakeGateway, Payment], dict[str, Any] | None]
    payout_event: Callable[[FakeGateway, Transfer], dict[str, Any]]
    report: Callable[[FakeGateway, date], dict[str, Any]]


def wire_amount(value: Any, what: str = "amount") -> Decimal:
    """A number or a numeric string, as the providers accept."""
    if isinstance(value, bool) or value is None:
        raise Refusal(400, f"Invalid {what}")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise Refusal(400, f"Invalid {what}") from None
    if not amount.is_finite() or amount <= 0:
        raise Refusal(400, f"Invalid {what}")
    return amount


def minor_amount(value: Any, currency: str) -> Decimal:
    units = wire_amount(value)
    if units != units.to_integral_value():
        raise Refusal(400, "amount must be an integer in the currency's smallest unit")
    return from_minor(int(units), currency)


def currency_code(value: Any, allowed: tuple[str, ...] | None = None) -> str:
    code = str(value or "").upper()
    if code not in CURRENCIES or (allowed is not None and code not in allowed):
        raise Refusal(400, "Currency not supported by merchant", "unsupported_currency")
    return code


def fee_of(provider: str, amount: Decimal, currency: str) -> Decimal:
    """A plausible fee (major units): Paystack 1.5%, Stripe 2.9% + 30 minor units, and
    Flutterwave 1.4% to the thousandth, as it reports fees (26.875) finer than the currency."""
    if provider == "flutterwave":
        return (amount * Decimal("0.014")).quantize(Decimal("0.001"), ROUND_HALF_UP)
    exponent = Decimal(1).scaleb(-minor_units(currency))
    if provider == "stripe":
        return (amount * Decimal("0.029") + 30 * exponent).quantize(exponent, ROUND_HALF_UP)
    return (amount * Decimal("0.015")).quantize(exponent, ROUND_HALF_UP)


def account_name(bank_code: str, account_number: str) -> str:
    """The name the fake's banks hold for an account: stable, derived from the number."""
    digest = hashlib.sha256(f"{bank_code}:{account_number}".encode()).hexdigest()
    first = ("ADA", "TOLU", "KEMI", "CHIDI", "BAYO", "NGOZI", "EMEKA", "FUNMI")[int(digest[:2], 16) % 8]
    return f"{first} TESTER {account_number[-4:]}"


def check_account(bank_code: Any, account_number: Any) -> tuple[str, str]:
    if not isinstance(account_number, str) or not re.fullmatch(r"\d{10}", account_number):
        raise Refusal(422, "Could not resolve account name. Check parameters or try again.", "invalid_account")
    if not isinstance(bank_code, str) or not re.fullmatch(r"\d{3,6}", bank_code):
        raise Refusal(422, "Unknown bank code", "invalid_bank_code")
    if account_number == UNKNOWN_ACCOUNT:
        raise Refusal(422, "Could not resolve account name. Check parameters or try again.", "invalid_account")
    return bank_code, account_number


def error_body(provider: str, refusal: Refusal) -> dict[str, Any]:
    if provider == "paystack":
        kind = "api_error" if refusal.status >= 500 else "validation_error"
        return {"status": False, "message": refusal.message, "type": kind, "code": refusal.code}
    if provider == "stripe":
        kind = "api_error" if refusal.status >= 500 else "invalid_request_error"
        return {"error": {"type": kind, "code": refusal.code, "message": refusal.message, "param": None}}
    return {"status": "error", "message": refusal.message, "data": None}


def verify_misbehaviour(
    fake: FakeGateway, provider: str, payment: Payment | None, not_found: Refusal | None = None
) -> tuple[Decimal | None, str | None]:
    """(the amount to report instead, the status to report instead) under a misbehaving verify;
    ``not_found`` is the provider's own words for a payment it does not know."""
    bad = fake.misbehaving(provider).verify
    if bad == "slow":
        fake.slow(provider)
    if bad == "fail":
        raise Refusal(500, "An error occurred", "api_error")
    if bad == "garbage":
        raise Garbage()
    if bad == "not_found" or payment is None:
        raise not_found or Refusal(404, "Transaction reference not found", "resource_missing")
    if bad == "wrong_amount":  # one minor unit short: the smallest underpayment
        return payment.amount - Decimal(1).scaleb(-minor_units(payment.currency)), None
    if bad == "pending":
        return None, "pending"
    return None, None


def date_range(req: Request) -> tuple[datetime, datetime]:
    def instant(text: str | None, end: bool) -> datetime | None:
        if not text:
            return None
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
            return day + timedelta(days=1) if end else day
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return at + timedelta(milliseconds=1) if end else at  # "to" is inclusive

    start = instant(req.q("from"), False) or datetime(1970, 1, 1, tzinfo=UTC)
    end = instant(req.q("to"), True) or datetime(9999, 1, 1, tzinfo=UTC)
    return start, end


def list_misbehaviour(fake: FakeGateway, provider: str) -> None:
    bad = fake.misbehaving(provider).list
    if bad == "slow":
        fake.slow(provider)
    if bad == "fail":
        raise Refusal(500, "An error occurred", "api_error")


def envelope(ok: Any, data: Any, message: str, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """Paystack's and Flutterwave's answer ``{status, message, data[, meta]}``; ``ok`` is
    each one's word for success (``true``, ``"success"``)."""
    body: dict[str, Any] = {"status": ok, "message": message, "data": data}
    if meta is not None:
        body["meta"] = meta
    return body


def page_of(rows: list[Any], page: int, size: int) -> tuple[list[Any], int]:
    """(page ``page`` of ``rows``, counted from 1, ``size`` a page; how many pages there are)."""
    return rows[(page - 1) * size : page * size], (len(rows) + size - 1) // size


def payments_on(fake: FakeGateway, provider: str, day: date) -> list[Payment]:
    """The provider's payments of a UTC day (its report)."""
    start = datetime.combine(day, datetime.min.time(), UTC)
    return fake.day_payments(provider, start, start + timedelta(days=1))


def transfer_where(fake: FakeGateway, provider: str, found: Callable[[Transfer], bool], missing: Refusal) -> Transfer:
    """The provider's payout that ``found`` picks, or the provider's 404 ``missing``."""
    with fake._lock:
        transfer = next((t for (p, _), t in fake.transfers.items() if p == provider and found(t)), None)
    if transfer is None:
        raise missing
    return transfer
