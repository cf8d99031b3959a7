"""Escrow: funding and releasing an escrow (one money statement each, as ``POST
/v1/escrows/{id}/fund`` and ``/release`` run below HTTP) against a transfer through the
same path, measured round after round in the same run by one serial client.

A fund is a transfer with the escrow row locked and updated and an audit row of its own;
a release is ONE three-leg transaction (escrow -> seller, fee -> the hot fees_revenue
account, a 1 % fee schedule), the escrow's account closed, the row updated. Escrows are
opened ahead of each round (not timed). The figure is operations per second; the ratio
says what the state machine costs over a plain posting.
"""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

from bench import database, transfers
from bench.harness import Figure, interleaved


def money(setup: dict[str, Any], owner: Any, handler: str, op_name: str, args: dict[str, Any]) -> tuple[int, Any]:
    """One money request of ``owner`` below HTTP, as ``Endpoint.money`` sends it (the
    caller's admission prepared from ``setup["claims"][owner]``, then one statement)."""
    from ledgerline import idempotency, jsonutil, routes
    from ledgerline.auth import admission
    from ledgerline.caller import Request
    from ledgerline.ledger import operations

    request = Request(request_id="bench", ip="127.0.0.1", user_agent="bench", headers={}, principal=None, body=args)
    prepared = admission.prepare(routes.by_handler(handler), request, setup["claims"][owner])
    op = operations.by_name(op_name)
    outcome = idempotency.call(
        prepared,
        key=uuid.uuid4(),
        request_hash=idempotency.fingerprint("POST", handler, args),
        operation=op.name,
        args=op.arguments(args, owner=owner),
    )
    return outcome.status, jsonutil.loads(outcome.body)


def _open(setup: dict[str, Any], rng: random.Random, n: int) -> list[tuple[Any, Any, str]]:
    """n escrows of random buyer/seller pairs: (buyer, buyer's wallet, escrow id)."""
    opened = []
    for _ in range(n):
        buyer_wallet, seller_wallet = rng.sample(setup["wallets"], 2)
        buyer, seller = setup["owners"][buyer_wallet], setup["owners"][seller_wallet]
        body = {"seller_id": str(seller), "amount": "10.00", "currency": "NGN", "description": "bench"}
        status, escrow = money(setup, buyer, "functions.escrow.escrows_create", "escrow_open", body)
        assert status == 201, escrow
        opened.append((buyer, buyer_wallet, escrow["id"]))
    return opened


def run(quick: bool) -> list[Figure]:
    url = database.fresh_database()
    database.run_sql(
        url, "INSERT INTO fee_schedules (currency, transaction_kind, percent) VALUES ('NGN', 'escrow_release', 1)"
    )
    setup = transfers._setup(200)
    rng = random.Random(17)  # noqa: S311 - load generation
    n, rounds = (100, 3) if quick else (300, 7)
    funded: list[tuple[Any, str]] = []

    def transfer_side() -> float:
        started = time.perf_counter()
        for _ in range(n):
            assert transfers.transfer_once(setup, rng, False) == 201
        return n / (time.perf_counter() - started)

    def fund_side() -> float:
        opened = _open(setup, rng, n)
        started = time.perf_counter()
        for buyer, wallet, escrow_id in opened:
            status, body = money(setup, buyer, "functions.escrow.escrows_fund", "escrow_fund",
                                 {"escrow_id": escrow_id, "account_id": str(wallet)})  # fmt: skip
            assert status == 200, body
        elapsed = time.perf_counter() - started
        funded.extend((buyer, escrow_id) for buyer, _, escrow_id in opened)
        return n / elapsed

    def release_side() -> float:
        batch = [funded.pop() for _ in range(n)]
        started = time.perf_counter()
        for buyer, escrow_id in batch:
            status, body = money(setup, buyer, "functions.escrow.escrows_release", "escrow_release",
                                 {"escrow_id": escrow_id})  # fmt: skip
            assert status == 200 and body["status"] == "RELEASED", body
        return n / (time.perf_counter() - started)

    results = interleaved(
        {"transfer": transfer_side, "fund": fund_side, "release": release_side},
        rounds,
        before=lambda: database.run_sql(url, "CHECKPOINT"),
    )
    med = {name: sorted(values)[len(values) // 2] for name, values in results.items()}
    return [
        Figure("escrow", "escrow fund/s, 1 serial client, vs transfers/s", med["fund"], "ops/s",
               baseline=med["transfer"], baseline_name="transfer, same client", goal="≥ 0.8",
               runs=results["fund"]),
        Figure("escrow", "escrow release/s (3 legs, 1 % fee), 1 serial client, vs transfers/s", med["release"],
               "ops/s", baseline=med["transfer"], baseline_name="transfer, same client", goal="≥ 0.7",
               runs=results["release"]),
    ]  # fmt: skip
