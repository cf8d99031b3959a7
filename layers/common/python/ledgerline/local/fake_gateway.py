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
import hmac
import json
import logging
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import date, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ledgerline.gateways import signatures
from ledgerline.gateways.base import PROVIDERS
from ledgerline.gateways.http import json_bytes
from ledgerline.local.fake_wire import flutterwave, paystack, report, stripe
from ledgerline.local.fake_wire.common import (
    DEFAULT_HOST,
    Garbage,
    Misbehaviour,
    Payment,
    Refusal,
    Reply,
    Request,
    Transfer,
    Wire,
    account_name,
    error_body,
    utcnow,
)
from ledgerline.money import CURRENCIES, to_minor

logger = logging.getLogger("ledgerline.fake_gateway")

WEBHOOK_TIMEOUT_SECONDS = 30.0
WIRES: dict[str, Wire] = {"paystack": paystack.WIRE, "stripe": stripe.WIRE, "flutterwave": flutterwave.WIRE}

# Re-exported: tests drive the fake in process with these.
__all__ = ["FakeGateway", "Misbehaviour", "Payment", "Transfer", "account_name"]


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
            # Days whose list routes serve a generated report (reconciliation tests, bench).
            self.reports: dict[tuple[str, date], report.SeededReport] = {}

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
            seeded = report.serve(self.reports, request)
            if seeded is not None:
                return seeded
            for route_method, pattern, handler in WIRES[provider].routes:
                m = pattern.fullmatch(request.path)
                if m and route_method == method:
                    request.match = m
                    return handler(self, request)
            raise Refusal(404, f"Unrecognized request URL ({method}: {request.path})", "resource_missing")
        except Refusal as refusal:
            return Reply(refusal.status, error_body(provider, refusal))
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
                return Reply(503, error_body(provider, Refusal(503, "Service unavailable", "api_error")))
            if bad.rate_limited:
                bad.rate_limited -= 1
                return Reply(
                    429,
                    error_body(provider, Refusal(429, "Too many requests", "rate_limit")),
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

    def open_payment(
        self, provider: str, reference: str, amount: Decimal, currency: str, email: str
    ) -> tuple[Payment, bool]:
        """(the payment with this reference, whether this call opened it): one payment per
        reference, even when calls race."""
        with self._lock:
            existing = self.payments.get((provider, reference))
            if existing is not None:
                return existing, False
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
                created_at=utcnow(),
                access_code=token,
            )
            if provider == "stripe":
                payment.client_secret = f"{payment.id}_secret_{secrets.token_hex(8)}"
            self.payments[(provider, reference)] = payment
            return payment, True

    def seed_report(self, seeded: report.SeededReport) -> None:
        """Serve ``seeded`` as its provider's list of its day (generated page by page)."""
        with self._lock:
            self.reports[(seeded.provider, seeded.day)] = seeded

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
        """Send ``event`` signed to the API (1 + duplicates times, each retried while it is
        not answered 2xx, if told); the delivery's record: ``deliveries`` every attempt's
        status in order, ``delivered_status`` the first delivery's last."""
        bad = self.misbehaving(provider)
        body = json_bytes(event)
        headers = self.sign(provider, body)
        target = f"{(url or self.webhook_url).rstrip('/')}/v1/webhooks/{provider}"
        statuses: list[int | None] = []
        first: int | None = None
        for copy in range(1 + bad.duplicates):
            status = _post(target, body, headers)
            for _ in range(bad.webhook_retries):
                if status is not None and 200 <= status < 300:
                    break
                statuses.append(status)
                time.sleep(float(bad.webhook_retry_seconds))
                status = _post(target, body, headers)
            statuses.append(status)
            if copy == 0:
                first = status
        record = {
            "type": event.get("event") or event.get("type"),
            "delivered_status": first,
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
        payment, _ = self.open_payment(provider, reference, amount, currency, "customer@example.test")
        with self._lock:
            if payment.currency != currency:
                raise ValueError(f"{reference} was opened in {payment.currency}, not {currency}")
            payment.amount = amount
            payment.status = status
            payment.paid_at = paid_at or utcnow()
            if paid_at is not None and payment.created_at > paid_at:
                payment.created_at = paid_at
            payment.charge_id = payment.charge_id or f"ch_{secrets.token_hex(10)}"
        event = WIRES[provider].payment_event(self, payment)
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
        """A payout, idempotent on its reference (one transfer and one outcome per reference,
        even when calls race); its outcome's webhook follows."""
        bad = self.misbehaving(provider)
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
            created_at=utcnow(),
            numeric_id=number,
        )
        with self._lock:
            existing = self.transfers.get((provider, reference))
            if existing is not None and bad.duplicate_reference:
                raise Refusal(400, "Duplicate Transaction Reference", "duplicate_reference")
            if existing is not None:
                return existing
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
        record = self.deliver(provider, WIRES[provider].payout_event(self, transfer))
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
                day = date.fromisoformat((query.get("date") or [""])[-1] or utcnow().date().isoformat())
                return Reply(200, WIRES[provider].report(self, day))
            if action == ["reports"] and method == "POST":
                seeded = report.SeededReport(
                    provider,
                    date.fromisoformat(str(data["date"])),
                    int(data.get("n", 1000)),
                    int(data.get("per_kind", 3)),
                    int(data.get("seed", 1)),
                )
                self.seed_report(seeded)
                return Reply(200, {"date": seeded.day.isoformat(), "n": seeded.n, "planted": seeded.planted()})
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


class _HttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ledgerline-fake-gateway"
    # Headers and body in one segment, sent at once: else a kept-alive connection waits on
    # Nagle and delayed ACKs (~40 ms a call).
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

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
            self.wfile.flush()

    do_GET = do_POST = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("fake gateway: " + format, *args)
