"""The fake's Flutterwave v3 (GATEWAYS.md §3): JSON, major units (decimals kept), fees to the
thousandth, ``{status: "success", message, data, meta}``."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ledgerline.local.fake_wire.common import (
    FLUTTERWAVE_BLACKLISTED_ACCOUNT,
    FLUTTERWAVE_PAGE_SIZE,
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
    page_of,
    payments_on,
    transfer_where,
    utcnow,
    verify_misbehaviour,
    wire_amount,
)
from ledgerline.money import to_minor

if TYPE_CHECKING:
    from ledgerline.local.fake_gateway import FakeGateway

_ID = r"(?P<id>[^/]+)"


def _flw_ok(data: Any, message: str, meta: dict[str, Any] | None = None) -> Reply:
    return Reply(200, envelope("success", data, message, meta))


def flutterwave_transaction(
    payment: Payment, *, amount: Decimal | None = None, status: str | None = None
) -> dict[str, Any]:
    state = status or payment.status
    paid = payment.amount if amount is None else amount
    fee = fee_of("flutterwave", paid, payment.currency) if state == "success" else Decimal(0)
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
        "created_at": iso(payment.paid_at or payment.created_at),
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
    currency = currency_code(data.get("currency") or "NGN")
    amount = wire_amount(data.get("amount"))
    try:
        to_minor(amount, currency)
    except ValueError:
        raise Refusal(400, f"amount has more decimals than {currency} allows") from None
    payment, _ = fake.open_payment("flutterwave", reference, amount, currency, str(customer["email"]))
    if payment.requested != amount or payment.currency != currency:
        raise Refusal(400, "A transaction with this tx_ref already exists")  # the same tx_ref, other terms
    return _flw_ok(
        {"link": f"https://checkout.flutterwave.com/v3/hosted/pay/flwlnk-{payment.access_code}"}, "Hosted Link"
    )


def _flw_verify(fake: FakeGateway, payment: Payment | None) -> Reply:
    amount, status = verify_misbehaviour(
        fake, "flutterwave", payment, not_found=Refusal(404, "No transaction was found for this id")
    )
    assert payment is not None
    return _flw_ok(flutterwave_transaction(payment, amount=amount, status=status), "Transaction fetched successfully")


def _flw_verify_by_reference(fake: FakeGateway, req: Request) -> Reply:
    return _flw_verify(fake, fake.payment("flutterwave", req.q("tx_ref") or ""))


def _flw_verify_by_id(fake: FakeGateway, req: Request) -> Reply:
    assert req.match is not None
    return _flw_verify(fake, fake.payment_by_id("flutterwave", req.match["id"]))


def _flw_list(fake: FakeGateway, req: Request) -> Reply:
    list_misbehaviour(fake, "flutterwave")
    start, end = date_range(req)
    rows = fake.day_payments("flutterwave", start, end)
    page = max(1, int(req.q("page") or 1))
    chunk, pages = page_of(rows, page, FLUTTERWAVE_PAGE_SIZE)
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
        "created_at": iso(transfer.created_at),
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
    bank_code, number = check_account(str(data["account_bank"]), str(data["account_number"]))
    currency = currency_code(data["currency"])
    amount = wire_amount(data["amount"])
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


def _flw_bulk_transfer(fake: FakeGateway, req: Request) -> Reply:
    """``POST /v3/bulk-transfers`` (issue 19): ``bulk_data`` items (``bank_code``, not
    ``account_bank``), each then a transfer of its own, settled by its own webhook. The
    answer names the batch only. Every item is checked before any is queued."""
    data = req.fields()
    items = data.get("bulk_data")
    if not isinstance(items, list) or not items:
        raise Refusal(400, "bulk_data is required")
    checked = []
    for item in items:
        if not isinstance(item, dict):
            raise Refusal(400, "each bulk_data item must be an object")
        missing = [k for k in ("bank_code", "account_number", "amount", "currency", "reference") if not item.get(k)]
        if missing:
            raise Refusal(400, f"{', '.join(missing)} is required")
        if item["account_number"] == FLUTTERWAVE_BLACKLISTED_ACCOUNT:
            raise Refusal(400, "Payout was made to a blacklisted account number")
        bank_code, number = check_account(str(item["bank_code"]), str(item["account_number"]))
        checked.append((item, bank_code, number, currency_code(item["currency"]), wire_amount(item["amount"])))
    for item, bank_code, number, currency, amount in checked:
        fake.create_transfer(
            "flutterwave", reference=str(item["reference"]), amount=amount, currency=currency, bank_code=bank_code,
            account_number=number, account_name=account_name(bank_code, number),
            narration=str(item.get("narration") or ""),
        )  # fmt: skip
    batch = fake.next_id()
    return _flw_ok({"id": batch, "created_at": iso(utcnow()), "approver": "N/A"}, "Bulk transfer queued")


def _flw_get_transfer(fake: FakeGateway, req: Request) -> Reply:
    assert req.match is not None
    wanted = req.match["id"]
    transfer = transfer_where(
        fake, "flutterwave", lambda t: str(t.numeric_id) == wanted, Refusal(404, "Transfer not found")
    )
    return _flw_ok(flutterwave_transfer(transfer), "Transfer fetched")


def _flw_resolve(fake: FakeGateway, req: Request) -> Reply:
    data = req.fields()
    bank_code, number = check_account(data.get("account_bank"), data.get("account_number"))
    return _flw_ok(
        {"account_number": number, "account_name": account_name(bank_code, number)}, "Account details fetched"
    )


def _flw_charge_event(fake: FakeGateway, payment: Payment) -> dict[str, Any]:
    return {"event": "charge.completed", "data": flutterwave_transaction(payment)}


def _flw_transfer_event(fake: FakeGateway, transfer: Transfer) -> dict[str, Any]:
    return {"event": "transfer.completed", "event.type": "Transfer", "data": flutterwave_transfer(transfer)}


def _flw_report(fake: FakeGateway, day: date) -> dict[str, Any]:
    rows = payments_on(fake, "flutterwave", day)
    meta = {"page_info": {"total": len(rows), "current_page": 1, "total_pages": 1}}
    return envelope("success", [flutterwave_transaction(p) for p in rows], "Transactions fetched", meta)


WIRE = Wire(
    routes=[
        ("POST", re.compile(r"/v3/payments"), _flw_pay),
        ("GET", re.compile(r"/v3/transactions/verify_by_reference"), _flw_verify_by_reference),
        ("GET", re.compile(rf"/v3/transactions/{_ID}/verify"), _flw_verify_by_id),
        ("GET", re.compile(r"/v3/transactions"), _flw_list),
        ("POST", re.compile(r"/v3/transfers"), _flw_transfer),
        ("POST", re.compile(r"/v3/bulk-transfers"), _flw_bulk_transfer),
        ("GET", re.compile(rf"/v3/transfers/{_ID}"), _flw_get_transfer),
        ("POST", re.compile(r"/v3/accounts/resolve"), _flw_resolve),
    ],
    payment_event=_flw_charge_event,
    payout_event=_flw_transfer_event,
    report=_flw_report,
)
