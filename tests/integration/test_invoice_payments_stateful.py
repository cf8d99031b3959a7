"""Property: for random sequences of invoice actions (create, reprice, delete, flag
overdue, pay, pay again) against a wallet of random funds, through the money statement
itself (``money_call``), the database always agrees with a plain model:

* every answer is the one the model predicts (200, 404, 409 insufficient_funds or
  invalid_state_transition);
* the buyer's wallet holds its funds less exactly the amounts of the paid invoices;
* a paid invoice has exactly one escrow, FUNDED, whose own account holds exactly its
  amount; an unpaid one has none (a refused payment leaves no escrow behind);
* every currency still sums to zero across the ledger.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledgerline import idempotency, jsonutil, money, routes
from ledgerline.auth import admission, sessions
from ledgerline.caller import Principal, Request
from ledgerline.db import transaction
from ledgerline.invoices import store
from ledgerline.invoices.schemas import CreateInvoice, UpdateInvoice
from ledgerline.ledger import operations
from ledgerline.ledger.testing import create_user, new_wallet, user_actor

PAY = routes.by_handler("functions.invoices.invoices_pay")

cents = st.integers(min_value=1, max_value=500_000)
actions = st.lists(
    st.one_of(
        st.tuples(st.just("pay"), st.integers(0, 3)),
        st.tuples(st.just("reprice"), st.integers(0, 3), cents),
        st.tuples(st.just("delete"), st.integers(0, 3)),
        st.tuples(st.just("overdue"), st.integers(0, 3)),
    ),
    min_size=1,
    max_size=12,
)


def pay(buyer: Any, invoice_id: str, account_id: uuid.UUID) -> tuple[int, dict[str, Any]]:
    session_id, _ = transaction(lambda cur: sessions.create_session(cur, buyer, sessions.Client(), amr=["pwd"]))
    claims = {"typ": "access", "sub": str(buyer), "jti": str(uuid.uuid4()), "sid": str(session_id), "amr": ["pwd"]}
    adm = admission.prepare(PAY, Request("r", "192.0.2.7", "tests", {}, None), claims)
    args = {"invoice_id": invoice_id, "account_id": str(account_id)}
    outcome = idempotency.call(
        adm, key=uuid.uuid4(), request_hash=jsonutil.canonical(args)[:64], operation="invoice_pay",
        args=operations.by_name("invoice_pay").arguments(args, owner=buyer),
    )  # fmt: skip
    return outcome.status, jsonutil.loads(outcome.body)


def items(amount_cents: int) -> list[dict[str, Any]]:
    return [{"description": "goods", "quantity": 1, "unit_price": str(money.from_minor(amount_cents, "NGN"))}]


def read(query: str, *params: Any) -> list[dict[str, Any]]:
    def work(cur: Any) -> list[dict[str, Any]]:
        cur.execute(query, params)
        return [dict(r) for r in cur.fetchall()]

    return transaction(work, read_only=True)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(funds=st.integers(0, 1_000_000), amounts=st.lists(cents, min_size=1, max_size=4), steps=actions)
def test_random_invoice_sequences_keep_the_money_where_the_model_says(database_url, funds, amounts, steps):
    wallet = new_wallet("NGN", money.from_minor(funds, "NGN"))
    buyer = wallet.owner_id
    seller = transaction(lambda cur: create_user(cur, "merchant"))
    seller_p, actor = Principal(seller, "merchant"), user_actor(seller, "merchant")
    due = datetime.now(UTC).date() + timedelta(days=3)

    def create(cents_: int) -> str:
        body = CreateInvoice.model_validate(
            {"buyer_id": buyer, "currency": "NGN", "items": items(cents_), "due_date": due}
        )
        return str(transaction(lambda cur: store.create(cur, seller_p, body, actor)).id)

    ids = [create(a) for a in amounts]
    model = {i: {"status": "PENDING", "amount": a} for i, a in zip(ids, amounts, strict=True)}
    left = funds

    for step in steps:
        if step[1] >= len(ids):
            continue
        invoice_id = ids[step[1]]
        m = model[invoice_id]
        if step[0] == "pay":
            status, body = pay(buyer, invoice_id, wallet.id)
            if m["status"] == "CANCELLED":
                assert (status, body["code"]) == (404, "not_found")
            elif m["status"] == "PAID":
                assert (status, body["code"]) == (409, "invalid_state_transition")
            elif m["amount"] > left:
                assert (status, body["code"]) == (409, "insufficient_funds")
            else:
                assert status == 200, body
                m["status"], left = "PAID", left - m["amount"]
        elif step[0] == "reprice" and m["status"] == "PENDING":
            change = UpdateInvoice.model_validate({"items": items(step[2])})
            transaction(lambda cur, i=invoice_id, c=change: store.update(cur, seller_p, uuid.UUID(i), c, actor))
            m["amount"] = step[2]
        elif step[0] == "delete" and m["status"] in ("PENDING", "OVERDUE"):
            transaction(lambda cur, i=invoice_id: store.delete(cur, seller_p, uuid.UUID(i), actor))
            m["status"] = "CANCELLED"
        elif step[0] == "overdue" and m["status"] == "PENDING":
            transaction(lambda cur: store.mark_overdue(cur, today=due + timedelta(days=1)))
            for other in model.values():  # the sweep flags every one of them past due
                if other["status"] == "PENDING":
                    other["status"] = "OVERDUE"

    rows = read(
        """SELECT i.id::text, i.status, i.amount, e.status AS escrow_status, e.amount AS escrowed, b.posted AS held,
                  (SELECT count(*) FROM escrows x WHERE x.invoice_id = i.id) AS escrows
             FROM invoices i LEFT JOIN escrows e ON e.id = i.escrow_id LEFT JOIN balances b ON b.account_id = e.account_id
            WHERE i.id = ANY(%s::uuid[])""",
        ids,
    )  # fmt: skip
    for r in rows:
        m = model[r["id"]]
        assert (r["status"], r["amount"]) == (m["status"], money.from_minor(m["amount"], "NGN"))
        if m["status"] == "PAID":
            assert (r["escrows"], r["escrow_status"]) == (1, "FUNDED")
            assert r["escrowed"] == r["held"] == r["amount"]
        else:
            assert (r["escrows"], r["escrow_status"]) == (0, None)
    [wallet_now] = read("SELECT posted, held FROM balances WHERE account_id = %s", wallet.id)
    assert (wallet_now["posted"], wallet_now["held"]) == (money.from_minor(left, "NGN"), Decimal(0))
    assert read(
        "SELECT currency, sum(amount) AS total FROM entries GROUP BY currency HAVING sum(amount) <> 0"
    ) == []  # fmt: skip
