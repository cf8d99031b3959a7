"""Scenarios 1 and 2: transfer throughput through the domain layer, and the hot account;
with the server CPU a transfer costs.

Each client is a process with its own connection, running exactly what
``POST /v1/transfers`` runs below HTTP (``transfer_once``: idempotency claim, the
posting, the audit rows and the stored response, in one transaction). Two baselines run
on the same server with the same number of clients, in the same run, round after round
with it (``bench.load``: same client shape for the Python clients):

- pgbench's TPC-B-like transaction (its C client);
- pgledger, a peer ledger in PL/pgSQL, one statement per transfer from the same kind of
  Python client, over as many funded accounts as the scenario has wallets
  (``bench.pgledger``; skipped with the reason when its folder is absent).

Server CPU per transfer is read from /proc for the backend serving one serial client,
against pgbench's backend per TPC-B-like transaction and pgledger's per transfer
(``bench.servercpu``).
"""

from __future__ import annotations

import os
import random
import statistics
import threading
import time
import uuid
from decimal import Decimal
from typing import Any

from bench import baseline, database, harness, load, pgledger, servercpu
from bench.harness import Figure, interleaved

WALLETS = 1000
HANDLER = "functions.ledger.transfers_create"
PATH = "/v1/transfers"


def _setup(n_wallets: int) -> dict[str, Any]:
    from ledgerline.auth import sessions
    from ledgerline.db import transaction
    from ledgerline.ledger import accounts
    from ledgerline.ledger.testing import TEST_ADMIN, create_user, user_actor

    def work(cur: Any) -> dict[str, Any]:
        owners, claims = {}, {}
        for _ in range(n_wallets):  # one user per wallet, as in production, each signed in
            owner = create_user(cur)
            owners[accounts.open_account(cur, owner_id=owner, currency="NGN", actor=user_actor(owner)).id] = owner
            session_id, _ = sessions.create_session(cur, owner, sessions.Client(), amr=["pwd"])
            claims[owner] = access_claims(owner, session_id)
        adjustments = accounts.system_account(cur, "adjustments", "NGN").id
        hot = accounts.system_account(cur, "fees_revenue", "NGN").id
        return {"owners": owners, "claims": claims, "wallets": list(owners), "adjustments": adjustments, "hot": hot}

    setup = transaction(work)
    # Fund every wallet with one multi-leg adjustment per 100 wallets (fast set-up).
    from ledgerline.ledger.postings import Leg, post_transaction

    for i in range(0, n_wallets, 100):
        chunk = setup["wallets"][i : i + 100]
        legs = [Leg(w, Decimal("1000000"), "NGN") for w in chunk]
        legs.append(Leg(setup["adjustments"], Decimal("-1000000") * len(chunk), "NGN"))
        transaction(lambda cur, legs=legs: post_transaction(cur, kind="adjustment", legs=legs, actor=TEST_ADMIN))
    return setup


def access_claims(user_id: Any, session_id: Any) -> dict[str, Any]:
    """The claims the authorizer passes on for a user's access token in ``session_id``
    (its signature is the authorizer's business, not the domain call's)."""
    now = int(time.time())
    return {
        "typ": "access", "sub": str(user_id), "sid": str(session_id), "jti": str(uuid.uuid4()), "role": "user",
        "amr": ["pwd"], "iat": now, "nbf": now, "exp": now + 86400,
    }  # fmt: skip


def transfer_once(setup: dict[str, Any], rng: random.Random, hot: bool) -> int:
    """One transfer as ``POST /v1/transfers`` runs it below HTTP (``Endpoint.money``): the
    caller's admission prepared from the authorizer's claims, then one statement that
    admits the caller, claims the Idempotency-Key, moves the money, audits it and stores
    and returns the response. Returns the response's status.

    The hot-account variant lets the user credit a system account (``credit_kinds``
    None), which the user route refuses: it measures the hot-account mechanism."""
    from ledgerline import idempotency, routes
    from ledgerline.auth import admission
    from ledgerline.caller import Request
    from ledgerline.ledger import operations

    wallets = setup["wallets"]
    src = rng.choice(wallets)
    dst = setup["hot"] if hot else rng.choice(wallets)
    while dst == src:
        dst = rng.choice(wallets)
    owner = setup["owners"][src]
    body = {"from_account_id": str(src), "to_account_id": str(dst), "amount": "1.00", "currency": "NGN"}
    request = Request(request_id="bench", ip="127.0.0.1", user_agent="bench", headers={}, principal=None, body=body)
    prepared = admission.prepare(routes.by_handler(HANDLER), request, setup["claims"][owner])
    op = operations.by_name("transfer")
    args = op.arguments({**body, "description": None}, owner=owner)
    if hot:
        args["credit_kinds"] = None
    outcome = idempotency.call(
        prepared,
        key=uuid.uuid4(),
        request_hash=idempotency.fingerprint("POST", PATH, body),
        operation=op.name,
        args=args,
    )
    return outcome.status


def _client(database_url: str, setup: dict[str, Any], hot: bool, seconds: float, start: Any, out: Any) -> None:
    os.environ["DATABASE_URL"] = database_url
    rng = random.Random()  # noqa: S311 - load generation
    latencies: list[float] = []
    refused = 0
    transfer_once(setup, rng, hot)  # warm: imports, connection, plans
    start_at, cpu = start.wait()
    deadline = start_at + seconds
    while time.time() < deadline:
        now = time.perf_counter()
        refused += transfer_once(setup, rng, hot) != 201
        latencies.append(time.perf_counter() - now)
    out.put({"latencies": latencies, "failures": refused, "cpu_s": load.cpu_since(cpu)})


def _run(
    database_url: str, setup: dict[str, Any], clients: int, seconds: float, hot: bool, waits: bool = False
) -> dict[str, Any]:
    def sample(start_at: float) -> dict[str, float]:
        return WaitSampler(database_url, start_at, seconds).shares()

    result = load.run_clients(_client, (database_url, setup, hot), clients, seconds, during=sample if waits else None)
    result["refused"] = result["failures"]
    result["backend_waits"] = result.pop("observed")
    return result


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


# Goals of issue 12 ("Request path"), as ratios from one run.
GOAL_VS_PGBENCH = {4: "ratio ≥ 0.5", 8: "ratio ≥ 0.65"}
GOAL_VS_PGLEDGER = {8: "ratio ≥ 1.2"}
GOAL_HOT = "ratio ≥ 0.95"
GOAL_CPU = "ratio ≤ 1.3"
PEER = "pgledger"


def run(quick: bool) -> list[Figure]:
    seconds, rounds = (4.0, 1) if quick else (20.0, 3)
    wallets = 200 if quick else WALLETS
    url = database.fresh_database()
    setup = _setup(wallets)
    pgbench_url = baseline.prepare(url, scale=10)
    peer = _peer(url, wallets)
    server = database.server_url()
    figures: list[Figure] = []
    try:
        for clients in (4, 8):
            sides: dict[str, Any] = {
                "pgbench": lambda c=clients: baseline.tpcb_tps(pgbench_url, c, int(seconds)),
                "uniform": lambda c=clients: _run(url, setup, c, seconds, hot=False, waits=c == 8),
            }
            if peer is not None:
                sides[PEER] = lambda c=clients: pgledger.run(peer, c, seconds)
            if clients == 8:
                sides["hot"] = lambda: _run(url, setup, 8, seconds, hot=True)
            # Side by side, round after round, each run after a CHECKPOINT (quick runs
            # skip the warm-up round).
            results = interleaved(sides, rounds, before=lambda: baseline.checkpoint(server), warmup=not quick)
            tpcb = statistics.median(results["pgbench"])
            uniform = load.median_run(results["uniform"])
            figures.append(
                Figure(
                    "transfers", f"transfers/s, {clients} clients, random wallets", uniform["tps"], "tx/s",
                    baseline=tpcb, baseline_name=f"pgbench tpcb-like {clients}c", goal=GOAL_VS_PGBENCH.get(clients),
                    runs=[round(r["tps"], 1) for r in results["uniform"]],
                    extra={**load.latency_extra(uniform), "pgbench_runs": results["pgbench"],
                           "refused": uniform["refused"], "backend_waits": uniform["backend_waits"]},
                )
            )  # fmt: skip
            figures += _vs_peer(clients, results, uniform, tpcb)
            if clients == 8:
                hot = load.median_run(results["hot"])
                figures.append(
                    Figure(
                        "hot account", "transfers/s, 8 clients, all credit one system account", hot["tps"], "tx/s",
                        baseline=uniform["tps"], baseline_name="random wallets 8c", goal=GOAL_HOT,
                        runs=[round(r["tps"], 1) for r in results["hot"]],
                        extra=load.latency_extra(hot),
                    )
                )  # fmt: skip
        figures += _server_cpu(setup, pgbench_url, peer, server, quick)
    finally:
        baseline.drop(pgbench_url)
        if peer is not None:
            pgledger.drop(peer)
    return figures


def _peer(url: str, wallets: int) -> pgledger.Ledger | None:
    """pgledger with as many funded accounts as the scenario has wallets, or None (the
    reason printed and recorded) when it cannot be loaded."""
    reason = pgledger.unavailable()
    if reason is None:
        try:
            return pgledger.prepare(url, wallets)
        except Exception as exc:  # a peer that fails to load must not cost the other figures
            reason = f"loading pgledger failed: {exc}"
    for clients in (4, 8):
        harness.skip("transfers", f"transfers/s, {clients} clients, random wallets, vs {PEER}", reason)
    return None


def _vs_peer(clients: int, results: dict[str, list[Any]], uniform: dict[str, Any], tpcb: float) -> list[Figure]:
    if PEER not in results:
        return []
    peer = load.median_run(results[PEER])
    return [
        Figure(
            "transfers", f"transfers/s, {clients} clients, random wallets, vs {PEER}", uniform["tps"], "tx/s",
            baseline=peer["tps"], baseline_name=f"{PEER} {clients}c", goal=GOAL_VS_PGLEDGER.get(clients),
            runs=[round(r["tps"], 1) for r in results["uniform"]],
            extra={f"{PEER}_runs": [round(r["tps"], 1) for r in results[PEER]]},
        ),
        Figure(
            PEER, f"{PEER} transfers/s, {clients} clients, random accounts (peer baseline)", peer["tps"], "tx/s",
            baseline=tpcb, baseline_name=f"pgbench tpcb-like {clients}c",
            runs=[round(r["tps"], 1) for r in results[PEER]],
            extra={**load.latency_extra(peer), "failures": peer["failures"]},
        ),
    ]  # fmt: skip


def _server_cpu(
    setup: dict[str, Any], pgbench_url: str, peer: pgledger.Ledger | None, server: str, quick: bool
) -> list[Figure]:
    """Server CPU per transfer against per pgbench transaction (and per pgledger
    transfer, in ``extra``), each side serial on one connection (``bench.servercpu``)."""
    from ledgerline.db.connection import get_connection

    name = "server CPU per transfer / per pgbench transaction"
    seconds, rounds = (2.0, 1) if quick else (5.0, 3)
    rng = random.Random()  # noqa: S311 - load generation
    transfer_once(setup, rng, hot=False)  # connects
    pid = get_connection().get_backend_pid()
    reason = servercpu.unreadable(pid)
    if reason is not None:
        harness.skip("server CPU", name, reason)
        return []
    admin = database.connection.with_database(server, "postgres")
    sides: dict[str, Any] = {
        "ledgerline": lambda: servercpu.serial(pid, admin, lambda: transfer_once(setup, rng, hot=False), seconds),
        "pgbench": lambda: servercpu.pgbench_serial(pgbench_url, admin, seconds),
    }
    peer_conn = None
    if peer is not None:
        peer_conn = database.connection.connect(peer.url, autocommit=True, application_name="bench-pgledger")
        peer_cur = peer_conn.cursor()
        peer_pid = peer_conn.get_backend_pid()
        sides[PEER] = lambda: servercpu.serial(
            peer_pid, admin, lambda: pgledger.transfer(peer_cur, rng, peer.accounts), seconds
        )
    try:
        results = interleaved(sides, rounds, before=lambda: baseline.checkpoint(server), warmup=False)
    finally:
        if peer_conn is not None:
            peer_conn.close()
    if get_connection().get_backend_pid() != pid:
        raise RuntimeError("the transfer connection was replaced during the CPU measurement")
    ours = _median_by(results["ledgerline"], "us")
    pgb = _median_by(results["pgbench"], "us")
    extra: dict[str, Any] = {
        "pgbench_runs_us": [round(r["us"], 1) for r in results["pgbench"]],
        "transfers_counted": sum(r["count"] for r in results["ledgerline"]),
        "pgbench_transactions_counted": sum(r["count"] for r in results["pgbench"]),
        "serial_transfers_per_s": round(ours["per_second"], 1),
        "serial_pgbench_tps": round(pgb["per_second"], 1),
        "aux_us_per_transfer": round(ours["aux_us"], 1),
        "aux_us_per_pgbench_transaction": round(pgb["aux_us"], 1),
        "measured": "the one backend serving the client, /proc/<pid>/schedstat, serial, after a CHECKPOINT; "
        "aux_us: the server's background processes over the same window (shared with anything else it serves)",
    }
    if PEER in results:
        theirs = _median_by(results[PEER], "us")
        extra[f"{PEER}_us_per_transfer"] = round(theirs["us"], 1)
        extra[f"{PEER}_runs_us"] = [round(r["us"], 1) for r in results[PEER]]
        extra[f"ratio_to_{PEER}"] = round(ours["us"] / theirs["us"], 3)
    return [
        Figure(
            "server CPU", name, ours["us"], "µs/tx", baseline=pgb["us"], baseline_name="pgbench tpcb-like transaction",
            goal=GOAL_CPU, runs=[round(r["us"], 1) for r in results["ledgerline"]], extra=extra,
        )
    ]  # fmt: skip


def _median_by(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    return sorted(runs, key=lambda r: r[key])[len(runs) // 2]
