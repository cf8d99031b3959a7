"""A stateful property test of escrows: random sequences of opening, funding (from the
buyer's wallet or another's), releasing, refunding, disputing and resolving escrows
between two buyers and two sellers, every request through the money statement, against a
simple model. After every step each wallet, the fees account and every escrow account
equal the model; money is conserved (what buyers paid in = held + released + refunded +
fees); a terminal escrow's account is zero and closed. At the end the ledger check is
clean."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from ledgerline.db import transaction
from ledgerline.ledger.invariants import check_invariants
from ledgerline.ledger.testing import create_user, new_wallet
from tests.integration.test_escrow_machine import (
    CURRENCY,
    call,
    expected_fee,
    fee_schedule,  # noqa: F401  (the fee of releases in CURRENCY)
    fees_account,
    one,
    posted,
)

amounts = st.integers(min_value=1, max_value=400_00).map(lambda c: Decimal(c) / 100)
party = st.integers(min_value=0, max_value=1)
pick = st.integers(min_value=0, max_value=50)  # an escrow, modulo how many there are
TERMINAL = {"RELEASED", "REFUNDED", "RESOLVED_RELEASED", "RESOLVED_REFUNDED"}


class EscrowMachine(RuleBasedStateMachine):
    @initialize(funding=st.lists(st.integers(min_value=0, max_value=600_00), min_size=2, max_size=2))
    def people(self, funding: list[int]) -> None:
        self.buyers = [new_wallet(CURRENCY, Decimal(f) / 100) for f in funding]
        self.sellers = [new_wallet(CURRENCY, 0) for _ in range(2)]
        self.admin = transaction(lambda cur: create_user(cur, "admin"))
        self.fees = fees_account()
        self.fees_start = posted(self.fees)
        self.wallet = {w.id: Decimal(f) / 100 for w, f in zip(self.buyers, funding, strict=True)}
        self.wallet |= {w.id: Decimal(0) for w in self.sellers}
        self.start = dict(self.wallet)
        self.paid_in = Decimal(0)
        self.fees_charged = Decimal(0)
        self.escrows: list[dict[str, Any]] = []  # {id, account, buyer, seller, amount, status, funded_from}

    # -- helpers -----------------------------------------------------------------------
    def escrow(self, k: int) -> dict[str, Any] | None:
        return self.escrows[k % len(self.escrows)] if self.escrows else None

    def expect_refused(self, status: int, body: dict[str, Any], e: dict[str, Any]) -> None:
        assert (status, body["code"]) == (409, "invalid_state_transition"), (e["status"], body)

    # -- rules ---------------------------------------------------------------------------
    @rule(b=party, s=party, amount=amounts)
    def open_escrow(self, b: int, s: int, amount: Decimal) -> None:
        buyer, seller = self.buyers[b], self.sellers[s]
        status, body = call(
            buyer.owner_id,
            "escrow_open",
            {"seller_id": str(seller.owner_id), "amount": str(amount), "currency": CURRENCY, "description": "goods"},
        )
        assert status == 201, body
        self.escrows.append({"id": body["id"], "account": body["account_id"], "buyer": buyer, "seller": seller,
                             "amount": amount, "status": "AWAITING_PAYMENT", "funded_from": None})  # fmt: skip

    @rule(k=pick, own=st.booleans())
    def fund(self, k: int, own: bool) -> None:
        e = self.escrow(k)
        if e is None:
            return
        wallet = e["buyer"] if own else next(w for w in self.buyers if w.id != e["buyer"].id)
        status, body = call(e["buyer"].owner_id, "escrow_fund", {"escrow_id": e["id"], "account_id": str(wallet.id)})
        if e["status"] != "AWAITING_PAYMENT":
            self.expect_refused(status, body, e)
        elif not own:
            assert (status, body["code"]) == (404, "not_found")
        elif self.wallet[wallet.id] < e["amount"]:
            assert (status, body["code"]) == (409, "insufficient_funds")
        else:
            assert status == 200, body
            self.wallet[wallet.id] -= e["amount"]
            self.paid_in += e["amount"]
            e["status"], e["funded_from"] = "FUNDED", wallet.id

    def settle(self, e: dict[str, Any], outcome: str, status: str) -> None:
        if outcome == "release":
            fee = expected_fee(e["amount"])
            self.wallet[e["seller"].id] += e["amount"] - fee
            self.fees_charged += fee
        else:
            self.wallet[e["funded_from"]] += e["amount"]
        e["status"] = status

    @rule(k=pick)
    def release(self, k: int) -> None:
        e = self.escrow(k)
        if e is None:
            return
        status, body = call(e["buyer"].owner_id, "escrow_release", {"escrow_id": e["id"]})
        if e["status"] != "FUNDED":
            self.expect_refused(status, body, e)
            return
        assert status == 200, body
        self.settle(e, "release", "RELEASED")

    @rule(k=pick)
    def refund(self, k: int) -> None:
        e = self.escrow(k)
        if e is None:
            return
        status, body = call(e["seller"].owner_id, "escrow_refund", {"escrow_id": e["id"]})
        if e["status"] != "FUNDED":
            self.expect_refused(status, body, e)
            return
        assert status == 200, body
        self.settle(e, "refund", "REFUNDED")

    @rule(k=pick, by_seller=st.booleans())
    def dispute(self, k: int, by_seller: bool) -> None:
        e = self.escrow(k)
        if e is None:
            return
        who = e["seller"] if by_seller else e["buyer"]
        status, body = call(who.owner_id, "escrow_dispute", {"escrow_id": e["id"], "reason": "not as described"})
        if e["status"] != "FUNDED":
            self.expect_refused(status, body, e)
            return
        assert status == 200, body
        e["status"] = "DISPUTED"

    @rule(k=pick, outcome=st.sampled_from(["release", "refund"]))
    def resolve(self, k: int, outcome: str) -> None:
        e = self.escrow(k)
        if e is None:
            return
        status, body = call(
            self.admin, "escrow_resolve", {"escrow_id": e["id"], "outcome": outcome, "reason": "decided on evidence"}
        )
        if e["status"] != "DISPUTED":
            self.expect_refused(status, body, e)
            return
        assert status == 200, body
        self.settle(e, outcome, "RESOLVED_RELEASED" if outcome == "release" else "RESOLVED_REFUNDED")

    # -- invariants ----------------------------------------------------------------------
    @invariant()
    def books_match_the_model_and_money_is_conserved(self) -> None:
        if not hasattr(self, "wallet"):
            return
        for account_id, expected in self.wallet.items():
            assert posted(account_id) == expected, account_id
        assert posted(self.fees) - self.fees_start == self.fees_charged
        held = Decimal(0)
        for e in self.escrows:
            row = one("SELECT e.status, a.status AS account_status FROM escrows e JOIN accounts a ON a.id = e.account_id "
                      "WHERE e.id = %s", e["id"])  # fmt: skip
            assert row["status"] == e["status"]
            balance = posted(e["account"])
            if e["status"] in TERMINAL:
                assert balance == 0 and row["account_status"] == "closed"
            else:
                assert row["account_status"] == "active"
                assert balance == (0 if e["status"] == "AWAITING_PAYMENT" else e["amount"])
            held += balance
        released = sum(
            (e["amount"] - expected_fee(e["amount"]) for e in self.escrows if e["status"].endswith("RELEASED")),
            Decimal(0),
        )
        refunded = sum((e["amount"] for e in self.escrows if e["status"].endswith("REFUNDED")), Decimal(0))
        assert held + released + refunded + self.fees_charged == self.paid_in
        # and the ledger agrees: what left the buyers is held, or reached the sellers and the fees
        sellers = sum((posted(w.id) for w in self.sellers), Decimal(0))
        buyers_out = sum((self.start[w.id] - posted(w.id) for w in self.buyers), Decimal(0))
        assert buyers_out == held + sellers + (posted(self.fees) - self.fees_start)

    def teardown(self) -> None:
        if hasattr(self, "wallet"):
            assert transaction(check_invariants) == []


EscrowMachine.TestCase.settings = settings(
    max_examples=12,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.mark.slow
class TestEscrowProperty(EscrowMachine.TestCase):
    @pytest.fixture(autouse=True)
    def _database(self, database_url):
        return database_url
