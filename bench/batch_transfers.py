"""Batch transfers (issue 19): transfers per second posted through ``POST
/v1/transfers/batch`` in batches of 100 and of 1,000 (atomic, each batch one money
statement as ``Endpoint.money`` runs it below HTTP: admission, the Idempotency-Key, the
locks taken up front, every posting with its audit row, the bulk audit row, the stored
response), against single transfers through the same path (``POST /v1/transfers``), by one
serial client, round after round in the same run. Goal: at least 5 times the single-transfer rate.

Each batch debits one caller's wallet (payroll-like) to random other wallets. The figure
counts transfers (items), not requests.
"""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

from bench import database, transfers
from bench.harness import Figure, interleaved

HANDLER = "functions.ledger.transfers_batch"


def batch_once(setup: dict[str, Any], rng: random.Random, size: int) -> tuple[int, float]:
    """One atomic batch of ``size`` transfers from one random caller's wallet; returns
    (posted items, seconds the money statement took, response parsing included)."""
    from ledgerline import idempotency, jsonutil, routes
    from ledgerline.auth import admission
    from ledgerline.caller import Request
    from ledgerline.ledger import operations

    wallets = setup["wallets"]
    src = rng.choice(wallets)
    owner = setup["owners"][src]
    others = [w for w in wallets if w != src]
    body = {
        "mode": "atomic",
        "transfers": [
            {"from_account_id": str(src), "to_account_id": str(rng.choice(others)), "amount": "1.00",
             "currency": "NGN", "description": None}
            for _ in range(size)
        ],
    }  # fmt: skip
    started = time.perf_counter()
    request = Request(request_id="bench", ip="127.0.0.1", user_agent="bench", headers={}, principal=None, body=body)
    prepared = admission.prepare(routes.by_handler(HANDLER), request, setup["claims"][owner])
    op = operations.by_name("transfer_batch")
    outcome = idempotency.call(
        prepared,
        key=uuid.uuid4(),
        request_hash=idempotency.fingerprint("POST", "/v1/transfers/batch", body),
        operation=op.name,
        args=op.arguments(body, owner=owner),
    )
    answer = jsonutil.loads(outcome.body)
    elapsed = time.perf_counter() - started
    assert outcome.status == 201, answer
    return answer["posted"], elapsed


def run(quick: bool) -> list[Figure]:
    url = database.fresh_database()
    setup = transfers._setup(200)
    rng = random.Random(19)  # noqa: S311 - load generation
    singles, rounds = (200, 3) if quick else (500, 5)
    b100, b1000 = (3, 1) if quick else (5, 2)  # batches per round: 300-500 and 1,000-2,000 transfers

    def single_side() -> float:
        started = time.perf_counter()
        for _ in range(singles):
            assert transfers.transfer_once(setup, rng, False) == 201
        return singles / (time.perf_counter() - started)

    def batched(size: int, count: int) -> float:
        items, seconds = 0, 0.0
        for _ in range(count):
            posted, took = batch_once(setup, rng, size)
            items, seconds = items + posted, seconds + took
        return items / seconds

    results = interleaved(
        {"single": single_side, "100": lambda: batched(100, b100), "1000": lambda: batched(1000, b1000)},
        rounds,
        before=lambda: database.run_sql(url, "CHECKPOINT"),
    )
    med = {name: sorted(values)[len(values) // 2] for name, values in results.items()}
    return [
        Figure("batch_transfers", "transfers/s in atomic batches of 100, 1 serial client, vs single transfers/s",
               med["100"], "transfers/s", baseline=med["single"], baseline_name="single transfers, same client",
               goal="≥ 5", runs=results["100"]),
        Figure("batch_transfers", "transfers/s in atomic batches of 1,000, 1 serial client, vs single transfers/s",
               med["1000"], "transfers/s", baseline=med["single"], baseline_name="single transfers, same client",
               goal="≥ 5", runs=results["1000"]),
    ]  # fmt: skip
