"""Scenario 4: the HTTP path — transfers through the route's Lambda handler, invoked in
process and through the local API gateway, vs the domain call.

Three ways to run the same transfer, with the same client shape (8 processes, one
connection each) over the same users and accounts, round after round:

- the domain call: what ``POST /v1/transfers`` runs below HTTP (``bench.transfers``);
- the handler in process: each client builds the API Gateway payload 2.0 event (the
  authorizer's claims of the user's real session token, a fresh Idempotency-Key) and
  calls ``functions.ledger.transfers_create.handler(event, context)`` itself: the
  Lambda's own cost (the input gate, validation, the admission prepared from the
  claims, the response) without any gateway; the session check and the limits travel
  in the money statement, as in the domain call;
- through the local gateway over HTTP (``requests`` clients), one gateway process and
  two: adds HTTP, the token's verification and the gateway's own work. The local
  gateway runs every handler in one process (as one warm Lambda instance per thread), so
  its throughput is bounded by that process; in AWS each request has its own instance.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import time
import uuid
from decimal import Decimal
from typing import Any
from uuid import UUID

from bench import baseline, database, load, transfers
from bench.harness import Figure, interleaved

CLIENTS = 8
PATH = "/v1/transfers"
GOAL_HANDLER = "ratio ≥ 0.7"
GOAL_GATEWAY = "ratio ≥ 0.5"
TOKEN_MARGIN_SECONDS = 120  # re-sign access tokens this close to their expiry


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
            account = open_account(cur, owner_id=user.id, currency="NGN", actor=Actor.system("bench"))
            adjust(cur, account_id=account.id, amount=Decimal(10**9), currency="NGN", direction="credit", reason="bench",
                   actor=TEST_ADMIN)  # fmt: skip
            return {"id": user.id, "account": str(account.id)}

        user = transaction(work)
        started = transaction(
            lambda cur, uid=user["id"]: sessions.start(cur, uid, "user", sessions.Client(), amr=["pwd"])
        )
        user.update(session_id=started.session_id, scope=started.scope)
        _sign(user, started.access_token)
        out.append(user)
    return out


def _sign(user: dict[str, Any], token: str | None = None) -> None:
    """The user's access token and the claims the authorizer makes of it (as API Gateway
    passes them to the handler); a new token for the same session when ``token`` is None."""
    from ledgerline.auth import tokens
    from ledgerline.local.gateway import default_authorizer

    if token is None:
        token, _ = tokens.issue_access_token(
            user["id"], "user", session_id=user["session_id"], amr=["pwd"], scope=user["scope"]
        )
    user["token"] = token
    user["claims"] = default_authorizer(token)


def _fresh(users: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The users, with tokens that outlast the next run (access tokens live 15 minutes)."""
    for user in users:
        if float(user["claims"]["exp"]) - time.time() < TOKEN_MARGIN_SECONDS:
            _sign(user)
    return users


def _domain_setup(users: list[dict[str, Any]]) -> dict[str, Any]:
    """The users' accounts in the shape ``bench.transfers`` draws its transfers from."""
    owners = {UUID(u["account"]): u["id"] for u in users}
    return {"owners": owners, "claims": {u["id"]: u["claims"] for u in users}, "wallets": list(owners), "hot": None}


def _handler_client(database_url: str, users: list[dict[str, Any]], seconds: float, start: Any, out: Any) -> None:
    os.environ["DATABASE_URL"] = database_url
    from functions.ledger import transfers_create
    from ledgerline import routes
    from ledgerline.local.gateway import LambdaContext, build_event

    route, params, _ = routes.match("POST", PATH)
    assert route is not None
    handler = transfers_create.handler
    rng = random.Random()  # noqa: S311 - load generation

    def request() -> int:
        src, dst = rng.sample(users, 2)
        body = json.dumps(
            {"from_account_id": src["account"], "to_account_id": dst["account"], "amount": "1.00", "currency": "NGN"}
        ).encode()
        request_id = str(uuid.uuid4())
        headers = {
            "host": "127.0.0.1", "user-agent": "bench", "content-type": "application/json",
            "content-length": str(len(body)), "authorization": f"Bearer {src['token']}",
            "idempotency-key": str(uuid.uuid4()),
        }  # fmt: skip
        event = build_event(
            method="POST", raw_path=PATH, raw_query="", headers=headers, body=body, source_ip="127.0.0.1",
            route=route, path_parameters=params, claims=src["claims"], request_id=request_id,
        )  # fmt: skip
        result = handler(event, LambdaContext(function_name=route.name, aws_request_id=request_id))
        return int(result.get("statusCode", 0))

    latencies, failures, statuses = [], 0, {}
    request()  # a warm instance: imports, connection, caches
    start_at, cpu = start.wait()
    deadline = start_at + seconds
    while time.time() < deadline:
        t = time.perf_counter()
        status = request()
        latencies.append(time.perf_counter() - t)
        if status != 201:
            failures += 1
            statuses[status] = statuses.get(status, 0) + 1
    out.put({"latencies": latencies, "failures": failures, "statuses": statuses, "cpu_s": load.cpu_since(cpu)})


def _client(base_url: str, users: list[dict[str, Any]], seconds: float, start: Any, out: Any) -> None:
    import requests

    session = requests.Session()
    rng = random.Random()  # noqa: S311 - load generation

    def request() -> int:
        src, dst = rng.sample(users, 2)
        r = session.post(
            f"{base_url}{PATH}",
            json={"from_account_id": src["account"], "to_account_id": dst["account"], "amount": "1.00",
                  "currency": "NGN"},
            headers={"Authorization": f"Bearer {src['token']}", "Idempotency-Key": str(uuid.uuid4())},
            timeout=30,
        )  # fmt: skip
        return r.status_code

    latencies, failures, statuses = [], 0, {}
    request()  # a warm keep-alive connection
    start_at, cpu = start.wait()
    deadline = start_at + seconds
    while time.time() < deadline:
        t = time.perf_counter()
        status = request()
        latencies.append(time.perf_counter() - t)
        if status != 201:
            failures += 1
            statuses[status] = statuses.get(status, 0) + 1
    out.put({"latencies": latencies, "failures": failures, "statuses": statuses, "cpu_s": load.cpu_since(cpu)})


def _http_run(base_url: str, users: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    return load.run_clients(_client, (base_url, _fresh(users)), CLIENTS, seconds)


def _handler_run(database_url: str, users: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    return load.run_clients(_handler_client, (database_url, _fresh(users)), CLIENTS, seconds)


def run(quick: bool) -> list[Figure]:
    from ledgerline.local import aws
    from ledgerline.local.gateway import GatewayProcesses, LocalGateway

    seconds, rounds = (4.0, 1) if quick else (20.0, 3)
    url = database.fresh_database()
    server = database.server_url()
    moto = aws.start(port=aws.free_port())
    gateway = workers = None
    try:
        aws.point_library_at(moto.endpoint_url)
        aws.bootstrap(moto.endpoint_url)
        users = _users(20 if quick else 50)
        setup = _domain_setup(users)
        gateway = LocalGateway(port=0).start()
        workers = GatewayProcesses(2, aws.free_port(), database.data_path() / "logs")
        for warm in (gateway, workers):  # imports, connections, key caches
            _http_run(warm.url, users, 2.0)
        sides = {
            "domain": lambda: transfers._run(url, setup, CLIENTS, seconds, hot=False),
            "handler": lambda: _handler_run(url, users, seconds),
            "gateway": lambda: _http_run(gateway.url, users, seconds),
            "gateway2": lambda: _http_run(workers.url, users, seconds),
        }
        # Side by side, round after round, each run after a CHECKPOINT.
        results = interleaved(sides, rounds, before=lambda: baseline.checkpoint(server), warmup=False)
    finally:
        if gateway is not None:
            gateway.stop()
        if workers is not None:
            workers.stop()
        moto.stop()
    domain = load.median_run(results["domain"])
    handler, http, http2 = (load.median_run(results[k]) for k in ("handler", "gateway", "gateway2"))
    base = {"baseline": domain["tps"], "baseline_name": f"domain call {CLIENTS}c"}
    common = {"accounts": len(users), "domain_runs": [round(r["tps"], 1) for r in results["domain"]],
              "domain_p99_ms": round(domain["p99_ms"], 2), "domain_client_cpu_us": _round(domain["client_cpu_us"])}  # fmt: skip
    return [
        Figure(
            "http path", f"transfers/s, handler invoked in process, {CLIENTS} clients", handler["tps"], "tx/s",
            **base, goal=GOAL_HANDLER, runs=[round(r["tps"], 1) for r in results["handler"]],
            extra={**load.latency_extra(handler), "failures": handler["failures"], **common},
        ),
        Figure(
            "http path", f"transfers/s through the local gateway, {CLIENTS} clients", http["tps"], "tx/s",
            **base, goal=GOAL_GATEWAY, runs=[round(r["tps"], 1) for r in results["gateway"]],
            extra={**_http_extra(http), **common},
        ),
        Figure(
            "http path", f"transfers/s through 2 gateway processes, {CLIENTS} clients", http2["tps"], "tx/s",
            **base, goal=GOAL_GATEWAY, runs=[round(r["tps"], 1) for r in results["gateway2"]],
            extra={**_http_extra(http2), **common},
        ),
    ]  # fmt: skip


def _http_extra(run: dict[str, Any]) -> dict[str, Any]:
    """Latencies, failures; the CPU measured in the clients is that of ``requests`` (the
    gateway's is not in it)."""
    extra = {**load.latency_extra(run), "failures": run["failures"]}
    if "client_cpu_us" in extra:
        extra["requests_client_cpu_us"] = extra.pop("client_cpu_us")
    return extra


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
