"""A seeded day's report: N payments of one provider's UTC day, with discrepancies of
every reconciliation kind planted at known rows, generated deterministically row by row
(any row, hence any page, is computed from its index: nothing of N is held in memory).

Row ``i`` is a payment the ledger should know (reference ``RC-<seed>-<yyyymmdd>-<i>``);
``planted`` says which rows carry which discrepancy:

* MISSING_IN_LEDGER: reported as succeeded; ``ledger_rows`` leaves it out;
* MISSING_IN_GATEWAY: in the ledger; its report slot carries a second copy of a
  DUPLICATE_IN_GATEWAY row instead (so the report still has exactly N rows);
* AMOUNT_MISMATCH: reported one major unit more; CURRENCY_MISMATCH: another currency;
* STATUS_MISMATCH: reported failed (the ledger credited it); FEE_MISMATCH: a fee that is
  not the contracted one (twice it, plus one minor unit).

``wire_page`` renders a page in the provider's own list format (the fake's list routes
serve it); ``payment_pages`` gives the same rows as adapter values, for an in-process
source (the bench's, where a million rows over HTTP would measure the fake, not us).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any

from ledgerline.gateways.base import GatewayPayment, Page, PaymentStatus
from ledgerline.local.fake_wire.common import Payment, Reply, Request, fee_of
from ledgerline.money import to_minor

KINDS = (
    "MISSING_IN_LEDGER",
    "MISSING_IN_GATEWAY",
    "AMOUNT_MISMATCH",
    "CURRENCY_MISMATCH",
    "STATUS_MISMATCH",
    "DUPLICATE_IN_GATEWAY",
    "FEE_MISMATCH",
)
CURRENCY = {"paystack": "NGN", "stripe": "USD", "flutterwave": "NGN"}


@dataclass(frozen=True)
class Row:
    """One report row as the gateway has it (major units)."""

    index: int  # the payment's index (a duplicate's is its original's)
    reference: str
    provider_id: str
    amount: Decimal
    currency: str
    status: str  # the fake's: "success" | "failed"
    fee: Decimal | None
    paid_at: datetime


@dataclass(frozen=True)
class SeededReport:
    provider: str
    day: date
    n: int
    per_kind: int = 3  # rows planted per discrepancy kind (0: a clean day)
    seed: int = 1

    def __post_init__(self) -> None:
        if self.n < len(KINDS) * self.per_kind:
            raise ValueError("a report needs at least per_kind rows for every kind")

    # ------------------------------------------------------------------ the plan

    def _step(self) -> int:
        slots = len(KINDS) * self.per_kind
        return max(1, self.n // slots) if slots else 1

    def planted(self) -> dict[str, list[int]]:
        """kind -> the row indexes carrying it (spread over the day)."""
        step = self._step()
        return {kind: [(k * self.per_kind + m) * step for m in range(self.per_kind)] for k, kind in enumerate(KINDS)}

    def kind_of(self, i: int) -> str | None:
        step = self._step()
        if self.per_kind == 0 or i % step:
            return None
        slot = i // step
        k, _ = divmod(slot, self.per_kind)
        return KINDS[k] if k < len(KINDS) else None

    def references(self) -> dict[str, set[str]]:
        return {kind: {self.reference(i) for i in rows} for kind, rows in self.planted().items()}

    def reference(self, i: int) -> str:
        return f"{self._prefix}{i:09d}"

    @cached_property
    def _prefix(self) -> str:
        return f"RC-{self.seed}-{self.day:%Y%m%d}-"

    def amount(self, i: int) -> Decimal:
        return Decimal(100 + (i * 7919 + self.seed) % 100_000) + Decimal((i * 31) % 100) / 100

    def paid_at(self, i: int) -> datetime:
        start = datetime.combine(self.day, datetime.min.time(), UTC)
        return start + timedelta(microseconds=(i + 1) * (86_400_000_000 // (self.n + 2)))

    # ------------------------------------------------------------------ the two sides

    def row(self, position: int) -> Row:
        """The report's row at ``position`` (0 <= position < n)."""
        i = position
        kind = self.kind_of(i)
        if kind == "MISSING_IN_GATEWAY":
            # Its slot reports another copy of the matching duplicate row.
            m = self.planted()["MISSING_IN_GATEWAY"].index(i)
            original = self.planted()["DUPLICATE_IN_GATEWAY"][m]
            return self._row(original, copy=True)
        return self._row(i)

    def _row(self, i: int, copy: bool = False) -> Row:
        kind = self.kind_of(i)
        currency = CURRENCY[self.provider]
        amount = self.amount(i)
        status = "success"
        if kind == "AMOUNT_MISMATCH":
            amount += 1
        elif kind == "CURRENCY_MISMATCH":
            currency = "GHS" if currency != "GHS" else "KES"
        elif kind == "STATUS_MISMATCH":
            status = "failed"
        fee: Decimal | None = fee_of(self.provider, amount, currency) if status == "success" else None
        if kind == "FEE_MISMATCH" and fee is not None:
            fee = fee * 2 + Decimal("0.01")
        number = 7_000_000_000 + self.seed * 10_000_000 + i * 2 + (1 if copy else 0)
        provider_id = f"pi_rc{number}" if self.provider == "stripe" else str(number)
        return Row(i, self.reference(i), provider_id, amount, currency, status, fee, self.paid_at(i))

    def rows(self, start: int = 0, stop: int | None = None) -> Iterator[Row]:
        for position in range(start, min(self.n, self.n if stop is None else stop)):
            yield self.row(position)

    def ledger_rows(self) -> Iterator[tuple[str, Decimal, str, datetime]]:
        """(reference, amount, currency, created_at) of each payment the ledger credited."""
        currency = CURRENCY[self.provider]
        for i in range(self.n):
            if self.kind_of(i) != "MISSING_IN_LEDGER":
                yield self.reference(i), self.amount(i), currency, self.paid_at(i)

    # ------------------------------------------------------------------ renderings

    def payment_pages(self, page_size: int = 1000) -> Iterator[Page]:
        """The report as adapter pages, in process."""
        for start in range(0, self.n, page_size):
            items = [_gateway_payment(r) for r in self.rows(start, start + page_size)]
            more = start + page_size < self.n
            yield Page(items=items, next_cursor=str(start + page_size) if more else None)

    def list_payments(self, day: date, cursor: str | None = None) -> Page:
        """An adapter's ``list_payments`` over this report (cursor: the next position)."""
        start = int(cursor or 0)
        if day != self.day:
            return Page(items=[], next_cursor=None)
        size = 1000
        items = [_gateway_payment(r) for r in self.rows(start, start + size)]
        return Page(items=items, next_cursor=str(start + size) if start + size < self.n else None)

    def fake_payment(self, r: Row) -> Payment:
        """The row as the fake's own book entry (what its wire formatters render)."""
        return Payment(
            provider=self.provider,
            reference=r.reference,
            id=r.provider_id,
            requested=r.amount,
            amount=r.amount,
            currency=r.currency,
            email="payer@example.test",
            created_at=r.paid_at,
            status=r.status,
            paid_at=r.paid_at,
            access_code=r.provider_id[-8:],
            charge_id=f"ch_{r.provider_id}",
        )

    def position_of(self, provider_id: str) -> int | None:
        """A row's position from its provider id (Stripe's starting_after cursor)."""
        digits = provider_id.removeprefix("pi_rc")
        if not digits.isdigit():
            return None
        i, copy = divmod(int(digits) - 7_000_000_000 - self.seed * 10_000_000, 2)
        if i < 0 or i >= self.n:
            return None
        if copy:
            m = self.planted()["DUPLICATE_IN_GATEWAY"].index(i)
            return self.planted()["MISSING_IN_GATEWAY"][m]
        return i


def wire_fee(provider: str, r: Row, body: dict[str, Any]) -> dict[str, Any]:
    """Put the row's fee into a rendered transaction (the fake's formatters compute the
    contracted fee; a FEE_MISMATCH row reports another)."""
    if r.fee is None:
        return body
    if provider == "paystack":
        body["fees"] = to_minor(r.fee, r.currency)
    elif provider == "flutterwave":
        body["app_fee"] = r.fee
        body["amount_settled"] = r.amount - r.fee
    else:
        charge = body.get("latest_charge")
        balance = charge.get("balance_transaction") if isinstance(charge, dict) else None
        if isinstance(balance, dict):
            balance["fee"] = to_minor(r.fee, r.currency)
            balance["net"] = balance["amount"] - balance["fee"]
            balance["fee_details"][0]["amount"] = balance["fee"]
    return body


def _gateway_payment(r: Row) -> GatewayPayment:
    return GatewayPayment(
        reference=r.reference,
        provider_id=r.provider_id,
        amount=r.amount,
        currency=r.currency,
        status=PaymentStatus.SUCCEEDED if r.status == "success" else PaymentStatus.FAILED,
        fee=r.fee,
        paid_at=r.paid_at,
    )


# ---------------------------------------------------------------------- the list routes


def serve(reports: dict[tuple[str, date], SeededReport], req: Request) -> Reply | None:
    """Answer a provider's list request for a day that has a seeded report, page by page
    in the provider's format; None when no seeded report covers the request."""
    from ledgerline.local.fake_wire.common import (
        FLUTTERWAVE_PAGE_SIZE,
        PAYSTACK_PAGE_SIZE,
        date_range,
    )
    from ledgerline.local.fake_wire.flutterwave import flutterwave_transaction
    from ledgerline.local.fake_wire.paystack import paystack_transaction
    from ledgerline.local.fake_wire.stripe import stripe_intent

    if req.method != "GET":
        return None
    if req.provider in ("paystack", "flutterwave") and req.path in ("/transaction", "/v3/transactions"):
        start, _ = date_range(req)
        report = reports.get((req.provider, start.date()))
        if report is None:
            return None
        page = max(1, int(req.q("page") or 1))
        if req.provider == "paystack":
            size = max(1, min(int(req.q("perPage") or PAYSTACK_PAGE_SIZE), 1000))
            pages = (report.n + size - 1) // size
            data = [
                wire_fee("paystack", r, paystack_transaction(report.fake_payment(r)))
                for r in report.rows((page - 1) * size, page * size)
            ]
            meta = {"total": report.n, "perPage": size, "page": page, "pageCount": pages}
            return Reply(200, {"status": True, "message": "Transactions retrieved", "data": data, "meta": meta})
        size = FLUTTERWAVE_PAGE_SIZE
        pages = (report.n + size - 1) // size
        data = [
            wire_fee("flutterwave", r, flutterwave_transaction(report.fake_payment(r)))
            for r in report.rows((page - 1) * size, page * size)
        ]
        info = {"page_info": {"total": report.n, "current_page": page, "total_pages": pages}}
        return Reply(200, {"status": "success", "message": "Transactions fetched", "data": data, "meta": info})
    if req.provider == "stripe" and req.path == "/v1/payment_intents":
        gte = req.q("created[gte]")
        if not gte:
            return None
        report = reports.get(("stripe", datetime.fromtimestamp(int(gte), UTC).date()))
        if report is None:
            return None
        after = req.q("starting_after")
        first = 0
        if after:
            at = report.position_of(after)
            if at is None:
                return Reply(400, {"error": {"message": f"No such payment_intent: '{after}'"}})
            first = at + 1
        limit = max(1, min(int(req.q("limit") or 10), 100))
        data = [
            wire_fee("stripe", r, stripe_intent(report.fake_payment(r), expand=True))
            for r in report.rows(first, first + limit)
        ]
        body = {"object": "list", "url": "/v1/payment_intents", "has_more": first + limit < report.n, "data": data}
        return Reply(200, body)
    return None
