"""The local fake payment gateway: Paystack, Stripe and Flutterwave v3 on one port, each
under its own path prefix (``/paystack``, ``/stripe``, ``/flutterwave``), speaking the
provider's real wire format (../shared/GATEWAYS.md): its request encoding, envelopes,
minor or major units, currency case, error bodies and webhook signatures.

It keeps its own books (in memory: payments and payouts by provider and reference) and
answers initialize / verify / list / payout / account-name calls from them. Control
routes under ``/_fake`` (docs/api.md "Local stack") pay a checkout and deliver the
provider's signed webhook to the API, list the books, and make it misbehave on request
(failing, slow or lying verifies, failing payouts, duplicate or badly signed webhooks,
503s and 429s) so that every failure path can be tested. Webhooks are signed with the
local secrets by ``ledgerline.gateways.signatures``, the code the adapters verify with.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ledgerline.gateways import signatures
from ledgerline.gateways.base import PROVIDERS
from ledgerline.gateways.http import json_bytes
from ledgerline.money import CURRENCIES, from_minor, minor_units, to_minor

logger = logging.getLogger("ledgerline.fake_gateway")

DEFAULT_HOST = "127.0.0.1"
PAYSTACK_CURRENCIES = ("NGN", "GHS", "ZAR", "KES", "USD")
PAYSTACK_PAGE_SIZE = 50
FLUTTERWAVE_PAGE_SIZE = 10
FLUTTERWAVE_BLACKLISTED_ACCOUNT = "0690000036"  # the provider's own test-mode trap
UNKNOWN_ACCOUNT = "0000000000"  # resolves to nothing, on every provider
WEBHOOK_TIMEOUT_SECONDS = 30.0


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _epoch(at: datetime) -> int:
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
    unavailable: int = 0  # the next N API calls answer 503
    rate_limited: int = 0  # the next N API calls answer 429
    slow_seconds: Decimal = Decimal(5)
    # ... and the webhooks it sends:
    duplicates: int = 0  # each webhook is delivered 1 + N times
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
            counts = ("unavailable", "rate_limited", "duplicates")
            if name in counts and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise ValueError(f"{name} must be a count >= 0")
            if name in ("slow_seconds", "webhook_delay_seconds"):
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


def _amount(value: Any, what: str = "amount") -> Decimal:
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


def _minor_amount(value: Any, currency: str) -> Decimal:
    units = _amount(value)
    if units != units.to_integral_value():
        raise Refusal(400, "amount must be an integer in the currency's smallest unit")
    return from_minor(int(units), currency)


def _currency(value: Any, allowed: tuple[str, ...] | None = None) -> str:
    code = str(value or "").upper()
    if code not in CURRENCIES or (allowed is not None and code not in allowed):
        raise Refusal(400, "Currency not supported by merchant", "unsupported_currency")
    return code


def _fee(provider: str, amount: Decimal, currency: str) -> Decimal:
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


def _check_account(bank_code: Any, account_number: Any) -> tuple[str, str]:
    if not isinstance(account_number, str) or not re.fullmatch(r"\d{10}", account_number):
        raise Refusal(422, "Could not resolve account name. Check parameters or try again.", "invalid_account")
    if not isinstance(bank_code, str) or not re.fullmatch(r"\d{3,6}", bank_code):
        raise Refusal(422, "Unknown bank code", "invalid_bank_code")
    if account_number == UNKNOWN_ACCOUNT:
        raise Refusal(422, "Could not resolve account name. Check parameters or try again.", "invalid_account")
    return bank_code, account_number


# --------------------------------------------------------------------------- the server


class FakeGateway:
    """``FakeGateway(port).start()``; ``stop()`` ends it. ``keys`` are the gateways secret's
    values (default: the local throwaway secrets file)."""

    def __init__(
        self,
        port: int = 0,
        host: str = DEFAULT_HOST,
        *,
        keys: Mapping[str, str] | None = None,
        webhook_url: str | None = None,
    ) -> None:
        if keys is None:
            from ledgerline.local import aws

            keys = aws.load_dev_secrets()["gateways"]
        self.keys = dict(keys)
        self.webhook_url = (webhook_url or _default_webhook_url()).rstrip("/")
        self._lock = threading.RLock()
        self._host = host
        self._server = ThreadingHTTPServer((host, port), _HttpHandler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._server.fake = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None
        self._timers: list[threading.Timer] = []
        # Ids never repeat, not even across a reset or another fake in the same test run:
        # consumers deduplicate Paystack and Flutterwave events on them.
        self._serial = 1_000_000_000 + secrets.randbelow(8_000_000_000)
        self.reset()

    # ------------------------------------------------------------------ life

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    def start(self) -> FakeGateway:
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-gateway", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._lock:
            for timer in self._timers:
                timer.cancel()
        if self._thread is not None:
            self._server.shutdown()
            self._thread = None
        self._server.server_close()

    def reset(self) -> None:
        """Empty books and logs, no misbehaviour (ids go on from where they were)."""
        with self._lock:
            for timer in getattr(self, "_timers", []):
                timer.cancel()
            self._timers = []
            self.payments: dict[tuple[str, str], Payment] = {}
            self.transfers: dict[tuple[str, str], Transfer] = {}
            self.recipients: dict[str, dict[str, Any]] = {}
            self.idempotent: dict[tuple[str, str], tuple[str, Reply]] = {}
            self.misbehaviour = {p: Misbehaviour() for p in PROVIDERS}
            self.requests: dict[str, list[str]] = {p: [] for p in PROVIDERS}
            self.deliveries: dict[str, list[dict[str, Any]]] = {p: [] for p in PROVIDERS}

    def next_id(self) -> int:
        with self._lock:
            self._serial += 1
            return self._serial

    # ------------------------------------------------------------------ dispatch

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply:
        parts = urlsplit(target)
        path = unquote(parts.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        if path.startswith("/_fake/") or path == "/_fake":
            return self._control(method, path, query, body)
        provider, _, rest = path.lstrip("/").partition("/")
        if provider not in PROVIDERS:
            return Reply(404, {"error": f"no such provider {provider!r}; use /{'|/'.join(PROVIDERS)}"})
        request = Request(provider, method, "/" + rest, query, headers, body)
        with self._lock:
            self.requests[provider].append(f"{method} {request.path}")
        try:
            self._authenticate(request)
            misbehaving = self._transient_failure(provider)
            if misbehaving:
                return misbehaving
            for route_method, pattern, handler in _ROUTES[provider]:
                m = pattern.fullmatch(request.path)
                if m and route_method == method:
                    request.match = m
                    return handler(self, request)
            raise Refusal(404, f"Unrecognized request URL ({method}: {request.path})", "resource_missing")
        except Refusal as refusal:
            return Reply(refusal.status, _error_body(provider, refusal))
        except Garbage:
            return Reply(200, "<html><body>502 Bad Gateway</body></html>")

    def _authenticate(self, request: Request) -> None:
        key = {
            "paystack": "paystack_secret_key",
            "stripe": "stripe_secret_key",
            "flutterwave": "flutterwave_secret_key",
        }[request.provider]
        sent = signatures.header(request.headers, "Authorization") or ""
        scheme, _, credential = sent.partition(" ")
        if request.provider == "stripe" and scheme.lower() == "basic":  # curl -u sk_test_...:
            credential = base64.b64decode(credential.encode() + b"==").decode(errors="replace").split(":", 1)[0]
            scheme = "bearer"
        expected = self.keys[key]
        if scheme.lower() != "bearer" or not hmac.compare_digest(credential.encode(), expected.encode()):
            messages = {
                "paystack": "Invalid key",
                "stripe": "Invalid API Key provided",
                "flutterwave": "Invalid authorization key",
            }
            raise Refusal(401, messages[request.provider], "invalid_api_key")

    def _transient_failure(self, provider: str) -> Reply | None:
        with self._lock:
            bad = self.misbehaviour[provider]
            if bad.unavailable:
                bad.unavailable -= 1
                return Reply(503, _error_body(provider, Refusal(503, "Service unavailable", "api_error")))
            if bad.rate_limited:
                bad.rate_limited -= 1
                return Reply(
                    429,
                    _error_body(provider, Refusal(429, "Too many requests", "rate_limit")),
                    {"Retry-After": "0"},
                )
        return None

    def misbehaving(self, provider: str) -> Misbehaviour:
        with self._lock:
            return Misbehaviour(**{k: v for k, v in asdict(self.misbehaviour[provider]).items()})

    def slow(self, provider: str) -> None:
        time.sleep(float(self.misbehaving(provider).slow_seconds))

    # ------------------------------------------------------------------ books

    def payment(self, provider: str, reference: str) -> Payment | None:
        with self._lock:
            return self.payments.get((provider, reference))

    def payment_by_id(self, provider: str, provider_id: str) -> Payment | None:
        with self._lock:
            return next((p for (prov, _), p in self.payments.items() if prov == provider and p.id == provider_id), None)

    def open_payment(self, provider: str, reference: str, amount: Decimal, currency: str, email: str) -> Payment:
        with self._lock:
            number = self.next_id()
            token = secrets.token_hex(8)
            payment = Payment(
                provider=provider,
                reference=reference,
                id=f"pi_{token}{number}" if provider == "stripe" else str(number),
                requested=amount,
                amount=amount,
                currency=currency,
                email=email,
                created_at=_now(),
                access_code=token,
            )
            if provider == "stripe":
                payment.client_secret = f"{payment.id}_secret_{secrets.token_hex(8)}"
            self.payments[(provider, reference)] = payment
            return payment

    def day_payments(self, provider: str, start: datetime, end: datetime) -> list[Payment]:
        """The payments created in [start, end), newest first (as the providers list them)."""
        with self._lock:
            rows = [p for (prov, _), p in self.payments.items() if prov == provider and start <= p.created_at < end]
        return sorted(rows, key=lambda p: (p.created_at, p.id), reverse=True)

    # ------------------------------------------------------------------ webhooks

    def sign(self, provider: str, body: bytes) -> dict[str, str]:
        bad = self.misbehaving(provider)
        keys = self.keys
        if bad.signature == "invalid":
            keys = {k: "wrong-" + v for k, v in keys.items()}
        now = time.time() - 600 if bad.signature == "stale" else None
        return signatures.webhook_headers(provider, body, keys, now=now, flutterwave_scheme=bad.flutterwave_scheme)

    def deliver(self, provider: str, event: Mapping[str, Any], url: str | None = None) -> dict[str, Any]:
        """Send ``event`` signed to the API (1 + duplicates times); the delivery's record."""
        body = json_bytes(event)
        headers = self.sign(provider, body)
        target = f"{(url or self.webhook_url).rstrip('/')}/v1/webhooks/{provider}"
        statuses = [_post(target, body, headers) for _ in range(1 + self.misbehaving(provider).duplicates)]
        record = {
            "type": event.get("event") or event.get("type"),
            "delivered_status": statuses[0],
            "deliveries": statuses,
            "webhook": {"headers": headers, "body": body.decode()},
        }
        with self._lock:
            self.deliveries[provider].append(record)
        return record

    def later(self, seconds: float, action: Callable[[], Any]) -> None:
        def run() -> None:
            try:
                action()
            except Exception:
                logger.exception("fake gateway: a delayed webhook failed")

        timer = threading.Timer(seconds, run)
        timer.daemon = True
        with self._lock:
            self._timers.append(timer)
        timer.start()

    # ------------------------------------------------------------------ control

    def pay(
        self,
        provider: str,
        *,
        reference: str,
        amount: Decimal,
        currency: str,
        status: str = "success",
        deliver: bool = True,
        webhook_url: str | None = None,
        paid_at: datetime | None = None,
    ) -> dict[str, Any]:
        """The customer pays (or fails to): the books change, the webhook goes out."""
        if status not in ("success", "failed"):
            raise ValueError('status must be "success" or "failed"')
        payment = self.payment(provider, reference) or self.open_payment(
            provider, reference, amount, currency, "customer@example.test"
        )
        with self._lock:
            if payment.currency != currency:
                raise ValueError(f"{reference} was opened in {payment.currency}, not {currency}")
            payment.amount = amount
            payment.status = status
            payment.paid_at = paid_at or _now()
            if paid_at is not None and payment.created_at > paid_at:
                payment.created_at = paid_at
            payment.charge_id = payment.charge_id or f"ch_{secrets.token_hex(10)}"
        event = _PAYMENT_EVENTS[provider](self, payment)
        if event is None or not deliver:
            # Paystack sends no webhook for a failed charge: its outcome is learnt by verify.
            webhook = (
                None
                if event is None
                else {"headers": self.sign(provider, json_bytes(event)), "body": json_bytes(event).decode()}
            )
            return {"delivered_status": None, "webhook": webhook}
        record = self.deliver(provider, event, webhook_url)
        return {k: record[k] for k in ("delivered_status", "deliveries", "webhook")}

    def create_transfer(
        self,
        provider: str,
        *,
        reference: str,
        amount: Decimal,
        currency: str,
        bank_code: str,
        account_number: str,
        account_name: str,
        narration: str,
    ) -> Transfer:
        """A payout, idempotent on its reference; its outcome's webhook follows."""
        bad = self.misbehaving(provider)
        with self._lock:
            existing = self.transfers.get((provider, reference))
            if existing:
                return existing
        if bad.payout == "slow":
            self.slow(provider)
        if bad.payout == "error":
            raise Refusal(500, "An error occurred while processing the transfer", "api_error")
        if bad.payout == "refuse":
            raise Refusal(400, "Your balance is not enough to fulfil this request", "insufficient_balance")
        number = self.next_id()
        ident = {"paystack": f"TRF_{secrets.token_hex(8)}", "stripe": f"po_{secrets.token_hex(12)}"}.get(
            provider, str(number)
        )
        transfer = Transfer(
            provider=provider,
            reference=reference,
            id=ident,
            amount=amount,
            currency=currency,
            bank_code=bank_code,
            account_number=account_number,
            account_name=account_name,
            narration=narration,
            created_at=_now(),
            numeric_id=number,
        )
        with self._lock:
            self.transfers[(provider, reference)] = transfer
        if bad.payout != "hold":
            outcome = "failed" if bad.payout == "fail" else "success"
            self.later(float(bad.webhook_delay_seconds), lambda: self.settle(provider, reference, outcome))
        return transfer

    def settle(self, provider: str, reference: str, status: str, reason: str | None = None) -> dict[str, Any]:
        """A payout's outcome: the books change and its webhook goes out."""
        if status not in ("success", "failed"):
            raise ValueError('status must be "success" or "failed"')
        with self._lock:
            transfer = self.transfers.get((provider, reference))
            if transfer is None:
                raise LookupError(f"no {provider} payout {reference!r}")
            transfer.status = status
            transfer.reason = reason or ("Insufficient funds in customer wallet" if status == "failed" else None)
        record = self.deliver(provider, _PAYOUT_EVENTS[provider](self, transfer))
        return {k: record[k] for k in ("delivered_status", "deliveries", "webhook")}

    def _control(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> Reply:
        parts = path.strip("/").split("/")[1:]  # after "_fake"
        try:
            data = json.loads(body, parse_float=Decimal) if body else {}
            if not isinstance(data, dict):
                raise ValueError("send a JSON object")
            if parts == ["health"] and method == "GET":
                return Reply(200, {"status": "ok"})
            if parts == ["reset"] and method == "POST":
                self.reset()
                return Reply(200, {"status": "reset"})
            if parts == ["config"] and method == "POST":
                if "webhook_url" in data:
                    self.webhook_url = str(data["webhook_url"]).rstrip("/")
                return Reply(200, {"webhook_url": self.webhook_url})
            if not parts or parts[0] not in PROVIDERS:
                return Reply(404, {"error": f"use /_fake/{{{'|'.join(PROVIDERS)}}}/..."})
            provider, action = parts[0], parts[1:]
            if action == ["pay"] and method == "POST":
                return Reply(200, self._control_pay(provider, data))
            if action == ["transactions"] and method == "GET":
                day = date.fromisoformat((query.get("date") or [""])[-1] or _now().date().isoformat())
                return Reply(200, _REPORTS[provider](self, day))
            if action == ["misbehave"]:
                with self._lock:
                    if method == "POST":
                        self.misbehaviour[provider].update(data)
                    elif method == "DELETE":
                        self.misbehaviour[provider] = Misbehaviour()
                    elif method != "GET":
                        return Reply(405, {"error": "GET, POST or DELETE"})
                return Reply(200, asdict(self.misbehaving(provider)))
            if action == ["requests"] and method == "GET":
                with self._lock:
                    return Reply(200, {"requests": list(self.requests[provider])})
            if action == ["deliveries"] and method == "GET":
                with self._lock:
                    return Reply(200, {"deliveries": list(self.deliveries[provider])})
            if len(action) == 3 and action[0] == "payouts" and action[2] == "settle" and method == "POST":
                return Reply(
                    200, self.settle(provider, action[1], str(data.get("status", "success")), data.get("reason"))
                )
            return Reply(404, {"error": f"no control route {method} {path}"})
        except LookupError as exc:
            return Reply(404, {"error": str(exc)})
        except (ValueError, TypeError, ArithmeticError) as exc:  # ArithmeticError: a malformed Decimal
            return Reply(400, {"error": str(exc) or type(exc).__name__})

    def _control_pay(self, provider: str, data: Mapping[str, Any]) -> dict[str, Any]:
        currency = str(data.get("currency") or "")
        if currency not in CURRENCIES:
            raise ValueError(f"currency must be one of {sorted(CURRENCIES)}")
        if not isinstance(data.get("reference"), str) or not data["reference"]:
            raise ValueError("reference is required")
        if not isinstance(data.get("amount"), str):
            raise ValueError('amount is a string in major units, e.g. "5000.00"')
        amount = Decimal(data["amount"])
        to_minor(amount, currency)  # refuses more decimals than the currency has
        paid_at = datetime.fromisoformat(data["paid_at"].replace("Z", "+00:00")) if data.get("paid_at") else None
        return self.pay(
            provider,
            reference=data["reference"],
            amount=amount,
            currency=currency,
            status=str(data.get("status") or "success"),
            deliver=data.get("deliver", True) is not False,
            webhook_url=data.get("webhook_url"),
            paid_at=paid_at,
        )


def _default_webhook_url() -> str:
    from ledgerline.config import settings

    cfg = settings()
    return cfg.fake_gateway_webhook_url or f"http://127.0.0.1:{cfg.api_port}"


def _post(url: str, body: bytes, headers: Mapping[str, str]) -> int | None:
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:  # noqa: S310 - local API
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError as exc:
        logger.warning("fake gateway: webhook to %s not delivered: %s", url, exc)
        return None


def _error_body(provider: str, refusal: Refusal) -> dict[str, Any]:
    if provider == "paystack":
        kind = "api_error" if refusal.status >= 500 else "validation_error"
        return {"status": False, "message": refusal.message, "type": kind, "code": refusal.code}
    if provider == "stripe":
        kind = "api_error" if refusal.status >= 500 else "invalid_request_error"
        return {"error": {"type": kind, "code": refusal.code, "message": refusal.message, "param": None}}
    return {"status": "error", "message": refusal.message, "data": None}


class _HttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ledgerline-fake-gateway"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fake: FakeGateway = self.server.fake  # type: ignore[attr-defined]
        try:
            reply = fake.handle(self.command, self.path, dict(self.headers.items()), body)
        except Exception:
            logger.exception("fake gateway: %s %s failed", self.command, self.path)
            reply = Reply(500, {"error": "the fake gateway failed; see its log"})
        payload = json_bytes(reply.body)
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Request-Id", f"req_{secrets.token_hex(8)}")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        # The client may have given up (its timeout, under a "slow" misbehaviour).
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("fake gateway: " + format, *args)


# --------------------------------------------------------------------------- Paystack


def _paystack_ok(data: Any, message: str, meta: dict[str, Any] | None = None) -> Reply:
    body: dict[str, Any] = {"status": True, "message": message, "data": data}
    if meta is not None:
        body["meta"] = meta
    return Reply(200, body)


def paystack_transaction(
    payment: Payment, *, amount: Decimal | None = None, status: str | None = None
) -> dict[str, Any]:
    status = status or {"pending": "abandoned", "success": "success", "failed": "failed"}[payment.status]
    cur = payment.currency
    paid = _iso(payment.paid_at) if status == "success" else None
    created = _iso(payment.created_at)
    fees = to_minor(_fee("paystack", payment.amount, cur), cur) if status == "success" else None
    return {
        "id": int(payment.id),
        "domain": "test",
        "status": status,
        "reference": payment.reference,
        "amount": to_minor(payment.amount if amount is None else amount, cur),
        "requested_amount": to_minor(payment.requested, cur),
        "currency": cur,
        "channel": "card",
        "gateway_response": {"success": "Successful", "failed": "Declined"}.get(
            status, "The transaction was not completed"
        ),
        "message": None,
        "paid_at": paid,
        "paidAt": paid,
        "created_at": created,
        "createdAt": created,
        "transaction_date": created,
        "fees": fees,
        "fees_split": None,
        "metadata": "",
        "authorization": {"authorization_code": f"AUTH_{payment.access_code}", "last4": "4081", "channel": "card"},
        "customer": {"email": payment.email, "customer_code": f"CUS_{payment.access_code}"},
    }


def _paystack_initialize(fake: FakeGateway, req: Request) -> Reply:
    data = req.fields()
    if not data.get("email"):
        raise Refusal(400, "Email is required", "missing_params")
    currency = _currency(data.get("currency") or "NGN", PAYSTACK_CURRENCIES)
    amount = _minor_amount(data.get("amount"), currency)
    reference = str(data.get("reference") or secrets.token_hex(5))
    if not re.fullmatch(r"[A-Za-z0-9.=_-]+", reference):
        raise Refusal(400, "Invalid transaction reference", "invalid_reference")
    if fake.payment("paystack", reference):
        raise Refusal(400, "Duplicate Transaction Reference", "duplicate_reference")
    payment = fake.open_payment("paystack", reference, amount, currency, str(data["email"]))
    return _paystack_ok(
        {
            "authorization_url": f"https://checkout.paystack.com/{payment.access_code}",
            "access_code": payment.access_code,
            "reference": reference,
        },
        "Authorization URL created",
    )


def _verify_misbehaviour(
    fake: FakeGateway, provider: str, payment: Payment | None
) -> tuple[Decimal | None, str | None]:
    """(the amount to report instead, the status to report instead) under a misbehaving verify."""
    bad = fake.misbehaving(provider).verify
    if bad == "slow":
        fake.slow(provider)
    if bad == "fail":
        raise Refusal(500, "An error occurred", "api_error")
    if bad == "garbage":
        raise Garbage()
    if bad == "not_found" or payment is None:
        raise Refusal(404, "Transaction reference not found", "resource_missing")
    if bad == "wrong_amount":  # one minor unit short: the smallest underpayment
        return payment.amount - Decimal(1).scaleb(-minor_units(payment.currency)), None
    if bad == "pending":
        return None, "pending"
    return None, None


def _paystack_verify(fake: FakeGateway, req: Request) -> Reply:
    assert req.match is not None
    payment = fake.payment("paystack", req.match["reference"])
    amount, status = _verify_misbehaviour(fake, "paystack", payment)
    assert payment is not None
    return _paystack_ok(paystack_transaction(payment, amount=amount, status=status), "Verification successful")


def _range(req: Request) -> tuple[datetime, datetime]:
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


def _list_misbehaviour(fake: FakeGateway, provider: str) -> None:
    bad = fake.misbehaving(provider).list
    if bad == "slow":
        fake.slow(provider)
    if bad == "fail":
        raise Refusal(500, "An error occurred", "api_error")


def _paystack_list(fake: FakeGateway, req: Request) -> Reply:
    _list_misbehaviour(fake, "paystack")
    start, end = _range(req)
    rows = fake.day_payments("paystack", start, end)
    if req.q("status"):
        rows = [p for p in rows if paystack_transaction(p)["status"] == req.q("status")]
    per_page = max(1, min(int(req.q("perPage") or req.q("per_page") or PAYSTACK_PAGE_SIZE), 1000))
    page = max(1, int(req.q("page") or 1))
    chunk = rows[(page - 1) * per_page : page * per_page]
    meta = {
        "total": len(rows),
        "total_volume": sum(to_minor(p.amount, p.currency) for p in rows if p.status == "success"),
        "skipped": (page - 1) * per_page,
        "perPage": per_page,
        "page": page,
        "pageCount": (len(rows) + per_page - 1) // per_page,
    }
    return _paystack_ok([paystack_transaction(p) for p in chunk], "Transactions retrieved", meta)


def _paystack_resolve(fake: FakeGateway, req: Request) -> Reply:
    bank_code, number = _check_account(req.q("bank_code"), req.q("account_number"))
    return _paystack_ok(
        {"account_number": number, "account_name": account_name(bank_code, number), "bank_id": int(bank_code)},
        "Account number resolved",
    )


def _paystack_recipient(fake: FakeGateway, req: Request) -> Reply:
    data = req.fields()
    missing = [k for k in ("type", "name", "account_number", "bank_code") if not data.get(k)]
    if missing:
        raise Refusal(400, f"{', '.join(missing)} is required", "missing_params")
    bank_code, number = _check_account(str(data["bank_code"]), str(data["account_number"]))
    code = "RCP_" + hashlib.sha256(f"{bank_code}:{number}".encode()).hexdigest()[:15]
    with fake._lock:
        recipient = fake.recipients.setdefault(
            code,
            {
                "recipient_code": code,
                "id": fake.next_id(),
                "type": data["type"],
                "name": data["name"],
                "currency": _currency(data.get("currency") or "NGN", PAYSTACK_CURRENCIES),
                "active": True,
                "is_deleted": False,
                "details": {
                    "account_number": number,
                    "account_name": account_name(bank_code, number),
                    "bank_code": bank_code,
                    "bank_name": f"TEST BANK {bank_code}",
                },
            },
        )
    return Reply(201, {"status": True, "message": "Transfer recipient created successfully", "data": recipient})


def paystack_transfer(transfer: Transfer, recipient: Mapping[str, Any] | None = None) -> dict[str, Any]:
    at = _iso(transfer.created_at)
    cur = transfer.currency
    return {
        "id": transfer.numeric_id,
        "transfer_code": transfer.id,
        "reference": transfer.reference,
        "amount": to_minor(transfer.amount, cur),
        "currency": cur,
        "source": "balance",
        "reason": transfer.narration,
        "status": transfer.status,
        "failures": transfer.reason if transfer.status == "failed" else None,
        "transferred_at": _iso(_now()) if transfer.status == "success" else None,
        "recipient": recipient
        or {
            "recipient_code": "RCP_"
            + hashlib.sha256(f"{transfer.bank_code}:{transfer.account_number}".encode()).hexdigest()[:15],
            "type": "nuban",
            "name": transfer.account_name,
            "details": {
                "account_number": transfer.account_number,
                "account_name": transfer.account_name,
                "bank_code": transfer.bank_code,
            },
        },
        "domain": "test",
        "createdAt": at,
        "updatedAt": _iso(_now()),
        "created_at": at,
        "updated_at": _iso(_now()),
    }


def _paystack_transfer(fake: FakeGateway, req: Request) -> Reply:
    data = req.fields()
    currency = _currency(data.get("currency") or "NGN", PAYSTACK_CURRENCIES)
    amount = _minor_amount(data.get("amount"), currency)
    with fake._lock:
        recipient = fake.recipients.get(str(data.get("recipient")))
    if recipient is None:
        raise Refusal(400, "Recipient specified is invalid", "invalid_transfer_recipient")
    reference = str(data.get("reference") or "")
    if not re.fullmatch(r"[a-z0-9_-]{1,100}", reference):
        raise Refusal(400, "Invalid transfer reference: use lowercase letters, digits, - and _", "invalid_reference")
    details = recipient["details"]
    transfer = fake.create_transfer(
        "paystack",
        reference=reference,
        amount=amount,
        currency=currency,
        bank_code=details["bank_code"],
        account_number=details["account_number"],
        account_name=details["account_name"],
        narration=str(data.get("reason") or ""),
    )
    body = paystack_transfer(transfer)
    body["recipient"] = recipient["id"]
    return _paystack_ok(body, "Transfer has been queued")


def _paystack_transfer_verify(fake: FakeGateway, req: Request) -> Reply:
    assert req.match is not None
    with fake._lock:
        transfer = fake.transfers.get(("paystack", req.match["reference"]))
    if transfer is None:
        raise Refusal(404, "Transfer not found", "resource_missing")
    return _paystack_ok(paystack_transfer(transfer), "Transfer retrieved")


def _paystack_charge_event(fake: FakeGateway, payment: Payment) -> dict[str, Any] | None:
    if payment.status != "success":
        return None  # Paystack sends no webhook for a failed charge
    return {"event": "charge.success", "data": paystack_transaction(payment)}


def _paystack_transfer_event(fake: FakeGateway, transfer: Transfer) -> dict[str, Any]:
    return {"event": f"transfer.{transfer.status}", "data": paystack_transfer(transfer)}


def _paystack_report(fake: FakeGateway, day: date) -> dict[str, Any]:
    start = datetime.combine(day, datetime.min.time(), UTC)
    rows = fake.day_payments("paystack", start, start + timedelta(days=1))
    meta = {"total": len(rows), "skipped": 0, "perPage": len(rows), "page": 1, "pageCount": 1}
    return {
        "status": True,
        "message": "Transactions retrieved",
        "data": [paystack_transaction(p) for p in rows],
        "meta": meta,
    }


# --------------------------------------------------------------------------- Stripe


def stripe_intent(
    payment: Payment, *, expand: bool = False, amount: Decimal | None = None, status: str | None = None
) -> dict[str, Any]:
    cur = payment.currency
    state = status or payment.status
    paid = to_minor(payment.amount if amount is None else amount, cur)
    charge: Any = None
    if payment.status in ("success", "failed") and payment.charge_id:
        fee = to_minor(_fee("stripe", payment.amount, cur), cur) if payment.status == "success" else 0
        balance: Any = f"txn_{payment.charge_id[3:]}"
        if expand:
            balance = {
                "id": balance,
                "object": "balance_transaction",
                "amount": paid,
                "fee": fee,
                "net": paid - fee,
                "currency": cur.lower(),
                "type": "charge",
                "fee_details": [{"amount": fee, "currency": cur.lower(), "type": "stripe_fee"}],
            }
        charge = {
            "id": payment.charge_id,
            "object": "charge",
            "amount": paid,
            "currency": cur.lower(),
            "created": _epoch(payment.paid_at or payment.created_at),
            "status": "succeeded" if payment.status == "success" else "failed",
            "refunded": False,
            "balance_transaction": balance if payment.status == "success" else None,
        }
        if not expand:
            charge = payment.charge_id
    declined = state == "failed"
    return {
        "id": payment.id,
        "object": "payment_intent",
        "amount": to_minor(payment.requested, cur),
        "amount_received": paid if state == "success" else 0,
        "amount_capturable": 0,
        "currency": cur.lower(),
        "status": {"success": "succeeded", "failed": "requires_payment_method", "pending": "requires_payment_method"}[
            state
        ],
        "client_secret": payment.client_secret,
        "capture_method": "automatic",
        "confirmation_method": "automatic",
        "created": _epoch(payment.created_at),
        "livemode": False,
        "latest_charge": charge,
        "last_payment_error": {"type": "card_error", "code": "card_declined", "message": "Your card was declined."}
        if declined
        else None,
        "metadata": {"reference": payment.reference},
        "receipt_email": payment.email,
        "payment_method_types": ["card"],
    }


def _stripe_idempotent(fake: FakeGateway, req: Request, action: Callable[[], Reply]) -> Reply:
    """Stripe stores the first answer per Idempotency-Key (and replays it), refusing the key
    with other parameters."""
    key = signatures.header(req.headers, "Idempotency-Key")
    if not key:
        return action()
    fingerprint = hashlib.sha256(req.path.encode() + b"\n" + req.body).hexdigest()
    with fake._lock:
        seen = fake.idempotent.get(("stripe", key))
    if seen:
        if seen[0] != fingerprint:
            raise Refusal(
                400,
                "Keys for idempotent requests can only be used with the same parameters they were first used with.",
                "idempotency_error",
            )
        return Reply(seen[1].status, seen[1].body, {**seen[1].headers, "Idempotent-Replayed": "true"})
    reply = action()
    if reply.status < 500:
        with fake._lock:
            fake.idempotent[("stripe", key)] = (fingerprint, reply)
    return reply


def _stripe_create_intent(fake: FakeGateway, req: Request) -> Reply:
    data = req.fields()

    def create() -> Reply:
        currency = str(data.get("currency") or "")
        if currency != currency.lower() or not currency:
            raise Refusal(400, "Invalid currency: use a lowercase ISO code", "parameter_invalid")
        code = _currency(currency)
        amount = _minor_amount(data.get("amount"), code)
        reference = data.get("metadata[reference]") or f"pi-{secrets.token_hex(6)}"
        existing = fake.payment("stripe", reference)
        payment = existing or fake.open_payment("stripe", reference, amount, code, str(data.get("receipt_email") or ""))
        return Reply(200, stripe_intent(payment))

    return _stripe_idempotent(fake, req, create)


def _stripe_checkout(fake: FakeGateway, req: Request) -> Reply:
    data = req.fields()

    def create() -> Reply:
        code = _currency(str(data.get("line_items[0][price_data][currency]") or "").upper())
        units = _minor_amount(data.get("line_items[0][price_data][unit_amount]"), code)
        quantity = int(data.get("line_items[0][quantity]") or 1)
        reference = str(data.get("client_reference_id") or f"cs-{secrets.token_hex(6)}")
        payment = fake.payment("stripe", reference) or fake.open_payment(
            "stripe", reference, units * quantity, code, str(data.get("customer_email") or "")
        )
        session = f"cs_test_{secrets.token_hex(12)}"
        return Reply(
            200,
            {
                "id": session,
                "object": "checkout.session",
                "url": f"https://checkout.stripe.com/c/pay/{session}",
                "status": "open",
                "payment_status": "unpaid",
                "amount_total": to_minor(payment.requested, code),
                "currency": code.lower(),
                "client_reference_id": reference,
                "payment_intent": payment.id,
                "metadata": {"reference": reference},
            },
        )

    return _stripe_idempotent(fake, req, create)


def _stripe_verify_intent(fake: FakeGateway, req: Request) -> Reply:
    assert req.match is not None
    payment = fake.payment_by_id("stripe", req.match["id"])
    try:
        amount, status = _verify_misbehaviour(fake, "stripe", payment)
    except Refusal as refusal:
        if refusal.status == 404:
            raise Refusal(404, f"No such payment_intent: '{req.match['id']}'", "resource_missing") from None
        raise
    assert payment is not None
    expand = "latest_charge.balance_transaction" in req.query.get("expand[]", [])
    return Reply(200, stripe_intent(payment, expand=expand, amount=amount, status=status))


def _stripe_search_intents(fake: FakeGateway, req: Request) -> Reply:
    m = re.fullmatch(r"metadata\['reference'\]:'((?:[^'\\]|\\.)*)'", req.q("query") or "")
    if not m:
        raise Refusal(400, "This fake answers only metadata['reference']:'...' queries", "parameter_invalid")
    reference = re.sub(r"\\(.)", r"\1", m.group(1))
    payment = fake.payment("stripe", reference)
    found: list[dict[str, Any]] = []
    if payment is not None:
        try:
            amount, status = _verify_misbehaviour(fake, "stripe", payment)
            expand = "data.latest_charge.balance_transaction" in req.query.get("expand[]", [])
            found = [stripe_intent(payment, expand=expand, amount=amount, status=status)]
        except Refusal as refusal:
            if refusal.status != 404:
                raise
    return Reply(
        200, {"object": "search_result", "url": "/v1/payment_intents/search", "has_more": False, "data": found}
    )


def _stripe_list_intents(fake: FakeGateway, req: Request) -> Reply:
    _list_misbehaviour(fake, "stripe")

    def bound(name: str, default: int) -> int:
        value = req.q(f"created[{name}]")
        return int(value) if value else default

    # Unix seconds; the bounds as a half-open range [start, end).
    start = bound("gte", bound("gt", -1) + 1)
    end = bound("lt", bound("lte", 253402300798) + 1)
    rows = fake.day_payments("stripe", datetime.fromtimestamp(max(start, 0), UTC), datetime.fromtimestamp(end, UTC))
    after = req.q("starting_after")
    if after:
        ids = [p.id for p in rows]
        if after not in ids:
            raise Refusal(400, f"No such payment_intent: '{after}'", "resource_missing")
        rows = rows[ids.index(after) + 1 :]
    limit = max(1, min(int(req.q("limit") or 10), 100))
    expand = "data.latest_charge.balance_transaction" in req.query.get("expand[]", [])
    return Reply(
        200,
        {
            "object": "list",
            "url": "/v1/payment_intents",
            "has_more": len(rows) > limit,
            "data": [stripe_intent(p, expand=expand) for p in rows[:limit]],
        },
    )


def stripe_payout(transfer: Transfer) -> dict[str, Any]:
    return {
        "id": transfer.id,
        "object": "payout",
        "amount": to_minor(transfer.amount, transfer.currency),
        "currency": transfer.currency.lower(),
        "arrival_date": _epoch(transfer.created_at + timedelta(days=1)),
        "created": _epoch(transfer.created_at),
        "description": transfer.narration,
        "method": "standard",
        "status": {"pending": "pending", "success": "paid", "failed": "failed"}[transfer.status],
        "failure_code": "account_closed" if transfer.status == "failed" else None,
        "failure_message": transfer.reason if transfer.status == "failed" else None,
        "metadata": {
            "reference": transfer.reference,
            "bank_code": transfer.bank_code,
            "account_number": transfer.account_number,
            "account_name": transfer.account_name,
        },
        "livemode": False,
    }


def _stripe_create_payout(fake: FakeGateway, req: Request) -> Reply:
    data = req.fields()

    def create() -> Reply:
        currency = str(data.get("currency") or "")
        if currency != currency.lower() or not currency:
            raise Refusal(400, "Invalid currency: use a lowercase ISO code", "parameter_invalid")
        code = _currency(currency)
        amount = _minor_amount(data.get("amount"), code)
        reference = data.get("metadata[reference]") or f"po-{secrets.token_hex(6)}"
        transfer = fake.create_transfer(
            "stripe",
            reference=reference,
            amount=amount,
            currency=code,
            bank_code=str(data.get("metadata[bank_code]") or ""),
            account_number=str(data.get("metadata[account_number]") or ""),
            account_name=str(data.get("metadata[account_name]") or ""),
            narration=str(data.get("description") or ""),
        )
        return Reply(200, stripe_payout(transfer))

    return _stripe_idempotent(fake, req, create)


def _stripe_get_payout(fake: FakeGateway, req: Request) -> Reply:
    assert req.match is not None
    with fake._lock:
        transfer = next((t for (p, _), t in fake.transfers.items() if p == "stripe" and t.id == req.match["id"]), None)
    if transfer is None:
        raise Refusal(404, f"No such payout: '{req.match['id']}'", "resource_missing")
    return Reply(200, stripe_payout(transfer))


def _stripe_event(type_: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"evt_{secrets.token_hex(12)}",
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "type": type_,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": f"req_{secrets.token_hex(7)}", "idempotency_key": None},
        "data": {"object": obj},
    }


def _stripe_charge_event(fake: FakeGateway, payment: Payment) -> dict[str, Any]:
    type_ = "payment_intent.succeeded" if payment.status == "success" else "payment_intent.payment_failed"
    return _stripe_event(type_, stripe_intent(payment))


def _stripe_payout_event(fake: FakeGateway, transfer: Transfer) -> dict[str, Any]:
    return _stripe_event("payout.paid" if transfer.status == "success" else "payout.failed", stripe_payout(transfer))


def _stripe_report(fake: FakeGateway, day: date) -> dict[str, Any]:
    start = datetime.combine(day, datetime.min.time(), UTC)
    rows = fake.day_payments("stripe", start, start + timedelta(days=1))
    return {
        "object": "list",
        "url": "/v1/payment_intents",
        "has_more": False,
        "data": [stripe_intent(p, expand=True) for p in rows],
    }


# --------------------------------------------------------------------------- Flutterwave


def _flw_ok(data: Any, message: str, meta: dict[str, Any] | None = None) -> Reply:
    body: dict[str, Any] = {"status": "success", "message": message, "data": data}
    if meta is not None:
        body["meta"] = meta
    return Reply(200, body)


def flutterwave_transaction(
    payment: Payment, *, amount: Decimal | None = None, status: str | None = None
) -> dict[str, Any]:
    state = status or payment.status
    paid = payment.amount if amount is None else amount
    fee = _fee("flutterwave", paid, payment.currency) if state == "success" else Decimal(0)
    return {
        "id": int(payment.id),
        "tx_ref": payment.reference,
        "flw_ref": f"FLW-MOCK-{payment.access_code}",
        "amount": paid,
        "charged_amount": paid,
        "app_fee": fee,
        "merchant_fee": 0,
        "amount_settled": paid - fee,
        "currency": payment.currency,
        "status": {"success": "successful", "failed": "failed", "pending": "pending"}[state],
        "processor_response": {"success": "Approved by Financial Institution", "failed": "Declined"}.get(
            state, "Pending"
        ),
        "payment_type": "card",
        "created_at": _iso(payment.paid_at or payment.created_at),
        "customer": {"email": payment.email, "name": "Test Customer"},
    }


def _flw_pay(fake: FakeGateway, req: Request) -> Reply:
    data = req.fields()
    reference = data.get("tx_ref")
    if not isinstance(reference, str) or not reference:
        raise Refusal(400, "tx_ref is required")
    customer = data.get("customer")
    if not isinstance(customer, dict) or not customer.get("email"):
        raise Refusal(400, "customer.email is required")
    currency = _currency(data.get("currency") or "NGN")
    amount = _amount(data.get("amount"))
    try:
        to_minor(amount, currency)
    except ValueError:
        raise Refusal(400, f"amount has more decimals than {currency} allows") from None
    payment = fake.payment("flutterwave", reference)
    if payment is not None and (payment.requested != amount or payment.currency != currency):
        raise Refusal(400, "A transaction with this tx_ref already exists")  # the same tx_ref, other terms
    payment = payment or fake.open_payment("flutterwave", reference, amount, currency, str(customer["email"]))
    return _flw_ok(
        {"link": f"https://checkout.flutterwave.com/v3/hosted/pay/flwlnk-{payment.access_code}"}, "Hosted Link"
    )


def _flw_verify(fake: FakeGateway, payment: Payment | None) -> Reply:
    try:
        amount, status = _verify_misbehaviour(fake, "flutterwave", payment)
    except Refusal as refusal:
        if refusal.status == 404:
            raise Refusal(404, "No transaction was found for this id") from None
        raise
    assert payment is not None
    return _flw_ok(flutterwave_transaction(payment, amount=amount, status=status), "Transaction fetched successfully")


def _flw_verify_by_reference(fake: FakeGateway, req: Request) -> Reply:
    return _flw_verify(fake, fake.payment("flutterwave", req.q("tx_ref") or ""))


def _flw_verify_by_id(fake: FakeGateway, req: Request) -> Reply:
    assert req.match is not None
    return _flw_verify(fake, fake.payment_by_id("flutterwave", req.match["id"]))


def _flw_list(fake: FakeGateway, req: Request) -> Reply:
    _list_misbehaviour(fake, "flutterwave")
    start, end = _range(req)
    rows = fake.day_payments("flutterwave", start, end)
    page = max(1, int(req.q("page") or 1))
    chunk = rows[(page - 1) * FLUTTERWAVE_PAGE_SIZE : page * FLUTTERWAVE_PAGE_SIZE]
    pages = (len(rows) + FLUTTERWAVE_PAGE_SIZE - 1) // FLUTTERWAVE_PAGE_SIZE
    meta = {"page_info": {"total": len(rows), "current_page": page, "total_pages": pages}}
    return _flw_ok([flutterwave_transaction(p) for p in chunk], "Transactions fetched", meta)


def flutterwave_transfer(transfer: Transfer) -> dict[str, Any]:
    status = {"pending": "NEW", "success": "SUCCESSFUL", "failed": "FAILED"}[transfer.status]
    return {
        "id": transfer.numeric_id,
        "account_number": transfer.account_number,
        "bank_code": transfer.bank_code,
        "full_name": transfer.account_name,
        "fullname": transfer.account_name,
        "created_at": _iso(transfer.created_at),
        "currency": transfer.currency,
        "debit_currency": transfer.currency,
        "amount": transfer.amount,
        "fee": Decimal("26.875"),
        "status": status,
        "reference": transfer.reference,
        "meta": None,
        "narration": transfer.narration,
        "complete_message": {"SUCCESSFUL": "Successful", "FAILED": transfer.reason or "Failed"}.get(status, ""),
        "requires_approval": 0,
        "is_approved": 1,
        "bank_name": f"TEST BANK {transfer.bank_code}",
    }


def _flw_transfer(fake: FakeGateway, req: Request) -> Reply:
    data = req.fields()
    missing = [k for k in ("account_bank", "account_number", "amount", "currency", "reference") if not data.get(k)]
    if missing:
        raise Refusal(400, f"{', '.join(missing)} is required")
    if data["account_number"] == FLUTTERWAVE_BLACKLISTED_ACCOUNT:
        raise Refusal(400, "Payout was made to a blacklisted account number")
    bank_code, number = _check_account(str(data["account_bank"]), str(data["account_number"]))
    currency = _currency(data["currency"])
    amount = _amount(data["amount"])
    transfer = fake.create_transfer(
        "flutterwave",
        reference=str(data["reference"]),
        amount=amount,
        currency=currency,
        bank_code=bank_code,
        account_number=number,
        account_name=str(data.get("beneficiary_name") or account_name(bank_code, number)),
        narration=str(data.get("narration") or ""),
    )
    return _flw_ok(flutterwave_transfer(transfer), "Transfer Queued Successfully")


def _flw_get_transfer(fake: FakeGateway, req: Request) -> Reply:
    assert req.match is not None
    with fake._lock:
        transfer = next(
            (t for (p, _), t in fake.transfers.items() if p == "flutterwave" and str(t.numeric_id) == req.match["id"]),
            None,
        )
    if transfer is None:
        raise Refusal(404, "Transfer not found")
    return _flw_ok(flutterwave_transfer(transfer), "Transfer fetched")


def _flw_resolve(fake: FakeGateway, req: Request) -> Reply:
    data = req.fields()
    bank_code, number = _check_account(data.get("account_bank"), data.get("account_number"))
    return _flw_ok(
        {"account_number": number, "account_name": account_name(bank_code, number)}, "Account details fetched"
    )


def _flw_charge_event(fake: FakeGateway, payment: Payment) -> dict[str, Any]:
    return {"event": "charge.completed", "data": flutterwave_transaction(payment)}


def _flw_transfer_event(fake: FakeGateway, transfer: Transfer) -> dict[str, Any]:
    return {"event": "transfer.completed", "event.type": "Transfer", "data": flutterwave_transfer(transfer)}


def _flw_report(fake: FakeGateway, day: date) -> dict[str, Any]:
    start = datetime.combine(day, datetime.min.time(), UTC)
    rows = fake.day_payments("flutterwave", start, start + timedelta(days=1))
    meta = {"page_info": {"total": len(rows), "current_page": 1, "total_pages": 1}}
    return {
        "status": "success",
        "message": "Transactions fetched",
        "meta": meta,
        "data": [flutterwave_transaction(p) for p in rows],
    }


# --------------------------------------------------------------------------- tables

_REF = r"(?P<reference>[^/]+)"
_ID = r"(?P<id>[^/]+)"

_ROUTES: dict[str, list[tuple[str, re.Pattern[str], Handler]]] = {
    "paystack": [
        ("POST", re.compile(r"/transaction/initialize"), _paystack_initialize),
        ("GET", re.compile(rf"/transaction/verify/{_REF}"), _paystack_verify),
        ("GET", re.compile(r"/transaction"), _paystack_list),
        ("GET", re.compile(r"/bank/resolve"), _paystack_resolve),
        ("POST", re.compile(r"/transferrecipient"), _paystack_recipient),
        ("POST", re.compile(r"/transfer"), _paystack_transfer),
        ("GET", re.compile(rf"/transfer/verify/{_REF}"), _paystack_transfer_verify),
    ],
    "stripe": [
        ("POST", re.compile(r"/v1/payment_intents"), _stripe_create_intent),
        ("GET", re.compile(r"/v1/payment_intents/search"), _stripe_search_intents),
        ("GET", re.compile(rf"/v1/payment_intents/{_ID}"), _stripe_verify_intent),
        ("GET", re.compile(r"/v1/payment_intents"), _stripe_list_intents),
        ("POST", re.compile(r"/v1/checkout/sessions"), _stripe_checkout),
        ("POST", re.compile(r"/v1/payouts"), _stripe_create_payout),
        ("GET", re.compile(rf"/v1/payouts/{_ID}"), _stripe_get_payout),
    ],
    "flutterwave": [
        ("POST", re.compile(r"/v3/payments"), _flw_pay),
        ("GET", re.compile(r"/v3/transactions/verify_by_reference"), _flw_verify_by_reference),
        ("GET", re.compile(rf"/v3/transactions/{_ID}/verify"), _flw_verify_by_id),
        ("GET", re.compile(r"/v3/transactions"), _flw_list),
        ("POST", re.compile(r"/v3/transfers"), _flw_transfer),
        ("GET", re.compile(rf"/v3/transfers/{_ID}"), _flw_get_transfer),
        ("POST", re.compile(r"/v3/accounts/resolve"), _flw_resolve),
    ],
}

_PAYMENT_EVENTS: dict[str, Callable[[FakeGateway, Payment], dict[str, Any] | None]] = {
    "paystack": _paystack_charge_event,
    "stripe": _stripe_charge_event,
    "flutterwave": _flw_charge_event,
}
_PAYOUT_EVENTS: dict[str, Callable[[FakeGateway, Transfer], dict[str, Any]]] = {
    "paystack": _paystack_transfer_event,
    "stripe": _stripe_payout_event,
    "flutterwave": _flw_transfer_event,
}
_REPORTS: dict[str, Callable[[FakeGateway, date], dict[str, Any]]] = {
    "paystack": _paystack_report,
    "stripe": _stripe_report,
    "flutterwave": _flw_report,
}
