"""A stateful property test: random transfers (with and without fees), holds,
captures, voids, expiries, reversals and folds against a simple model. After every
step every invariant holds, every balance equals the model, and the balance at past
instants equals the sum of the entries up to that instant."""

from __future__ import annotations

import os
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from ledgerline import errors, ledger
from ledgerline.db import transaction
from ledgerline.ledger import Leg
from ledgerline.ledger.testing import TEST_ADMIN, new_wallet, user_actor

CURRENCY = "USD"
WALLETS = 4
cents = st.integers(min_value=1, max_value=150_00).map(lambda c: Decimal(c) / 100)
wallet_index = st.integers(min_value=0, max_value=WALLETS - 1)


def db_now():
    def read(cur):
        cur.execute("SELECT clock_timestamp() AS t")
        return cur.fetchone()["t"]

    return transaction(read)


class LedgerMachine(RuleBasedStateMachine):
    @initialize(funding=st.lists(st.integers(min_value=0, max_value=300_00), min_size=WALLETS, max_size=WALLETS))
    def open_wallets(self, funding):
        self.wallets = [new_wallet(CURRENCY, Decimal(f) / 100) for f in funding]
        self.fees = transaction(lambda cur: ledger.system_account(cur, "fees_revenue", CURRENCY))
        self.posted = {w.id: Decimal(f) / 100 for w, f in zip(self.wallets, funding, strict=True)}
        self.held = {w.id: Decimal(0) for w in self.wallets}
        self.fees_posted = self.fees.balance.posted
        self.holds: list[dict] = []  # {id, account, amount, status, expires_at}
        self.reversible: list[dict] = []  # {id, legs: {account: amount}} not yet reversed
        self.history: list[tuple] = [(db_now(), dict(self.posted))]

    # -- helpers -----------------------------------------------------------------------
    def available(self, account_id):
        return self.posted[account_id] - self.held[account_id]

    def apply(self, legs):
        for account_id, amount in legs.items():
            if account_id == self.fees.id:
                self.fees_posted += amount
            else:
                self.posted[account_id] += amount

    def snapshot(self):
        self.history.append((db_now(), dict(self.posted)))

    # -- rules ---------------------------------------------------------------------------
    @rule(src=wallet_index, dst=wallet_index, amount=cents)
    def transfer(self, src, dst, amount):
        a, b = self.wallets[src], self.wallets[dst]

        def post(cur):
            return ledger.transfer(
                cur,
                from_account_id=a.id,
                to_account_id=b.id,
                amount=amount,
                currency=CURRENCY,
                actor=user_actor(a.owner_id),
            )

        if src == dst:
            with pytest.raises(errors.ValidationFailed):
                transaction(post)
            return
        if self.available(a.id) < amount:
            with pytest.raises(errors.InsufficientFunds):
                transaction(post)
            return
        t = transaction(post)
        legs = {a.id: -amount, b.id: amount}
        self.apply(legs)
        self.reversible.append({"id": t.id, "legs": legs})
        self.snapshot()

    @rule(src=wallet_index, dst=wallet_index, amount=cents, fee_cents=st.integers(min_value=1, max_value=500))
    def transfer_with_fee(self, src, dst, amount, fee_cents):
        a, b = self.wallets[src], self.wallets[dst]
        fee = Decimal(fee_cents) / 100
        if src == dst:
            return
        legs = {a.id: -(amount + fee), b.id: amount, self.fees.id: fee}

        def post(cur):
            return ledger.post_transaction(
                cur,
                kind="transfer_with_fee",
                legs=[Leg(k, v, CURRENCY) for k, v in legs.items()],
                actor=user_actor(a.owner_id),
            )

        if self.available(a.id) < amount + fee:
            with pytest.raises(errors.InsufficientFunds):
                transaction(post)
            return
        t = transaction(post)
        self.apply(legs)
        self.reversible.append({"id": t.id, "legs": legs})
        self.snapshot()

    @rule(i=wallet_index, amount=cents, expires_in=st.integers(min_value=60, max_value=120))
    def place_hold(self, i, amount, expires_in):
        w = self.wallets[i]

        def place(cur):
            return ledger.create_hold(
                cur,
                account_id=w.id,
                amount=amount,
                currency=CURRENCY,
                expires_in_seconds=expires_in,
                actor=user_actor(w.owner_id),
            )

        if self.available(w.id) < amount:
            with pytest.raises(errors.InsufficientFunds):
                transaction(place)
            return
        hold = transaction(place)
        self.held[w.id] += amount
        self.holds.append(
            {"id": hold.id, "account": w.id, "amount": amount, "status": "active", "expires_at": hold.expires_at}
        )

    @precondition(lambda self: self.holds)
    @rule(h=st.integers(min_value=0), to=wallet_index, part=st.integers(min_value=1, max_value=100))
    def capture(self, h, to, part):
        hold = self.holds[h % len(self.holds)]
        target = self.wallets[to]
        amount = max(Decimal("0.01"), (hold["amount"] * part / 100).quantize(Decimal("0.01")))

        def run(cur):
            return ledger.capture_hold(cur, hold["id"], to_account_id=target.id, amount=amount, actor=TEST_ADMIN)

        if hold["status"] != "active":
            with pytest.raises(errors.InvalidStateTransition):
                transaction(run)
            return
        if target.id == hold["account"]:
            with pytest.raises(errors.ValidationFailed):
                transaction(run)
            return
        captured, t = transaction(run)
        assert (captured.status, captured.captured_amount) == ("posted", amount)
        hold["status"] = "posted"
        self.held[hold["account"]] -= hold["amount"]
        legs = {hold["account"]: -amount, target.id: amount}
        self.apply(legs)
        self.reversible.append({"id": t.id, "legs": legs})
        self.snapshot()

    @precondition(lambda self: self.holds)
    @rule(h=st.integers(min_value=0))
    def void(self, h):
        hold = self.holds[h % len(self.holds)]
        if hold["status"] != "active":
            with pytest.raises(errors.InvalidStateTransition):
                transaction(lambda cur: ledger.void_hold(cur, hold["id"], actor=TEST_ADMIN))
            return
        assert transaction(lambda cur: ledger.void_hold(cur, hold["id"], actor=TEST_ADMIN)).status == "voided"
        hold["status"] = "voided"
        self.held[hold["account"]] -= hold["amount"]

    @precondition(lambda self: self.holds)
    @rule(ahead=st.integers(min_value=0, max_value=150))
    def expire(self, ahead):
        # The sweep is told the time is `ahead` seconds from now: holds due by then expire.
        now = db_now() + timedelta(seconds=ahead)
        transaction(lambda cur: ledger.expire_due(cur, now=now, limit=10_000))
        for hold in self.holds:
            if hold["status"] == "active" and hold["expires_at"] <= now:
                hold["status"] = "expired"
                self.held[hold["account"]] -= hold["amount"]

    @precondition(lambda self: self.reversible)
    @rule(t=st.integers(min_value=0))
    def reverse(self, t):
        original = self.reversible[t % len(self.reversible)]
        mirror = {k: -v for k, v in original["legs"].items()}

        def run(cur):
            return ledger.reverse(cur, original["id"], reason="stateful test", actor=TEST_ADMIN)

        short = [k for k, v in mirror.items() if k != self.fees.id and self.available(k) + v < 0]
        if short:
            with pytest.raises(errors.InsufficientFunds):
                transaction(run)
            return
        reversal = transaction(run)
        assert reversal.reverses == original["id"]
        self.reversible.remove(original)
        self.apply(mirror)
        self.snapshot()
        with pytest.raises(errors.InvalidStateTransition):
            transaction(run)

    @rule()
    def fold(self):
        transaction(ledger.fold)

    # -- invariants ------------------------------------------------------------------------
    @invariant()
    def books_are_right(self):
        assert transaction(ledger.check_invariants) == []

    @invariant()
    def balances_match_the_model(self):
        for w in self.wallets:
            b = transaction(lambda cur, w=w: ledger.get_account(cur, w.id)).balance
            assert (b.posted, b.held) == (self.posted[w.id], self.held[w.id])
            assert b.available >= 0
        fees = transaction(lambda cur: ledger.get_account(cur, self.fees.id)).balance
        assert fees.posted == self.fees_posted

    @invariant()
    def balance_at_time_is_the_sum_of_entries_until_then(self):
        picks = {0, len(self.history) // 2, len(self.history) - 1}
        for index in sorted(picks):
            at, expected = self.history[index]

            def read(cur, at=at):
                out = {}
                for w in self.wallets:
                    account = ledger.get_account(cur, w.id)
                    cur.execute(
                        "SELECT coalesce(sum(amount), 0) AS s FROM entries WHERE account_id = %s AND created_at <= %s",
                        (w.id, at),
                    )
                    summed = cur.fetchone()["s"]
                    out[w.id] = (ledger.balance_at(cur, account, at), summed)
                return out

            for account_id, (at_value, summed) in transaction(read).items():
                assert at_value == summed == expected[account_id]


LedgerMachine.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.fixture(scope="module")
def own_ledger(database_url):
    """A database of this module's own, the library pointed at it. The invariants are
    checked over the whole ledger after every step (750 checks a run): on the run's shared
    database their cost followed whatever the tests before had written (12 s alone, 207 s
    after 50,000 entries), here it follows only the machine's own rows. Same checks."""
    from ledgerline import config
    from ledgerline.db import connection, testing

    url = testing.create_test_database(database_url)
    os.environ["DATABASE_URL"] = url
    config.settings.cache_clear()
    connection.reset_urls()
    try:
        yield url
    finally:
        os.environ["DATABASE_URL"] = database_url  # as the session's fixture set it
        config.settings.cache_clear()
        connection.reset_urls()
        testing.drop_database(url)


@pytest.mark.slow
class TestLedgerStateful(LedgerMachine.TestCase):
    @pytest.fixture(autouse=True)
    def _database(self, own_ledger):
        return own_ledger
