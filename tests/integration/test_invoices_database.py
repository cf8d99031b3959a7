"""Invoices against the real database: what the database itself enforces whatever code
writes (the machine, the derived amount, the column grants that keep PAID for the money
statement, the escrow of a paid invoice being exactly its own), and the overdue-invoices
job (flagged once, audited as a system action, locked rows skipped, not waited for)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg2
import pytest

from functions.invoices import overdue
from ledgerline import errors
from ledgerline.caller import Principal
from ledgerline.db import transaction
from ledgerline.invoices import model, store
from ledgerline.invoices.schemas import CreateInvoice
from ledgerline.ledger.testing import create_user, user_actor


def new_invoice(due_in_days: int = 7, **changes: Any) -> dict[str, Any]:
    def work(cur: Any) -> Any:
        seller, buyer = create_user(cur, "merchant"), create_user(cur)
        body = CreateInvoice.model_validate({
            "buyer_id": buyer, "currency": "NGN", "due_date": datetime.now(UTC).date() + timedelta(days=due_in_days),
            "items": [{"description": "Consulting", "quantity": "1.5", "unit_price": "1000.00"}], **changes,
        })  # fmt: skip
        return store.create(cur, Principal(seller, "merchant"), body, user_actor(seller, "merchant"))

    return transaction(work).to_json()


def backdate(owner_conn: Any, invoice_id: str, days: int = 1) -> None:
    with owner_conn.cursor() as cur:
        cur.execute(
            "UPDATE invoices SET due_date = (now() AT TIME ZONE 'UTC')::date - %s WHERE id = %s", (days, invoice_id)
        )


def fetch(conn: Any, sql: str, *params: Any) -> Any:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()


def status(owner_conn: Any, invoice_id: str) -> str:
    return str(fetch(owner_conn, "SELECT status FROM invoices WHERE id = %s", invoice_id)[0])


# ------------------------------------------------------------------------------ the database's rules


def test_the_amount_is_derived_by_the_database_from_the_items(app_conn):
    invoice = new_invoice()

    assert invoice["amount"] == {"amount": "1500.00", "currency": "NGN"}
    with app_conn.cursor() as cur:
        cur.execute(
            """UPDATE invoices SET items = '[{"description": "a", "quantity": "3", "unit_price": "0.25"}]'
               WHERE id = %s RETURNING amount, version""",
            (invoice["id"],),
        )
        assert cur.fetchone() == (Decimal("0.75"), 2)
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cur.execute("UPDATE invoices SET amount = 1 WHERE id = %s", (invoice["id"],))


@pytest.mark.parametrize(
    "items",
    [
        '[{"description": "a", "quantity": "1.5", "unit_price": "0.01"}]',  # 0.015 NGN
        '[{"description": "a", "quantity": "0", "unit_price": "1.00"}]',
        '[{"description": "a", "quantity": "1", "unit_price": "-1.00"}]',
        '[{"description": "a", "quantity": "1", "unit_price": "1e3"}]',
        '[{"description": "", "quantity": "1", "unit_price": "1.00"}]',
        '[{"description": "a", "quantity": "1", "unit_price": "0"}]',
        '["not an object"]',
    ],
)
def test_lines_the_currency_cannot_hold_are_refused_by_the_database_too(app_conn, items):
    invoice = new_invoice()

    with app_conn.cursor() as cur, pytest.raises(psycopg2.Error) as refused:
        cur.execute("UPDATE invoices SET items = %s WHERE id = %s", (items, invoice["id"]))

    assert refused.value.pgcode == "LLVL0"
    assert fetch(app_conn, "SELECT amount, version FROM invoices WHERE id = %s", invoice["id"]) == (Decimal("1500"), 1)


def test_the_application_role_cannot_mark_an_invoice_paid_or_write_its_escrow(app_conn):
    invoice = new_invoice()

    with app_conn.cursor() as cur:
        with pytest.raises(psycopg2.errors.CheckViolation):  # PAID without an escrow
            cur.execute("UPDATE invoices SET status = 'PAID' WHERE id = %s", (invoice["id"],))
        for column in ("escrow_id", "paid_at", "number", "seller_id", "version"):
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute(f"UPDATE invoices SET {column} = NULL WHERE id = %s", (invoice["id"],))
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cur.execute("DELETE FROM invoices WHERE id = %s", (invoice["id"],))
    assert status(app_conn, invoice["id"]) == "PENDING"


@pytest.mark.parametrize(
    ("start", "to", "allowed"),
    [
        ("PENDING", "OVERDUE", True),
        ("PENDING", "CANCELLED", True),
        ("OVERDUE", "CANCELLED", True),
        ("OVERDUE", "PENDING", False),
        ("CANCELLED", "PENDING", False),
        ("CANCELLED", "OVERDUE", False),
    ],
)
def test_the_machine_is_enforced_by_the_database(owner_conn, start, to, allowed):
    invoice = new_invoice()
    with owner_conn.cursor() as cur:
        if start != "PENDING":
            cur.execute(
                "UPDATE invoices SET status = %s, deleted_at = CASE WHEN %s = 'CANCELLED' THEN now() END WHERE id = %s",
                (start, start, invoice["id"]),
            )
        change = "UPDATE invoices SET status = %s, deleted_at = CASE WHEN %s = 'CANCELLED' THEN now() END WHERE id = %s"
        if allowed:
            cur.execute(change, (to, to, invoice["id"]))
        else:
            with pytest.raises(psycopg2.Error) as refused:
                cur.execute(change, (to, to, invoice["id"]))
            assert refused.value.pgcode == "LLST0"

    assert status(owner_conn, invoice["id"]) == (to if allowed else start)


def test_only_a_pending_invoice_changes_its_terms_and_a_cancelled_one_never_changes(owner_conn):
    overdue_one, cancelled = new_invoice(), new_invoice()
    with owner_conn.cursor() as cur:
        cur.execute("UPDATE invoices SET status = 'OVERDUE' WHERE id = %s", (overdue_one["id"],))
        cur.execute("UPDATE invoices SET status = 'CANCELLED', deleted_at = now() WHERE id = %s", (cancelled["id"],))
        for invoice in (overdue_one, cancelled):
            with pytest.raises(psycopg2.Error) as refused:
                cur.execute("UPDATE invoices SET due_date = due_date + 1 WHERE id = %s", (invoice["id"],))
            assert refused.value.pgcode == "LLST0"
        with pytest.raises(psycopg2.Error) as refused:
            cur.execute("UPDATE invoices SET deleted_at = NULL, status = 'OVERDUE' WHERE id = %s", (cancelled["id"],))
        assert refused.value.pgcode == "LLST0"


def test_a_paid_invoice_names_an_escrow_of_its_own_for_exactly_its_amount(owner_conn):
    """Even the owner cannot point an invoice at an escrow that is not its own, between
    the same parties, for its amount and currency (the invoices_escrow foreign key)."""
    invoice, other = new_invoice(), new_invoice()
    with owner_conn.cursor() as cur:
        cur.execute(
            """SELECT escrow_open(p_buyer => buyer_id, p_seller => seller_id, p_currency => currency,
                                  p_amount => amount, p_description => 'x', p_invoice => id,
                                  p_actor => '{"type": "system"}', p_audit => NULL)->'escrow'->>'id'
                 FROM invoices WHERE id = %s""",
            (other["id"],),
        )
        escrow_of_other = cur.fetchone()[0]
        with pytest.raises(psycopg2.errors.ForeignKeyViolation):
            cur.execute("UPDATE invoices SET status = 'PAID', escrow_id = %s WHERE id = %s",
                        (escrow_of_other, invoice["id"]))  # fmt: skip
        with pytest.raises(psycopg2.errors.ForeignKeyViolation):  # its own escrow, but another amount
            cur.execute("UPDATE invoices SET items = jsonb_set(items, '{0,quantity}', '\"2\"'), status = 'PAID',"
                        " escrow_id = %s WHERE id = %s", (escrow_of_other, other["id"]))  # fmt: skip
    assert status(owner_conn, invoice["id"]) == status(owner_conn, other["id"]) == "PENDING"


def test_a_stale_change_is_the_conflict_it_stands_for_not_an_error(owner_conn):
    invoice = new_invoice()
    with owner_conn.cursor() as cur:
        cur.execute("UPDATE invoices SET status = 'OVERDUE' WHERE id = %s", (invoice["id"],))

    def change(cur: Any) -> Any:
        # as if the overdue flag landed between this request's read and its write
        return store._write(cur, "UPDATE invoices i SET due_date = due_date + 1 WHERE i.id = %s", (invoice["id"],))

    with pytest.raises(errors.InvalidStateTransition):
        transaction(change)


# ------------------------------------------------------------------------------ the overdue job


def test_the_job_flags_pending_invoices_past_due_once_each_as_a_system_action(owner_conn):
    late, due_today, gone = new_invoice(), new_invoice(due_in_days=0), new_invoice()
    backdate(owner_conn, late["id"])
    backdate(owner_conn, gone["id"])
    with owner_conn.cursor() as cur:
        cur.execute("UPDATE invoices SET status = 'CANCELLED', deleted_at = now() WHERE id = %s", (gone["id"],))

    first = overdue.handler({"id": "evt-1"}, None)
    second = overdue.handler({"id": "evt-2"}, None)

    assert first["flagged"] >= 1 and second == {"flagged": 0}
    assert (status(owner_conn, late["id"]), status(owner_conn, due_today["id"]), status(owner_conn, gone["id"])) == (
        "OVERDUE", "PENDING", "CANCELLED",
    )  # fmt: skip
    with owner_conn.cursor() as cur:
        cur.execute(
            """SELECT action, category, actor_type, actor_id, payload_before, payload_after, subject_ids, metadata
                 FROM audit_log WHERE resource_type = 'invoice' AND resource_id = %s AND action = %s""",
            (late["id"], model.OVERDUE),
        )
        rows = cur.fetchall()
    [(action, category, actor_type, actor_id, before, after, subjects, metadata)] = rows
    assert (action, category, actor_type, actor_id) == ("invoice.overdue", "invoices", "system", None)
    assert (before, after) == ({"status": "PENDING"}, {"status": "OVERDUE"})
    assert {str(s) for s in subjects} == {late["seller_id"], late["buyer_id"]}
    assert metadata["number"] == late["number"]


def test_the_job_skips_an_invoice_locked_by_a_payment_and_flags_it_next_time(owner_conn, database_url):
    from ledgerline.db.connection import connect

    invoice = new_invoice()
    backdate(owner_conn, invoice["id"])
    holder = connect(database_url)
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT 1 FROM invoices WHERE id = %s FOR UPDATE", (invoice["id"],))
            started = datetime.now(UTC)
            overdue.handler({"id": "evt-locked"}, None)
            assert (datetime.now(UTC) - started).total_seconds() < 5  # skipped, not waited for
            assert status(owner_conn, invoice["id"]) == "PENDING"
        holder.rollback()
    finally:
        holder.close()

    overdue.handler({"id": "evt-free"}, None)

    assert status(owner_conn, invoice["id"]) == "OVERDUE"


def test_the_job_works_through_a_backlog_a_batch_per_transaction(owner_conn, monkeypatch):
    invoices = [new_invoice() for _ in range(5)]
    for invoice in invoices:
        backdate(owner_conn, invoice["id"], days=3)
    monkeypatch.setattr(store, "OVERDUE_BATCH", 2)

    result = overdue.handler({"id": "evt-backlog"}, None)

    assert result["flagged"] >= 5
    assert {status(owner_conn, i["id"]) for i in invoices} == {"OVERDUE"}


def test_an_unknown_invoice_id_reads_as_not_found(database_url):
    caller = Principal(uuid.uuid4(), "user")

    with pytest.raises(errors.NotFound):
        transaction(lambda cur: store.get(cur, caller, str(uuid.uuid4())), read_only=True)
