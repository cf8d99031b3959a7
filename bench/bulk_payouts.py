"""Bulk payouts (issue 19): payout items held and approved per second through ``POST
/v1/payouts/bulk`` and one administrator's ``POST /v1/admin/payouts/bulk/{id}/approve``
(each one money statement, as ``Endpoint.money`` runs it below HTTP), in bulk payouts of
100 and of 1,000 items, against single withdrawals to the same payout accounts, each
requested (``POST /v1/withdrawals``) and approved (``POST /v1/admin/withdrawals/{id}/approve``)
through the same path: by one serial client, round after round in the same run.

Either way every item ends as an approved withdrawal with its hold placed and pinned, one
audit row per step, and its payout queued; the gateway's side (the payout worker, the
webhooks) is not timed. Every bulk payout here waits for one administrator
(``LEDGERLINE_BULK_PAYOUT_APPROVAL_ITEMS=1``), so both sides take two statements.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from decimal import Decimal
from typing import Any

from bench import database, transfers
from bench.escrow import money
from bench.harness import Figure, interleaved

PAYEES = 20  # payout_accounts.MAX_LIVE: a merchant's live payout accounts


def _setup() -> dict[str, Any]:
    """A merchant (its wallet funded, its payout accounts added as the gateway resolved
    them) and an administrator with a second factor, each signed in."""
    from ledgerline.audit import Actor
    from ledgerline.auth import sessions
    from ledgerline.db import transaction
    from ledgerline.ledger import accounts
    from ledgerline.ledger.postings import Leg, post_transaction
    from ledgerline.ledger.testing import TEST_ADMIN, create_user, user_actor
    from ledgerline.payments import payout_accounts

    def work(cur: Any) -> dict[str, Any]:
        merchant, admin = create_user(cur, "merchant"), create_user(cur, "admin")
        wallet = accounts.open_account(cur, owner_id=merchant, currency="NGN", actor=user_actor(merchant)).id
        post_transaction(cur, kind="adjustment", actor=TEST_ADMIN, legs=[
            Leg(wallet, Decimal("100000000"), "NGN"),
            Leg(accounts.system_account(cur, "adjustments", "NGN").id, Decimal("-100000000"), "NGN")])  # fmt: skip
        actor = Actor(id=merchant, type="merchant", ip="127.0.0.1", user_agent="bench")
        payees = [
            str(payout_accounts.add(cur, merchant, payout_accounts.Resolved(
                "paystack", "058", f"01234{n:05d}", f"Payee {n}"), actor).id)
            for n in range(PAYEES)
        ]  # fmt: skip
        claims = {}
        for user, role, amr in ((merchant, "merchant", ["pwd"]), (admin, "admin", ["pwd", "otp"])):
            session_id, _ = sessions.create_session(cur, user, sessions.Client(), amr=amr)
            claims[user] = {**transfers.access_claims(user, session_id), "role": role, "amr": amr}
        return {"merchant": merchant, "admin": admin, "wallet": str(wallet), "payees": payees, "claims": claims}

    return transaction(work)


def _single(setup: dict[str, Any], rng: random.Random) -> None:
    """One withdrawal to a payout account, requested and approved."""
    from ledgerline.audit import Actor
    from ledgerline.caller import Principal
    from ledgerline.payments import withdrawals

    merchant = setup["merchant"]
    body = withdrawals.CreateWithdrawal(account_id=setup["wallet"], amount="1.00", currency="NGN",
                                        payout_account_id=rng.choice(setup["payees"]))  # fmt: skip
    args = withdrawals.request_arguments(
        body, caller=Principal(merchant, "merchant"), key=uuid.uuid4(),
        actor=Actor(id=merchant, type="merchant", ip="127.0.0.1", user_agent="bench"))  # fmt: skip
    status, w = money(setup, merchant, "functions.payments.withdrawals_create", "withdrawal_request", args)
    assert status == 201, w
    status, w = money(setup, setup["admin"], "functions.payments.admin_withdrawals_approve", "withdrawal_approve",
                      {"withdrawal_id": w["id"]})  # fmt: skip
    assert status == 200 and w["status"] == "approved", w


def _bulk(setup: dict[str, Any], rng: random.Random, size: int) -> int:
    """One bulk payout of ``size`` items, requested and approved; returns its items."""
    from ledgerline.audit import Actor
    from ledgerline.caller import Principal
    from ledgerline.payments import bulk_payouts

    merchant = setup["merchant"]
    body = bulk_payouts.CreateBulkPayout(account_id=setup["wallet"], currency="NGN", items=[
        bulk_payouts.BulkPayoutItem(payout_account_id=rng.choice(setup["payees"]), amount="1.00", narration="salary")
        for _ in range(size)])  # fmt: skip
    args = bulk_payouts.request_arguments(
        body, caller=Principal(merchant, "merchant"), key=uuid.uuid4(),
        actor=Actor(id=merchant, type="merchant", ip="127.0.0.1", user_agent="bench"))  # fmt: skip
    status, b = money(setup, merchant, "functions.payments.payouts_bulk_create", "bulk_payout_request", args)
    assert status == 201 and b["status"] == "pending_approval", b
    status, b = money(setup, setup["admin"], "functions.payments.payouts_bulk_approve", "bulk_payout_approve",
                      {"bulk_payout_id": b["id"]})  # fmt: skip
    assert status == 200 and b["status"] == "approved", b
    return int(b["item_count"])


def run(quick: bool) -> list[Figure]:
    from ledgerline import config
    from ledgerline.local import aws

    url = database.fresh_database()
    os.environ["LEDGERLINE_BULK_PAYOUT_APPROVAL_ITEMS"] = "1"
    moto = aws.start(port=aws.free_port())  # the field key and the blind-index key (KMS, Secrets Manager)
    try:
        aws.point_library_at(moto.endpoint_url)
        aws.bootstrap(moto.endpoint_url)
        config.settings.cache_clear()
        return _measure(url, quick)
    finally:
        moto.stop()


def _measure(url: str, quick: bool) -> list[Figure]:
    setup = _setup()
    rng = random.Random(1919)  # noqa: S311 - load generation
    singles, rounds = (100, 3) if quick else (300, 5)
    b100, b1000 = (2, 1) if quick else (3, 1)

    def single_side() -> float:
        started = time.perf_counter()
        for _ in range(singles):
            _single(setup, rng)
        return singles / (time.perf_counter() - started)

    def bulk_side(size: int, count: int) -> float:
        started = time.perf_counter()
        items = sum(_bulk(setup, rng, size) for _ in range(count))
        return items / (time.perf_counter() - started)

    results = interleaved(
        {"single": single_side, "100": lambda: bulk_side(100, b100), "1000": lambda: bulk_side(1000, b1000)},
        rounds,
        before=lambda: database.run_sql(url, "CHECKPOINT"),
    )
    med = {name: sorted(values)[len(values) // 2] for name, values in results.items()}
    return [
        Figure("bulk_payouts", f"payout items held and approved/s in bulk payouts of {size}, vs single withdrawals",
               med[size], "items/s", baseline=med["single"], baseline_name="single withdrawals, requested and approved",
               runs=results[size])
        for size in ("100", "1000")
    ]  # fmt: skip
