"""Property: for random sequences of invoice and escrow actions (create, reprice,
delete, flag overdue, pay, pay again; then the buyer releasing or the seller refunding the
invoice's escrow) against a wallet of random funds, through the money statement itself
(``money_call``), the database always agrees with a plain model:

* every answer is the one the model predicts (200, 404, 409 insufficient_funds or
  invalid_state_transition);
* money is conserved: what the buyer paid in = what the escrows still hold + what the
  seller was paid + the fees + what was refunded; the buyer's wallet holds its funds less
  what it paid plus its refunds, the seller's what was released less the fees;
* a paid invoice has exactly one escrow, whose own account holds its amount while FUNDED
  and zero (closed) once released or refunded; an unpaid one has none (a refused payment
  leaves no escrow behind);
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
ESCROW = {  # the escrow engine's own edges, as its routes run them
    "release": (routes.by_handler("functions.escrow.escrows_release"), "escrow_release", "RELEASED"),
    "refund": (routes.by_handler("functions.escrow.escrows_refund"), "escrow_refund", "REFUNDED"),
}

cents = st.integers(min_value=1, max_value=500_000)
actions = st.lists(
    st.one_of(
        st.tuples(st.just("pay"), st.integers(0, 3)),
        st.tuples(st.just("reprice"), st.integers(0, 3), cents),
        st.tuples(st.just("delete"), st.integers(0, 3)),
        st.tuples(st.just("overdue"), st.integers(0, 3)),
        st.tuples(st.just("release"), st.integers(0, 3)),
        st.tuples(st.just("refund"), st.integers(0, 3)),
    ),
    min_size=4,
    max_size=16,
)


def request(user: Any, route: routes.Route, op: str, args: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """One money request of ``user``, as its route's Endpoint runs it below HTTP."""
    session_id, _ = transaction(lambda cur: sessions.create_session(cur, user, sessions.Client(), amr=["pwd"]))
    claims = {"typ": "access", "sub": str(user), "jti": str(uuid.uuid4()), "sid": str(session_id), "amr": ["pwd"]}
    adm = admission.prepare(route, Request("r", "192.0.2.7", "tests", {}, None), claims)
    outcome = idempotency.call(
        adm, key=uuid.uuid4(), request_hash=jsonutil.canonical(args)[:64], operation=op,
        args=operations.by_name(op).arguments(args, owner=user),
    )  # fmt: skip
    return outcome.status, jsonutil.loads(outcome.body)


def pay(buyer: Any, invoice_id: str, account_id: uuid.UUID) -> tuple[int, dict[str, Any]]:
    return request(buyer, PAY, "invoice_pay", {"invoice_id": invoice_id, "account_id": str(account_id)})


def cash(cents_: int) -> Decimal:
    return money.from_minor(cents_, "NGN")


def items(amount_cents: int) -> list[dict[str, Any]]:
    return [{"description": "goods", "quantity": 1, "unit_price": str(cash(amount_cents))}]


def read(query: str, *params: Any) -> list[dict[str, Any]]:
    def work(cur: Any) -> list[dict[str, Any]]:
        cur.execute(query, params)
        return [dict(r) for r in cur.fetchall()]

    return transaction(work, read_only=True)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(funds=st.integers(0, 1_000_000), amounts=st.lists(cents, min_size=1, max_size=4), steps=actions)
def test_random_invoice_sequences_keep_the_money_where_the_model_says(database_url, funds, amounts, steps):
    wallet = new_wallet("NGN", cash(funds))
    buyer = wallet.owner_id
    seller = transaction(lambda cur: create_user(cur, "merchant"))
    seller_wallet = new_wallet("NGN", owner_id=seller)  # where a release pays the seller
    seller_p, actor = Principal(seller, "merchant"), user_actor(seller, "merchant")
    due = datetime.now(UTC).date() + timedelta(days=3)

    def create(cents_: int) -> str:
        body = CreateInvoice.model_validate(
            {"buyer_id": buyer, "currency": "NGN", "items": items(cents_), "due_date": due}
        )
        return str(transaction(lambda cur: store.create(cur, seller_p, body, actor)).id)

    ids = [create(a) for a in amounts]
    model = {i: {"status": "PENDING", "amount": a, "escrow": None} for i, a in zip(ids, amounts, strict=True)}
    left = funds
    escrow_ids: dict[str, str] = {}

    for step in steps:
        invoice_id = ids[step[1] % len(ids)]
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
                m["status"], m["escrow"], left = "PAID", "FUNDED", left - m["amount"]
                escrow_ids[invoice_id] = body["escrow_id"]
        elif step[0] in ESCROW and invoice_id in escrow_ids:
            route, op, reached = ESCROW[step[0]]
            who = buyer if step[0] == "release" else seller
            status, body = request(who, route, op, {"escrow_id": escrow_ids[invoice_id]})
            if m["escrow"] == "FUNDED":
                assert status == 200, body
                m["escrow"] = reached
                if reached == "REFUNDED":
                    left += m["amount"]
            else:
                assert (status, body["code"]) == (409, "invalid_state_transition")
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
        """SELECT i.id::text, i.status, i.amount, e.status AS escrow_status, e.amount AS escrowed, e.fee,
                  b.posted AS held, a.status AS account_status,
                  (SELECT count(*) FROM escrows x WHERE x.invoice_id = i.id) AS escrows
             FROM invoices i LEFT JOIN escrows e ON e.id = i.escrow_id LEFT JOIN balances b ON b.account_id = e.account_id
             LEFT JOIN accounts a ON a.id = e.account_id
            WHERE i.id = ANY(%s::uuid[])""",
        ids,
    )  # fmt: skip
    paid_in = held = released = fees = refunded = Decimal(0)
    for r in rows:
        m = model[r["id"]]
        assert (r["status"], r["amount"]) == (m["status"], cash(m["amount"]))
        if m["status"] != "PAID":
            assert (r["escrows"], r["escrow_status"]) == (0, None)
            continue
        assert (r["escrows"], r["escrow_status"], r["escrowed"]) == (1, m["escrow"], r["amount"])
        paid_in += r["amount"]
        held += r["held"]
        if m["escrow"] == "FUNDED":
            assert (r["held"], r["account_status"]) == (r["amount"], "active")
        else:
            assert (r["held"], r["account_status"]) == (0, "closed")
        if m["escrow"] == "RELEASED":
            released, fees = released + r["amount"] - r["fee"], fees + r["fee"]
        if m["escrow"] == "REFUNDED":
            refunded += r["amount"]
    assert paid_in == held + released + fees + refunded
    [buyer_now] = read("SELECT posted, held FROM balances WHERE account_id = %s", wallet.id)
    assert (buyer_now["posted"], buyer_now["held"]) == (cash(left), Decimal(0))
    assert buyer_now["posted"] == cash(funds) - paid_in + refunded
    [seller_now] = read("SELECT posted FROM balances WHERE account_id = %s", seller_wallet.id)
    assert seller_now["posted"] == released
    assert read(
        "SELECT currency, sum(amount) AS total FROM entries GROUP BY currency HAVING sum(amount) <> 0"
    ) == []  # fmt: skip
