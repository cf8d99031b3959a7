"""Invoices in the database: create, change (with the before/after diff), soft delete,
read, list, and the overdue sweep. The one place their SQL lives (paying is ``invoice_pay``,
a money operation).

Who may do what (docs/api.md "Invoices"): the caller of a create is the seller; only the
seller changes or deletes an invoice; its seller and buyer read it, administrators and
auditors read any (deleted ones too); to anyone else an invoice is not found, and a
deleted one is not found to its parties either. The database (``invoice_guard``)
enforces the machine and derives the amount on every write, whatever this code does.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from psycopg2.extras import Json

from ledgerline import audit, errors, jsonutil, money, pagination
from ledgerline.audit import Actor
from ledgerline.caller import Principal
from ledgerline.db import Cursor
from ledgerline.ids import object_id
from ledgerline.invoices import model, pricing
from ledgerline.invoices.model import Invoice
from ledgerline.invoices.schemas import CreateInvoice, UpdateInvoice
from ledgerline.ledger import sql
from ledgerline.ledger.access import READ_ANY_ROLES

BILLING_ROLES = frozenset({"user", "merchant"})  # who bills and is billed: people and merchants, not staff
MAX_DUE_DAYS = 5 * 366
OVERDUE_BATCH = 500
# What a change is about (the diff of the audit row): the invoice's terms, not its bookkeeping.
_TERMS = ("buyer_id", "currency", "items", "amount", "due_date")

_SELECT = "SELECT i.id, i.seller_id, i.buyer_id, i.status, i.deleted_at, invoice_json(i) AS body FROM invoices i"


def _invoice(row: dict[str, Any]) -> Invoice:
    return Invoice(row["id"], row["seller_id"], row["buyer_id"], row["status"], dict(row["body"]))


def _not_found(invoice_id: Any) -> errors.NotFound:
    return errors.NotFound(f"invoice {invoice_id} not found")


def _may_bill(caller: Principal) -> None:
    if caller.role not in BILLING_ROLES:
        raise errors.Forbidden("invoices are between users and merchants; staff accounts neither bill nor pay")


def _check_due(due: date) -> None:
    today = datetime.now(UTC).date()
    if not today <= due <= today + timedelta(days=MAX_DUE_DAYS):
        raise errors.ValidationFailed(
            f"due_date must be between today ({today.isoformat()}, UTC) and {MAX_DUE_DAYS} days ahead",
            errors=[errors.FieldError("due_date", "a day from today on, within 5 years")],
        )


def _check_buyer(cur: Cursor, buyer_id: UUID, seller_id: UUID) -> None:
    """The buyer is another active user or merchant. A missing, suspended or staff id get
    one answer: it says the id cannot be billed, not whether a user has it."""
    if buyer_id == seller_id:
        raise errors.ValidationFailed(
            "the buyer cannot be the seller", errors=[errors.FieldError("buyer_id", "bill someone else")]
        )
    cur.execute(
        "SELECT 1 FROM users WHERE id = %s AND status = 'active' AND role = ANY(%s)", (buyer_id, list(BILLING_ROLES))
    )
    if cur.fetchone() is None:
        raise errors.ValidationFailed(
            f"buyer {buyer_id} cannot be billed", errors=[errors.FieldError("buyer_id", "no user who can pay invoices")]
        )


def create(cur: Cursor, caller: Principal, body: CreateInvoice, actor: Actor) -> Invoice:
    """A new PENDING invoice from the caller (the seller) to ``body.buyer_id``."""
    _may_bill(caller)
    currency = money.check_currency(body.currency)
    priced = pricing.price(body.items, currency)
    _check_due(body.due_date)
    _check_buyer(cur, body.buyer_id, caller.id)
    invoice = _write(
        cur,
        """
        INSERT INTO invoices AS i (seller_id, buyer_id, currency, items, due_date) VALUES (%s, %s, %s, %s, %s)
        """,
        (caller.id, body.buyer_id, currency, _json(priced.stored()), body.due_date),
    )
    audit.record(
        cur, actor, model.CREATED, "invoice", invoice.id, after={"invoice": invoice.body}, subjects=[invoice.buyer_id]
    )
    return invoice


def _locked(cur: Cursor, invoice_id: UUID, caller: Principal) -> Invoice:
    """The invoice, locked, for a change by its seller: anyone but its parties (and, to
    them, a deleted one) gets 404; its buyer (and staff, who may read it) 403."""
    cur.execute(f"{_SELECT} WHERE i.id = %s FOR UPDATE", (invoice_id,))
    row = cur.fetchone()
    staff = caller.role in READ_ANY_ROLES
    if row is None or (
        not staff and (row["deleted_at"] is not None or caller.id not in (row["seller_id"], row["buyer_id"]))
    ):
        raise _not_found(invoice_id)
    if caller.id != row["seller_id"]:
        raise errors.Forbidden("only the seller of an invoice changes or deletes it")
    return _invoice(row)


def update(cur: Cursor, caller: Principal, invoice_id: UUID, body: UpdateInvoice, actor: Actor) -> Invoice:
    """Change a PENDING invoice's terms; audited with only what changed, before and after.
    A change that changes nothing writes nothing."""
    sent = body.model_fields_set
    if not sent or all(getattr(body, f) is None for f in sent):
        raise errors.ValidationFailed(
            "send at least one of buyer_id, currency, items, due_date",
            errors=[errors.FieldError("body", "nothing to change")],
        )
    current = _locked(cur, invoice_id, caller)
    if current.status != "PENDING":
        raise errors.InvalidStateTransition(
            f"invoice {current.body['number']} is {current.status}; only a PENDING invoice can be changed"
        )
    currency = money.check_currency(body.currency) if body.currency is not None else current.body["currency"]
    items: list[Any] = body.items if body.items is not None else current.body["items"]
    priced = pricing.price(items, currency)
    if body.due_date is not None:
        _check_due(body.due_date)
    buyer_id = body.buyer_id if body.buyer_id is not None else current.buyer_id
    if body.buyer_id is not None and body.buyer_id != current.buyer_id:
        _check_buyer(cur, buyer_id, caller.id)
    due = body.due_date.isoformat() if body.due_date is not None else current.body["due_date"]
    now = {"buyer_id": str(buyer_id), "currency": currency, "items": priced.stored(), "due_date": due}
    was = {
        "buyer_id": str(current.buyer_id),
        "currency": current.body["currency"],
        "items": [{k: line[k] for k in ("description", "quantity", "unit_price")} for line in current.body["items"]],
        "due_date": current.body["due_date"],
    }
    if now == was:
        return current
    changed = _write(
        cur,
        "UPDATE invoices i SET buyer_id = %s, currency = %s, items = %s, due_date = %s WHERE i.id = %s",
        (buyer_id, currency, _json(priced.stored()), due, current.id),
    )
    before, after = _diff(current.body, changed.body)
    audit.record(
        cur, actor, model.UPDATED, "invoice", changed.id, before=before, after=after,
        metadata={"version": changed.body["version"]}, subjects={current.buyer_id, changed.buyer_id},
    )  # fmt: skip
    return changed


def _diff(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the terms that changed, as they were and as they are."""
    changed = [k for k in _TERMS if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in changed}, {k: after.get(k) for k in changed}


def delete(cur: Cursor, caller: Principal, invoice_id: UUID, actor: Actor) -> None:
    """Withdraw an unpaid invoice: CANCELLED and deleted (the row stays; audited). A paid
    one cannot be deleted (409)."""
    current = _locked(cur, invoice_id, caller)
    if current.status in ("PAID", "CANCELLED"):
        raise errors.InvalidStateTransition(
            f"invoice {current.body['number']} is {current.status}; it cannot be deleted"
        )
    deleted = _write(
        cur, "UPDATE invoices i SET status = 'CANCELLED', deleted_at = clock_timestamp() WHERE i.id = %s", (current.id,)
    )
    audit.record(
        cur, actor, model.DELETED, "invoice", deleted.id,
        before={"status": current.status, "deleted_at": None},
        after={"status": deleted.status, "deleted_at": deleted.body["deleted_at"]},
        subjects=[deleted.buyer_id],
    )  # fmt: skip


def get(cur: Cursor, caller: Principal, invoice_id: str) -> Invoice:
    """One invoice as ``caller`` may see it."""
    iid = object_id(invoice_id, "invoice")
    cur.execute(f"{_SELECT} WHERE i.id = %s", (iid,))
    row = cur.fetchone()
    if row is None:
        raise _not_found(invoice_id)
    if caller.role not in READ_ANY_ROLES and (
        row["deleted_at"] is not None or caller.id not in (row["seller_id"], row["buyer_id"])
    ):
        raise _not_found(invoice_id)
    return _invoice(row)


def list_invoices(
    cur: Cursor,
    caller: Principal,
    *,
    role: Literal["seller", "buyer"] | None = None,
    status: str | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> tuple[list[Invoice], str | None]:
    """The caller's invoices (as seller, as buyer, or both), deleted ones left out,
    newest first, a page at a time."""
    limit = pagination.check_limit(limit)
    after = pagination.decode(cursor)
    params: dict[str, Any] = {"me": caller.id, "limit": limit + 1, "status": status}
    sides = {"seller": "i.seller_id = %(me)s", "buyer": "i.buyer_id = %(me)s"}
    where = sides[role] if role else f"({sides['seller']} OR {sides['buyer']})"
    where += " AND i.deleted_at IS NULL AND (%(status)s::text IS NULL OR i.status = %(status)s)"
    if after:
        where += " AND (i.created_at, i.id) < (%(t)s, %(id)s)"
        params.update(t=after[0], id=after[1])
    cur.execute(
        f"SELECT i.created_at, {_SELECT.removeprefix('SELECT ')} WHERE {where}"
        " ORDER BY i.created_at DESC, i.id DESC LIMIT %(limit)s",
        params,
    )
    rows, next_cursor = pagination.page(cur.fetchall(), limit)
    return [_invoice(r) for r in rows], next_cursor


def mark_overdue(
    cur: Cursor, *, limit: int = OVERDUE_BATCH, today: date | None = None, actor: Actor | None = None
) -> int:
    """Flag up to ``limit`` PENDING invoices whose due date is before ``today`` (default:
    the database's UTC day) as OVERDUE, each audited as a system action; return how many.
    Invoices being changed or paid right now are skipped: the next run gets them if they
    are still PENDING."""
    actor = actor or Actor.system("overdue-invoices")
    cur.execute(
        """
        WITH due AS (
          SELECT id FROM invoices
           WHERE status = 'PENDING' AND due_date < coalesce(%(today)s, (now() AT TIME ZONE 'UTC')::date)
           ORDER BY due_date, id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
        UPDATE invoices i SET status = 'OVERDUE' FROM due WHERE i.id = due.id
        RETURNING i.id, i.number, i.seller_id, i.buyer_id, i.due_date, i.version
        """,
        {"today": today, "limit": limit},
    )
    flagged = cur.fetchall()
    for row in flagged:
        audit.record(
            cur, actor, model.OVERDUE, "invoice", row["id"],
            before={"status": "PENDING"}, after={"status": "OVERDUE"},
            metadata={"number": row["number"], "due_date": row["due_date"].isoformat()},
            subjects=[row["seller_id"], row["buyer_id"]],
        )  # fmt: skip
    return len(flagged)


def _write(cur: Cursor, statement: str, params: tuple[Any, ...]) -> Invoice:
    """Run one INSERT or UPDATE of an invoice (aliased ``i``) and return the row as written.
    What invoice_guard refuses (a race this code lost) is the domain error it stands for."""
    returning = " RETURNING i.id, i.seller_id, i.buyer_id, i.status, i.deleted_at, invoice_json(i) AS body"
    return _invoice(sql.call(cur, statement.strip() + returning, params))


def _json(value: Any) -> Json:
    return Json(value, dumps=jsonutil.dumps)
