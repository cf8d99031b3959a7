"""Scenarios 1 and 2: transfer throughput through the domain layer, and the hot account.

Each client is a process with its own connection, running exactly what
``POST /v1/transfers`` runs below HTTP: idempotency claim, the posting, the audit rows
and the stored response, in one transaction. The baseline is pgbench's TPC-B-like
transaction on the same server with the same number of clients, in the same run.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import time
import uuid
from decimal import Decimal
from typing import Any

from bench import baseline, database
from bench.harness import Figure, percentile

WALLETS = 1000
AMOUNT = Decimal("1.00")


def _setup(n_wallets: int) -> dict[str, Any]:
    from ledgerline.db import transaction
    from ledgerline.ledger import accounts
    from ledgerline.ledger.testing import TEST_ADMIN, create_user, user_actor

    def work(cur: Any) -> dict[str, Any]:
        owners = {}
        for _ in range(n_wallets):  # one user per wallet, as in production
            owner = create_user(cur)
            owners[accounts.open_account(cur, owner_id=owner, currency="NGN", actor=user_actor(owner)).id] = owner
        adjustments = accounts.system_account(cur, "adjustments", "NGN").id
        hot = accounts.system_account(cur, "fees_revenue", "NGN").id
        return {"owners": owners, "wallets": list(owners), "adjustments": adjustments, "hot": hot}

    setup = transaction(work)
    # Fund every wallet with one multi-leg adjustment per 100 wallets (fast set-up).
    from ledgerline.ledger.postings import Leg, post_transaction

    for i in range(0, n_wallets, 100):
        chunk = setup["wallets"][i : i + 100]
        legs = [Leg(w, Decimal("1000000"), "NGN") for w in chunk]
        legs.append(Leg(setup["adjustments"], Decimal("-1000000") * len(chunk), "NGN"))
        transaction(lambda cur, legs=legs: post_transaction(cur, kind="adjustment", legs=legs, actor=TEST_ADMIN))
    return setup


def _client(database_url: str, setup: dict[str, Any], hot: bool, seconds: float, start_at: float, out: Any) -> None:
    os.environ["DATABASE_URL"] = database_url
    from ledgerline import idempotency, ledger
    from ledgerline.audit import Actor

    owners = setup["owners"]
    wallets = setup["wallets"]
    rng = random.Random()  # noqa: S311 - load generation
    latencies: list[float] = []
    refused = 0
    while time.time() < start_at:
        time.sleep(0.001)
    deadline = start_at + seconds
    while True:
        now = time.perf_counter()
        if time.time() >= deadline:
            break
        src = rng.choice(wallets)
        dst = setup["hot"] if hot else rng.choice(wallets)
        while dst == src:
            dst = rng.choice(wallets)
        body = {"from_account_id": str(src), "to_account_id": str(dst), "amount": "1.00", "currency": "NGN"}
        owner = owners[src]
        actor = Actor(id=owner, type="user", ip="127.0.0.1", user_agent="bench", request_id="bench")

        def work(cur: Any, src: Any = src, dst: Any = dst, actor: Actor = actor, owner: Any = owner) -> tuple[int, Any]:
            t = ledger.transfer(
                cur, from_account_id=src, to_account_id=dst, amount=AMOUNT, currency="NGN", actor=actor, owner_id=owner
            )
            return 201, t.to_json()

        outcome = idempotency.execute(
            scope=str(owner),
            key=uuid.uuid4(),
            request_hash=idempotency.fingerprint("POST", "/v1/transfers", body),
            work=work,
            actor=actor,
        )
        if outcome.status != 201:
            refused += 1
        latencies.append(time.perf_counter() - now)
    out.put({"count": len(latencies), "refused": refused, "latencies": latencies})


def _run(database_url: str, setup: dict[str, Any], clients: int, seconds: float, hot: bool) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 2.0  # after every process has imported and connected
    procs = [
        ctx.Process(target=_client, args=(database_url, setup, hot, seconds, start_at, out)) for _ in range(clients)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    latencies = [x for r in results for x in r["latencies"]]
    count = sum(r["count"] for r in results)
    return {
        "tps": count / seconds,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "refused": sum(r["refused"] for r in results),
    }


def _median_run(database_url: str, setup: dict[str, Any], clients: int, seconds: float, hot: bool, runs: int) -> dict:
    if runs > 1:
        _run(database_url, setup, clients, 3.0, hot)  # warm-up (quick runs skip it)
    results = sorted((_run(database_url, setup, clients, seconds, hot) for _ in range(runs)), key=lambda r: r["tps"])
    median = results[len(results) // 2]
    return {**median, "runs": [round(r["tps"], 1) for r in results]}


def run(quick: bool) -> list[Figure]:
    seconds, runs = (4.0, 1) if quick else (20.0, 3)
    client_counts = (4, 8)
    url = database.fresh_database()
    setup = _setup(200 if quick else WALLETS)
    pgbench_url = baseline.prepare(url, scale=10)
    figures: list[Figure] = []
    try:
        uniform_8 = None
        for clients in client_counts:
            tpcb, tpcb_runs = baseline.tpcb_tps(pgbench_url, clients, int(seconds), runs)
            uniform = _median_run(url, setup, clients, seconds, hot=False, runs=runs)
            if clients == 8:
                uniform_8 = uniform
            figures.append(
                Figure(
                    "transfers", f"transfers/s, {clients} clients, random wallets", uniform["tps"], "tx/s",
                    baseline=tpcb, baseline_name=f"pgbench tpcb-like {clients}c", goal="ratio ≥ 0.5",
                    runs=uniform["runs"],
                    extra={"p50_ms": round(uniform["p50_ms"], 2), "p99_ms": round(uniform["p99_ms"], 2),
                           "pgbench_runs": tpcb_runs, "refused": uniform["refused"]},
                )
            )  # fmt: skip
        hot = _median_run(url, setup, 8, seconds, hot=True, runs=runs)
        assert uniform_8 is not None
        figures.append(
            Figure(
                "hot account", "transfers/s, 8 clients, all credit one system account", hot["tps"], "tx/s",
                baseline=uniform_8["tps"], baseline_name="random wallets 8c", goal="ratio ≥ 0.8",
                runs=hot["runs"], extra={"p50_ms": round(hot["p50_ms"], 2), "p99_ms": round(hot["p99_ms"], 2)},
            )
        )  # fmt: skip
    finally:
        baseline.drop(pgbench_url)
    return figures
