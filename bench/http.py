"""Scenario 4: the HTTP path — transfers through the local API gateway vs the domain call.

The difference is the cost of the edge: event building, JWT verification and the
database session check, validation, the rate-limit guard, serialization. The local
gateway runs every handler in one process (as one warm Lambda instance per thread), so
its throughput is bounded by that process; in AWS each request has its own instance.
"""

from __future__ import annotations

import multiprocessing as mp
import random
import secrets
import time
import uuid
from decimal import Decimal
from typing import Any

from bench import database, transfers
from bench.harness import Figure, percentile

CLIENTS = 8


def _users(n: int) -> list[dict[str, Any]]:
    from ledgerline.audit import Actor
    from ledgerline.auth import sessions, users
    from ledgerline.db import transaction
    from ledgerline.ledger.accounts import open_account
    from ledgerline.ledger.corrections import adjust
    from ledgerline.ledger.testing import TEST_ADMIN

    out = []
    for i in range(n):
        email = f"bench-{i}-{uuid.uuid4().hex[:6]}@example.test"

        def work(cur: Any, email: str = email) -> dict[str, Any]:
            user = users.create_user(
                cur, email=email, password=secrets.token_urlsafe(16), full_name="Bench", actor=Actor.system("bench")
            )
            account = open_account(cur, owner_id=user["id"], currency="NGN", actor=Actor.system("bench"))
            adjust(cur, account_id=account.id, amount=Decimal(10**9), currency="NGN", direction="credit", reason="bench",
                   actor=TEST_ADMIN)  # fmt: skip
            return {"id": user["id"], "account": str(account.id)}

        user = transaction(work)
        user["token"] = transaction(
            lambda cur, uid=user["id"]: sessions.start(cur, uid, "user", sessions.Client(), amr=["pwd"])
        )["access_token"]
        out.append(user)
    return out


def _client(base_url: str, users: list[dict[str, Any]], seconds: float, start_at: float, out: Any) -> None:
    import requests

    session = requests.Session()
    rng = random.Random()  # noqa: S311 - load generation
    latencies, failures = [], 0
    while time.time() < start_at:
        time.sleep(0.001)
    deadline = start_at + seconds
    while time.time() < deadline:
        src, dst = rng.sample(users, 2)
        t = time.perf_counter()
        r = session.post(
            f"{base_url}/v1/transfers",
            json={"from_account_id": src["account"], "to_account_id": dst["account"], "amount": "1.00",
                  "currency": "NGN"},
            headers={"Authorization": f"Bearer {src['token']}", "Idempotency-Key": str(uuid.uuid4())},
            timeout=30,
        )  # fmt: skip
        latencies.append(time.perf_counter() - t)
        failures += r.status_code != 201
    out.put({"latencies": latencies, "failures": failures})


def _http_run(base_url: str, users: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 2.0
    procs = [ctx.Process(target=_client, args=(base_url, users, seconds, start_at, out)) for _ in range(CLIENTS)]
    for p in procs:
        p.start()
    results = [out.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    latencies = [x for r in results for x in r["latencies"]]
    return {
        "tps": len(latencies) / seconds,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "failures": sum(r["failures"] for r in results),
    }


def run(quick: bool) -> list[Figure]:
    from ledgerline.local import aws
    from ledgerline.local.gateway import GatewayProcesses, LocalGateway

    seconds = 4.0 if quick else 20.0
    url = database.fresh_database()
    moto = aws.start(port=aws.free_port())
    try:
        aws.point_library_at(moto.endpoint_url)
        aws.bootstrap(moto.endpoint_url)
        users = _users(20 if quick else 50)
        gateway = LocalGateway(port=0).start()
        try:
            _http_run(gateway.url, users, 2.0)  # warm-up: imports, connections, key caches
            http = _http_run(gateway.url, users, seconds)
        finally:
            gateway.stop()
        workers = GatewayProcesses(2, aws.free_port(), database.data_path() / "logs")
        try:
            _http_run(workers.url, users, 2.0)
            http2 = _http_run(workers.url, users, seconds)
        finally:
            workers.stop()
        setup = transfers._setup(200)
        domain = transfers._run(url, setup, CLIENTS, seconds, hot=False)
    finally:
        moto.stop()
    return [
        Figure(
            "http path", f"transfers/s through the local gateway, {CLIENTS} clients", http["tps"], "tx/s",
            baseline=domain["tps"], baseline_name=f"domain call {CLIENTS}c",
            extra={"p50_ms": round(http["p50_ms"], 2), "p99_ms": round(http["p99_ms"], 2),
                   "domain_p99_ms": round(domain["p99_ms"], 2), "failures": http["failures"]},
        ),
        Figure(
            "http path", f"transfers/s through 2 gateway processes, {CLIENTS} clients", http2["tps"], "tx/s",
            baseline=domain["tps"], baseline_name=f"domain call {CLIENTS}c",
            extra={"p50_ms": round(http2["p50_ms"], 2), "p99_ms": round(http2["p99_ms"], 2),
                   "failures": http2["failures"]},
        ),
    ]  # fmt: skip
