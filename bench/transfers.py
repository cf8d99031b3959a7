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
import statistics
import threading
import time
import uuid
from decimal import Decimal
from typing import Any

from bench import baseline, database
from bench.harness import Figure, interleaved, percentile

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


def _run(
    database_url: str, setup: dict[str, Any], clients: int, seconds: float, hot: bool, waits: bool = False
) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 2.0  # after every process has imported and connected
    procs = [
        ctx.Process(target=_client, args=(database_url, setup, hot, seconds, start_at, out)) for _ in range(clients)
    ]
    for p in procs:
        p.start()
    sampler = WaitSampler(database_url, start_at, seconds) if waits else None
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
        "backend_waits": sampler.shares() if sampler else None,
    }


class WaitSampler:
    """What the clients' server processes are doing during a run, sampled from
    pg_stat_activity every 10 ms: running, waiting for the client (Python) to send the
    next statement, for the WAL, for a lock. Says where a run's time goes."""

    def __init__(self, database_url: str, start_at: float, seconds: float) -> None:
        self.counts: dict[str, int] = {}
        self._thread = threading.Thread(target=self._sample, args=(database_url, start_at, seconds), daemon=True)
        self._thread.start()

    def _sample(self, database_url: str, start_at: float, seconds: float) -> None:
        from ledgerline.db.connection import APP_ROLE, connect

        conn = connect(database_url, autocommit=True, application_name="bench-sampler")
        try:
            with conn.cursor() as cur:
                while time.time() < start_at + 0.5:
                    time.sleep(0.01)
                while time.time() < start_at + seconds - 0.5:
                    cur.execute(
                        """
                        SELECT CASE WHEN wait_event_type = 'Client' THEN 'waiting for the client'
                                    WHEN wait_event_type IS NULL THEN 'running'
                                    WHEN wait_event IN ('WALWrite', 'WALSync', 'WALInsert') THEN 'waiting for the WAL'
                                    WHEN wait_event_type = 'Lock' THEN 'waiting for a lock'
                                    ELSE 'waiting: ' || wait_event_type || '/' || wait_event END
                          FROM pg_stat_activity WHERE usename = %s AND backend_type = 'client backend'
                        """,
                        (APP_ROLE,),
                    )
                    for (state,) in cur.fetchall():
                        self.counts[state] = self.counts.get(state, 0) + 1
                    time.sleep(0.01)
        finally:
            conn.close()

    def shares(self) -> dict[str, float]:
        self._thread.join()
        total = sum(self.counts.values()) or 1
        return {k: round(v / total, 3) for k, v in sorted(self.counts.items(), key=lambda kv: -kv[1])}


def run(quick: bool) -> list[Figure]:
    seconds, rounds = (4.0, 1) if quick else (20.0, 3)
    url = database.fresh_database()
    setup = _setup(200 if quick else WALLETS)
    pgbench_url = baseline.prepare(url, scale=10)
    server = database.server_url()
    figures: list[Figure] = []
    try:
        for clients in (4, 8):
            sides: dict[str, Any] = {
                "pgbench": lambda c=clients: baseline.tpcb_tps(pgbench_url, c, int(seconds)),
                "uniform": lambda c=clients: _run(url, setup, c, seconds, hot=False, waits=c == 8),
            }
            if clients == 8:
                sides["hot"] = lambda: _run(url, setup, 8, seconds, hot=True)
            # Side by side, round after round, each run after a CHECKPOINT (quick runs
            # skip the warm-up round).
            results = interleaved(sides, rounds, before=lambda: baseline.checkpoint(server), warmup=not quick)
            tpcb = statistics.median(results["pgbench"])
            uniform = _median(results["uniform"])
            figures.append(
                Figure(
                    "transfers", f"transfers/s, {clients} clients, random wallets", uniform["tps"], "tx/s",
                    baseline=tpcb, baseline_name=f"pgbench tpcb-like {clients}c", goal="ratio ≥ 0.5",
                    runs=[round(r["tps"], 1) for r in results["uniform"]],
                    extra={"p50_ms": round(uniform["p50_ms"], 2), "p99_ms": round(uniform["p99_ms"], 2),
                           "pgbench_runs": results["pgbench"], "refused": uniform["refused"],
                           "backend_waits": uniform["backend_waits"]},
                )
            )  # fmt: skip
            if clients == 8:
                hot = _median(results["hot"])
                figures.append(
                    Figure(
                        "hot account", "transfers/s, 8 clients, all credit one system account", hot["tps"], "tx/s",
                        baseline=uniform["tps"], baseline_name="random wallets 8c", goal="ratio ≥ 0.8",
                        runs=[round(r["tps"], 1) for r in results["hot"]],
                        extra={"p50_ms": round(hot["p50_ms"], 2), "p99_ms": round(hot["p99_ms"], 2)},
                    )
                )  # fmt: skip
    finally:
        baseline.drop(pgbench_url)
    return figures


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return sorted(runs, key=lambda r: r["tps"])[len(runs) // 2]
