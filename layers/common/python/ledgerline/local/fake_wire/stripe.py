"""The fake's Stripe (GATEWAYS.md §2): form bodies, cents, lower-case currencies, bare objects and
lists, ``Idempotency-Key`` replays, Event webhooks."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ledgerline.gateways import signatures
from ledgerline.local.fake_wire.common import (
    Payment,
    Refusal,
    Reply,
    Request,
    Transfer,
    Wire,
    currency_code,
    epoch,
    fee_of,
    list_misbehaviour,
    minor_amount,
    payments_on,
    transfer_where,
    verify_misbehaviour,
)
from ledgerline.money import to_minor

if TYPE_CHECKING:
    from ledgerline.local.fake_gateway import FakeGateway

_ID = r"(?P<id>[^/]+)"


def stripe_intent(
    payment: Payment, *, expand: bool = False, amount: Decimal | None = None, status: str | None = None
) -> dict[str, Any]:
    cur = payment.currency
    state = status or payment.status
    paid = to_minor(payment.amount if amount is None else amount, cur)
    charge: Any = None
    if payment.status in ("success", "failed") and payment.charge_id:
        fee = to_minor(fee_of("stripe", payment.amount, cur), cur) if payment.status == "success" else 0
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
            "created": epoch(payment.paid_at or payment.created_at),
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
        "created": epoch(payment.created_at),
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


def _money(data: dict[str, Any]) -> tuple[Decimal, str]:
    """(the amount in major units, the upper-case currency) of a create call's form: Stripe
    takes cents and a lower-case currency only."""
    currency = str(data.get("currency") or "")
    if currency != currency.lower() or not currency:
        raise Refusal(400, "Invalid currency: use a lowercase ISO code", "parameter_invalid")
    code = currency_code(currency)
    return minor_amount(data.get("amount"), code), code


def _stripe_create_intent(fake: FakeGateway, req: Request) -> Reply:
    data = req.fields()

    def create() -> Reply:
        amount, code = _money(data)
        reference = data.get("metadata[reference]") or f"pi-{secrets.token_hex(6)}"
        payment, _ = fake.open_payment("stripe", reference, amount, code, str(data.get("receipt_email") or ""))
        return Reply(200, stripe_intent(payment))

    return _stripe_idempotent(fake, req, create)


def _stripe_checkout(fake: FakeGateway, req: Request) -> Reply:
    data = req.fields()

    def create() -> Reply:
        code = currency_code(str(data.get("line_items[0][price_data][currency]") or "").upper())
        units = minor_amount(data.get("line_items[0][price_data][unit_amount]"), code)
        quantity = int(data.get("line_items[0][quantity]") or 1)
        reference = str(data.get("client_reference_id") or f"cs-{secrets.token_hex(6)}")
        payment, _ = fake.open_payment(
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
    missing = Refusal(404, f"No such payment_intent: '{req.match['id']}'", "resource_missing")
    amount, status = verify_misbehaviour(fake, "stripe", payment, not_found=missing)
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
            amount, status = verify_misbehaviour(fake, "stripe", payment)
            expand = "data.latest_charge.balance_transaction" in req.query.get("expand[]", [])
            found = [stripe_intent(payment, expand=expand, amount=amount, status=status)]
        except Refusal as refusal:
            if refusal.status != 404:
                raise
    return Reply(
        200, {"object": "search_result", "url": "/v1/payment_intents/search", "has_more": False, "data": found}
    )


def _stripe_list_intents(fake: FakeGateway, req: Request) -> Reply:
    list_misbehaviour(fake, "stripe")

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
        "arrival_date": epoch(transfer.created_at + timedelta(days=1)),
        "created": epoch(transfer.created_at),
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
        amount, code = _money(data)
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
    wanted = req.match["id"]
    missing = Refusal(404, f"No such payout: '{wanted}'", "resource_missing")
    return Reply(200, stripe_payout(transfer_where(fake, "stripe", lambda t: t.id == wanted, missing)))


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
    rows = payments_on(fake, "stripe", day)
    return {
        "object": "list",
        "url": "/v1/payment_intents",
        "has_more": False,
        "data": [stripe_intent(p, expand=True) for p in rows],
    }


WIRE = Wire(
    routes=[
        ("POST", re.compile(r"/v1/payment_intents"), _stripe_create_intent),
        ("GET", re.compile(r"/v1/payment_intents/search"), _stripe_search_intents),
        ("GET", re.compile(rf"/v1/payment_intents/{_ID}"), _stripe_verify_intent),
        ("GET", re.compile(r"/v1/payment_intents"), _stripe_list_intents),
        ("POST", re.compile(r"/v1/checkout/sessions"), _stripe_checkout),
        ("POST", re.compile(r"/v1/payouts"), _stripe_create_payout),
        ("GET", re.compile(rf"/v1/payouts/{_ID}"), _stripe_get_payout),
    ],
    payment_event=_stripe_charge_event,
    payout_event=_stripe_payout_event,
    report=_stripe_report,
)
