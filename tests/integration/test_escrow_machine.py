"""The escrow state machine against the real database, through the one money statement
(``money_call`` -> ``money_op`` -> ``escrow_transition``): every (state, target) pair of
the 7x7 machine, the money of each edge (the fee included), the refusals and what they
leave unchanged, the database's own guard, and that no other path moves an escrow's money.

The other escrow test modules (concurrency, property) import the helpers here."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest

from ledgerline import idempotency, jsonutil, routes
from ledgerline.auth import admission, sessions
from ledgerline.caller import Request
from ledgerline.db import transaction
from ledgerline.ledger import operations
from ledgerline.ledger.invariants import check_invariants
from ledgerline.ledger.sql import jsonb
from ledgerline.ledger.testing import create_user, new_wallet

CURRENCY = "KES"  # a fee schedule of its own (FEE), so other tests' NGN books are untouched
FEE = {"percent": Decimal("2.5"), "fixed": Decimal("0.10"), "minimum": Decimal("0.50"), "maximum": Decimal("50")}
STATUSES = ("AWAITING_PAYMENT", "FUNDED", "RELEASED", "REFUNDED", "DISPUTED", "RESOLVED_RELEASED", "RESOLVED_REFUNDED")
TERMINAL = ("RELEASED", "REFUNDED", "RESOLVED_RELEASED", "RESOLVED_REFUNDED")
# The machine as the issue states it: (from, to) -> who may take it.
EDGES = {
    ("AWAITING_PAYMENT", "FUNDED"): {"buyer"},
    ("FUNDED", "RELEASED"): {"buyer"},
    ("FUNDED", "REFUNDED"): {"seller"},
    ("FUNDED", "DISPUTED"): {"buyer", "seller"},
    ("DISPUTED", "RESOLVED_RELEASED"): {"admin"},
    ("DISPUTED", "RESOLVED_REFUNDED"): {"admin"},
}
# Each target and the route (operation) that asks for it, with the party that asks.
ASK = {
    "FUNDED": ("escrow_fund", "buyer"),
    "RELEASED": ("escrow_release", "buyer"),
    "REFUNDED": ("escrow_refund", "seller"),
    "DISPUTED": ("escrow_dispute", "buyer"),
    "RESOLVED_RELEASED": ("escrow_resolve", "admin"),
    "RESOLVED_REFUNDED": ("escrow_resolve", "admin"),
}
HANDLERS = {
    "escrow_open": "functions.escrow.escrows_create",
    "escrow_fund": "functions.escrow.escrows_fund",
    "escrow_release": "functions.escrow.escrows_release",
    "escrow_refund": "functions.escrow.escrows_refund",
    "escrow_dispute": "functions.escrow.escrows_dispute",
    "escrow_resolve": "functions.escrow.admin_escrows_resolve",
}


# ------------------------------------------------------------------------------ helpers


def one(query: str, *params: Any) -> dict[str, Any]:
    def read(cur):
        cur.execute(query, params)
        return cur.fetchone()

    return transaction(read)


_ADMITTED: dict[tuple[Any, str], Any] = {}


def admitted(user_id, op: str):
    """The admission of ``user_id`` to ``op``'s route (a live session; one per user and route)."""
    if (user_id, op) in _ADMITTED:
        return _ADMITTED[(user_id, op)]
    route = routes.by_handler(HANDLERS[op])
    amr = ["pwd", "otp"] if route.access is routes.Access.ADMIN else ["pwd"]
    session_id, _ = transaction(lambda cur: sessions.create_session(cur, user_id, sessions.Client(), amr=amr))
    claims = {"typ": "access", "sub": str(user_id), "jti": str(uuid.uuid4()), "sid": str(session_id), "amr": amr}
    _ADMITTED[(user_id, op)] = admission.prepare(route, Request("r", "192.0.2.9", "tests", {}, None), claims), route
    return _ADMITTED[(user_id, op)]


def call(user_id, op: str, args: dict[str, Any], *, key: uuid.UUID | None = None, adm: Any = None):
    """One money request of ``user_id`` (admitted as the route's Endpoint would) -> (status, body)."""
    prepared, route = admitted(user_id, op) if adm is None else adm
    owner = user_id if route.access is routes.Access.USER else None
    full = operations.by_name(op).arguments(args, owner=owner)
    out = idempotency.call(
        prepared, key=key or uuid.uuid4(), request_hash=jsonutil.canonical(args)[:64], operation=op, args=full
    )
    return out.status, jsonutil.loads(out.body)


class Deal:
    """A buyer with a funded wallet, a seller with a wallet, and an administrator."""

    def __init__(self, funds: str | int = 1000, currency: str = CURRENCY, seller_wallet: bool = True):
        self.currency = currency
        self.buyer_wallet = new_wallet(currency, funds)
        self.buyer = self.buyer_wallet.owner_id
        self.seller_wallet = new_wallet(currency, 0) if seller_wallet else None
        self.seller = self.seller_wallet.owner_id if self.seller_wallet else transaction(create_user)
        self.admin = transaction(lambda cur: create_user(cur, "admin"))

    def who(self, party: str):
        return {"buyer": self.buyer, "seller": self.seller, "admin": self.admin}[party]

    def open(self, amount: str = "200.00") -> dict[str, Any]:
        status, body = call(
            self.buyer,
            "escrow_open",
            {"seller_id": str(self.seller), "amount": amount, "currency": self.currency, "description": "a bicycle"},
        )
        assert status == 201, body
        return body

    def ask(self, escrow_id: str, target: str, party: str | None = None, **extra: Any):
        op, default_party = ASK[target]
        args: dict[str, Any] = {"escrow_id": escrow_id}
        if op == "escrow_fund":
            args["account_id"] = str(self.buyer_wallet.id)
        if op in ("escrow_dispute", "escrow_resolve"):
            args["reason"] = "the goods never arrived"
        if op == "escrow_resolve":
            args["outcome"] = "release" if target == "RESOLVED_RELEASED" else "refund"
        return call(self.who(party or default_party), op, {**args, **extra})

    def reach(self, status: str, amount: str = "200.00") -> dict[str, Any]:
        """A new escrow of this deal, moved to ``status`` through the routes."""
        escrow = self.open(amount)
        path = {
            "AWAITING_PAYMENT": [],
            "FUNDED": ["FUNDED"],
            "RELEASED": ["FUNDED", "RELEASED"],
            "REFUNDED": ["FUNDED", "REFUNDED"],
            "DISPUTED": ["FUNDED", "DISPUTED"],
            "RESOLVED_RELEASED": ["FUNDED", "DISPUTED", "RESOLVED_RELEASED"],
            "RESOLVED_REFUNDED": ["FUNDED", "DISPUTED", "RESOLVED_REFUNDED"],
        }[status]
        for target in path:
            code, escrow = self.ask(escrow["id"], target)
            assert code == 200, escrow
        assert escrow["status"] == status
        return escrow


def posted(account_id) -> Decimal:
    """An account's posted balance, its unfolded deltas included (a hot account's)."""
    row = one(
        """
        SELECT b.posted + coalesce((SELECT sum(d.amount) FROM balance_deltas d WHERE d.account_id = b.account_id), 0)
               AS posted
          FROM balances b WHERE b.account_id = %s
        """,
        account_id,
    )
    return Decimal(row["posted"])


def fees_account(currency: str = CURRENCY):
    return one("SELECT id FROM accounts WHERE kind = 'fees_revenue' AND currency = %s", currency)["id"]


def escrow_row(escrow_id) -> dict[str, Any]:
    return one("SELECT escrow_json(e) AS body, a.status AS account_status FROM escrows e "
               "JOIN accounts a ON a.id = e.account_id WHERE e.id = %s", escrow_id)  # fmt: skip


def audit_count(action: str, escrow_id) -> int:
    """Audit rows of ``action`` about the escrow: a success names it, a refusal's request does."""
    return one(
        """
        SELECT count(*) AS n FROM audit_log
         WHERE action = %s AND (resource_id = %s OR metadata->'request'->>'escrow_id' = %s)
        """,
        action,
        str(escrow_id),
        str(escrow_id),
    )["n"]


def books(deal: Deal, escrow: dict[str, Any]) -> dict[str, Decimal]:
    return {
        "buyer": posted(deal.buyer_wallet.id),
        "seller": posted(deal.seller_wallet.id) if deal.seller_wallet else Decimal(0),
        "escrow": posted(escrow["account_id"]),
        "fees": posted(fees_account(deal.currency)),
    }


def expected_fee(amount: Decimal) -> Decimal:
    raw = amount * FEE["percent"] / 100 + FEE["fixed"]
    fee = min(max(raw, FEE["minimum"]), FEE["maximum"]).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
    return min(fee, amount)


@pytest.fixture(scope="module", autouse=True)
def fee_schedule(database_url):
    """The fee of escrow releases in CURRENCY, for this module's tests (owner: the schedule
    is written by administrators' routines, never by the application role)."""
    from ledgerline.db.connection import connect

    conn = connect(database_url, autocommit=True)
    with conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO fee_schedules (currency, transaction_kind, percent, fixed, minimum, maximum)
            VALUES (%(c)s, 'escrow_release', %(percent)s, %(fixed)s, %(minimum)s, %(maximum)s)
            ON CONFLICT (currency, transaction_kind) DO UPDATE
               SET percent = EXCLUDED.percent, fixed = EXCLUDED.fixed, minimum = EXCLUDED.minimum,
                   maximum = EXCLUDED.maximum
            """,
            {"c": CURRENCY, **FEE},
        )
    yield
    with conn.cursor() as cur:
        cur.execute(
            "DELETE FROM fee_schedules WHERE currency = %s AND transaction_kind = 'escrow_release'", (CURRENCY,)
        )
    conn.close()


# ------------------------------------------------------------------------------ the machine


def test_the_machine_in_the_database_is_the_issues(database_url):
    def read(cur):
        cur.execute("SELECT from_status, to_status, parties FROM escrow_transitions")
        return {(r["from_status"], r["to_status"]): set(r["parties"]) for r in cur.fetchall()}

    assert transaction(read) == EDGES


@pytest.mark.parametrize("state", STATUSES)
def test_every_target_from_each_state_moves_the_right_money_or_is_refused_and_moves_nothing(database_url, state):
    deal = Deal(funds=10_000)
    amount = Decimal("200.00")
    for target in STATUSES:
        escrow = deal.reach(state, str(amount))
        before, row_before = books(deal, escrow), escrow_row(escrow["id"])
        edge = (state, target)
        if target == "AWAITING_PAYMENT":  # no route leads back there: the routine itself refuses it
            for party in ("buyer", "seller", "admin"):
                refusal = _transition_directly(escrow["id"], target, deal, party)
                assert refusal["status"] == 409 and refusal["code"] == "invalid_state_transition"
                assert "AWAITING_PAYMENT" not in refusal["allowed_transitions"]
            assert books(deal, escrow) == before and escrow_row(escrow["id"]) == row_before
            continue

        op, party = ASK[target]
        done, failed = operations.by_name(op).done, operations.by_name(op).failed
        status, body = deal.ask(escrow["id"], target)
        after = books(deal, escrow)
        if edge in EDGES:
            assert status == 200, (edge, body)
            assert body["status"] == target
            moved = {k: after[k] - before[k] for k in after}
            fee = expected_fee(amount)
            if target == "FUNDED":
                assert moved == {"buyer": -amount, "seller": 0, "escrow": amount, "fees": 0}
            elif target in ("RELEASED", "RESOLVED_RELEASED"):
                assert moved == {"buyer": 0, "seller": amount - fee, "escrow": -amount, "fees": fee}
                assert body["fee"] == {"amount": str(fee), "currency": CURRENCY}
                assert Decimal(body["seller_amount"]["amount"]) + fee == amount
            elif target in ("REFUNDED", "RESOLVED_REFUNDED"):
                assert moved == {"buyer": amount, "seller": 0, "escrow": -amount, "fees": 0}
            else:  # DISPUTED moves nothing and opens the dispute
                assert moved == {"buyer": 0, "seller": 0, "escrow": 0, "fees": 0}
                assert body["dispute"]["status"] == "open" and body["dispute"]["raised_by"] == str(deal.buyer)
            row = escrow_row(escrow["id"])
            assert row["account_status"] == ("closed" if target in TERMINAL else "active")
            if target in TERMINAL:
                assert after["escrow"] == 0
            if target.startswith("RESOLVED"):
                assert body["dispute"]["status"] == "resolved" and body["dispute"]["resolved_by"] == str(deal.admin)
            assert audit_count(done, escrow["id"]) == 1
            assert audit_count(failed, escrow["id"]) == 0
        else:
            assert status == 409, (edge, body)
            assert body["code"] == "invalid_state_transition"
            assert body["allowed_transitions"] == sorted(
                to for (frm, to), parties in EDGES.items() if frm == state and party in parties
            )
            assert after == before
            assert escrow_row(escrow["id"]) == row_before
            assert audit_count(failed, escrow["id"]) == 1
            assert audit_count(done, escrow["id"]) == _done_on_the_way(state, done)
    assert transaction(check_invariants) == []


def _done_on_the_way(state: str, done: str) -> int:
    """How many rows of ``done`` reaching ``state`` wrote (the walk's own, before the try)."""
    on_the_way = {
        "FUNDED": ["escrow.funded"],
        "RELEASED": ["escrow.funded", "escrow.released"],
        "REFUNDED": ["escrow.funded", "escrow.refunded"],
        "DISPUTED": ["escrow.funded", "dispute.raised"],
        "RESOLVED_RELEASED": ["escrow.funded", "dispute.raised", "dispute.resolved"],
        "RESOLVED_REFUNDED": ["escrow.funded", "dispute.raised", "dispute.resolved"],
    }.get(state, [])
    return on_the_way.count(done)


def _transition_directly(escrow_id, target: str, deal: Deal, party: str) -> dict[str, Any]:
    actor = {"id": str(deal.who(party)), "type": "admin" if party == "admin" else "user"}
    args = {"party_id": None if party == "admin" else str(deal.who(party))}

    def run(cur):
        cur.execute(
            "SELECT escrow_transition(p_escrow => %s, p_to => %s, p_args => %s, p_actor => %s, p_audit => %s) AS r",
            (escrow_id, target, jsonb(args), jsonb(actor), jsonb({"action": "escrow.funded", "category": "escrow"})),
        )
        return cur.fetchone()["r"]

    return transaction(run)["refusal"]
