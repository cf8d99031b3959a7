"""The fake's Paystack (GATEWAYS.md §1): JSON or form bodies, kobo, ``{status, message, data, meta}``."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ledgerline.local.fake_wire.common import (
    PAYSTACK_CURRENCIES,
    PAYSTACK_PAGE_SIZE,
    Payment,
    Refusal,
    Reply,
    Request,
    Transfer,
    Wire,
    account_name,
    check_account,
    currency_code,
    date_range,
    envelope,
    fee_of,
    iso,
    list_misbehaviour,
    minor_amount,
    page_of,
    payments_on,
    transfer_where,
    utcnow,
    verify_misbehaviour,
)
from ledgerline.money import to_minor

if TYPE_CHECKING:
    from ledgerline.local.fake_gateway import FakeGateway

_REF = r"(?P<reference>[^/]+)"


def _paystack_ok(data: Any, message: str, meta: dict[str, Any] | None = None) -> Reply:
    return Reply(200, envelope(True, data, message, meta))


def paystack_transaction(
    payment: Payment, *, amount: Decimal | None = None, status: str | None = None
) -> dict[str, Any]:
    status = status or {"pending": "abandoned", "success": "success", "failed": "failed"}[payment.status]
    cur = payment.currency
    paid = iso(payment.paid_at) if status == "success" else None
    created = iso(payment.created_at)
    fees = to_minor(fee_of("paystack", payment.amount, cur), cur) if status == "success" else None
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
    currency = currency_code(data.get("currency") or "NGN", PAYSTACK_CURRENCIES)
    amount = minor_amount(data.get("amount"), currency)
    reference = str(data.get("reference") or secrets.token_hex(5))
    if not re.fullmatch(r"[A-Za-z0-9.=_-]+", reference):
        raise Refusal(400, "Invalid transaction reference", "invalid_reference")
    payment, opened = fake.open_payment("paystack", reference, amount, currency, str(data["email"]))
    if not opened:
        raise Refusal(400, "Duplicate Transaction Reference", "duplicate_reference")
    return _paystack_ok(
        {
            "authorization_url": f"https://checkout.paystack.com/{payment.access_code}",
            "access_code": payment.access_code,
            "reference": reference,
        },
        "Authorization URL created",
    )


def _paystack_verify(fake: FakeGateway, req: Request) -> Reply:
    assert req.match is not None
    payment = fake.payment("paystack", req.match["reference"])
    amount, status = verify_misbehaviour(fake, "paystack", payment)
    assert payment is not None
    return _paystack_ok(paystack_transaction(payment, amount=amount, status=status), "Verification successful")


def _paystack_list(fake: FakeGateway, req: Request) -> Reply:
    list_misbehaviour(fake, "paystack")
    start, end = date_range(req)
    rows = fake.day_payments("paystack", start, end)
    if req.q("status"):
        rows = [p for p in rows if paystack_transaction(p)["status"] == req.q("status")]
    per_page = max(1, min(int(req.q("perPage") or req.q("per_page") or PAYSTACK_PAGE_SIZE), 1000))
    page = max(1, int(req.q("page") or 1))
    chunk, pages = page_of(rows, page, per_page)
    meta = {
        "total": len(rows),
        "total_volume": sum(to_minor(p.amount, p.currency) for p in rows if p.status == "success"),
        "skipped": (page - 1) * per_page,
        "perPage": per_page,
        "page": page,
        "pageCount": pages,
    }
    return _paystack_ok([paystack_transaction(p) for p in chunk], "Transactions retrieved", meta)


def _paystack_resolve(fake: FakeGateway, req: Request) -> Reply:
    bank_code, number = check_account(req.q("bank_code"), req.q("account_number"))
    return _paystack_ok(
        {"account_number": number, "account_name": account_name(bank_code, number), "bank_id": int(bank_code)},
        "Account number resolved",
    )


def _paystack_recipient(fake: FakeGateway, req: Request) -> Reply:
    data = req.fields()
    missing = [k for k in ("type", "name", "account_number", "bank_code") if not data.get(k)]
    if missing:
        raise Refusal(400, f"{', '.join(missing)} is required", "missing_params")
    bank_code, number = check_account(str(data["bank_code"]), str(data["account_number"]))
    code = "RCP_" + hashlib.sha256(f"{bank_code}:{number}".encode()).hexdigest()[:15]
    with fake._lock:
        recipient = fake.recipients.setdefault(
            code,
            {
                "recipient_code": code,
                "id": fake.next_id(),
                "type": data["type"],
                "name": data["name"],
                "currency": currency_code(data.get("currency") or "NGN", PAYSTACK_CURRENCIES),
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
    return Reply(201, envelope(True, recipient, "Transfer recipient created successfully"))


def paystack_transfer(transfer: Transfer, recipient: Mapping[str, Any] | None = None) -> dict[str, Any]:
    at = iso(transfer.created_at)
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
        "transferred_at": iso(utcnow()) if transfer.status == "success" else None,
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
        "updatedAt": iso(utcnow()),
        "created_at": at,
        "updated_at": iso(utcnow()),
    }


def _paystack_transfer(fake: FakeGateway, req: Request) -> Reply:
    data = req.fields()
    currency = currency_code(data.get("currency") or "NGN", PAYSTACK_CURRENCIES)
    amount = minor_amount(data.get("amount"), currency)
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


def _paystack_bulk_transfer(fake: FakeGateway, req: Request) -> Reply:
    """``POST /transfer/bulk`` (issue 19): each item a transfer as ``POST /transfer`` makes
    it (the same reference answers the same transfer), each settled by its own webhook.
    Every item is checked before any is queued: a bad one refuses the request."""
    data = req.fields()
    currency = currency_code(data.get("currency") or "NGN", PAYSTACK_CURRENCIES)
    items = data.get("transfers")
    if not isinstance(items, list) or not 1 <= len(items) <= 100:
        raise Refusal(400, "transfers must be a list of 1 to 100 transfers", "invalid_params")
    checked = []
    for item in items:
        if not isinstance(item, dict):
            raise Refusal(400, "each transfer must be an object", "invalid_params")
        with fake._lock:
            recipient = fake.recipients.get(str(item.get("recipient")))
        if recipient is None:
            raise Refusal(400, "Recipient specified is invalid", "invalid_transfer_recipient")
        reference = str(item.get("reference") or "")
        if not re.fullmatch(r"[a-z0-9_-]{1,100}", reference):
            raise Refusal(
                400, "Invalid transfer reference: use lowercase letters, digits, - and _", "invalid_reference"
            )
        checked.append(
            (recipient, reference, minor_amount(item.get("amount"), currency), str(item.get("reason") or ""))
        )
    queued = []
    for recipient, reference, amount, reason in checked:
        details = recipient["details"]
        transfer = fake.create_transfer(
            "paystack", reference=reference, amount=amount, currency=currency, bank_code=details["bank_code"],
            account_number=details["account_number"], account_name=details["account_name"], narration=reason,
        )  # fmt: skip
        body = paystack_transfer(transfer)
        queued.append({k: body[k] for k in ("reference", "amount", "transfer_code", "currency", "status")}
                      | {"recipient": recipient["recipient_code"]})  # fmt: skip
    return _paystack_ok(queued, f"{len(queued)} transfers queued.")


def _paystack_transfer_verify(fake: FakeGateway, req: Request) -> Reply:
    assert req.match is not None
    reference = req.match["reference"]
    missing = Refusal(404, "Transfer not found", "resource_missing")
    transfer = transfer_where(fake, "paystack", lambda t: t.reference == reference, missing)
    return _paystack_ok(paystack_transfer(transfer), "Transfer retrieved")


def _paystack_charge_event(fake: FakeGateway, payment: Payment) -> dict[str, Any] | None:
    if payment.status != "success":
        return None  # Paystack sends no webhook for a failed charge
    return {"event": "charge.success", "data": paystack_transaction(payment)}


def _paystack_transfer_event(fake: FakeGateway, transfer: Transfer) -> dict[str, Any]:
    return {"event": f"transfer.{transfer.status}", "data": paystack_transfer(transfer)}


def _paystack_report(fake: FakeGateway, day: date) -> dict[str, Any]:
    rows = payments_on(fake, "paystack", day)
    meta = {"total": len(rows), "skipped": 0, "perPage": len(rows), "page": 1, "pageCount": 1}
    return envelope(True, [paystack_transaction(p) for p in rows], "Transactions retrieved", meta)


WIRE = Wire(
    routes=[
        ("POST", re.compile(r"/transaction/initialize"), _paystack_initialize),
        ("GET", re.compile(rf"/transaction/verify/{_REF}"), _paystack_verify),
        ("GET", re.compile(r"/transaction"), _paystack_list),
        ("GET", re.compile(r"/bank/resolve"), _paystack_resolve),
        ("POST", re.compile(r"/transferrecipient"), _paystack_recipient),
        ("POST", re.compile(r"/transfer"), _paystack_transfer),
        ("POST", re.compile(r"/transfer/bulk"), _paystack_bulk_transfer),
        ("GET", re.compile(rf"/transfer/verify/{_REF}"), _paystack_transfer_verify),
    ],
    payment_event=_paystack_charge_event,
    payout_event=_paystack_transfer_event,
    report=_paystack_report,
)
