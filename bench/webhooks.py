"""Scenario 6: gateway webhooks — verified and enqueued webhooks/s through the local
gateway, and credited payments/s through the gateway-webhooks consumer.

Pending top-ups are opened in the database (``money_op`` 'topup', as ``POST /v1/topups``
does) and paid in the fake gateway's books, which signs each one's Paystack webhook
(Paystack: no timestamp in its signature, so a webhook signed at set-up still verifies
minutes later; the other providers cost the same HMAC and one more header).

- Ingress: ``CLIENTS`` processes post those signed webhooks to ``POST /v1/webhooks/paystack``
  on the local gateway (in this process), each verified over its raw bytes and sent to
  the ``gateway-webhooks`` queue (moto). Baseline, same run, same clients: the same
  messages sent straight to the queue (``ledgerline.aws.queues.send``), what enqueueing
  alone costs on this stand-in.
- Consumer: ``CONSUMERS`` processes run the Lambda consumer (``functions.webhooks.consume``)
  over one webhook per unpaid payment, in batches of 10, each batch the event Lambda's
  SQS event source delivers: parse, dedupe, re-query the fake gateway over HTTP, credit
  in one statement. The receiving is AWS's work and is not measured (moto's receive
  costs ~150 ms per call on a queue of a few hundred messages: it would measure moto).
  Credited payments/s is the count credited over the time from the common start to the
  last batch. Baseline: the crediting statement alone (``payment_confirm``) for as many
  payments with as many processes, without the handler or the gateway.
"""

from __future__ import annotations

import os
import time
from decimal import Decimal
from typing import Any

from bench import baseline, database, load
from bench.harness import Figure, interleaved, percentile

CLIENTS = 8
CONSUMERS = 4
PROVIDER = "paystack"
AMOUNT = Decimal("150.00")


def _payments(n: int, wallets: int) -> list[dict[str, Any]]:
    """``n`` pending top-ups over ``wallets`` users' wallets (a credit locks its wallet)."""
    from ledgerline import jsonutil
    from ledgerline.db import transaction
    from ledgerline.ledger.operations import by_name
    from ledgerline.ledger.testing import new_wallet

    accounts = [new_wallet("NGN") for _ in range(wallets)]
    op = by_name("topup")

    def work(cur: Any, chunk: range) -> list[dict[str, Any]]:
        out = []
        for i in chunk:
            account = accounts[i % wallets]
            args = op.arguments(
                {"account_id": str(account.id), "amount": str(AMOUNT), "currency": "NGN", "provider": PROVIDER},
                owner=account.owner_id,
            )
            cur.execute(
                "SELECT money_op(p_op => 'topup', p_actor => %s::jsonb, p_args => %s::jsonb) AS r",
                (
                    jsonutil.dumps({"id": str(account.owner_id), "type": "user", "ip": "127.0.0.1"}),
                    jsonutil.dumps(args),
                ),
            )
            out.append(cur.fetchone()["r"]["body"])
        return out

    created: list[dict[str, Any]] = []
    for start in range(0, n, 200):
        created += transaction(lambda cur, s=start: work(cur, range(s, min(n, s + 200))))
    return created


def _signed(fake: Any, payments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each payment paid in the fake's books; its signed webhook, not delivered."""
    out = []
    for p in payments:
        fake.open_payment(PROVIDER, p["reference"], AMOUNT, "NGN", "bench@example.test")
        paid = fake.pay(PROVIDER, reference=p["reference"], amount=AMOUNT, currency="NGN", deliver=False)
        out.append(paid["webhook"])
    return out


# ------------------------------------------------------------------------ ingress clients


def _ingress_client(base_url: str, webhooks: list[dict[str, Any]], seconds: float, start: Any, out: Any) -> None:
    import random

    import requests

    session = requests.Session()
    at = random.randrange(len(webhooks))  # noqa: S311 - load generation

    def request() -> int:
        nonlocal at
        hook = webhooks[at % len(webhooks)]
        at += 1
        r = session.post(
            f"{base_url}/v1/webhooks/{PROVIDER}", data=hook["body"].encode(), headers=hook["headers"], timeout=30
        )
        return r.status_code

    _loop(request, 200, seconds, start, out)


def _enqueue_client(webhooks: list[dict[str, Any]], seconds: float, start: Any, out: Any) -> None:
    import random

    from ledgerline.aws import queues

    at = random.randrange(len(webhooks))  # noqa: S311 - load generation

    def request() -> int:
        nonlocal at
        hook = webhooks[at % len(webhooks)]
        at += 1
        queues.send("gateway-webhooks", {"provider": PROVIDER, "body": hook["body"]}, attributes={"provider": PROVIDER})
        return 200

    _loop(request, 200, seconds, start, out)


def _loop(request: Any, ok: int, seconds: float, start: Any, out: Any) -> None:
    latencies, failures, statuses = [], 0, {}
    request()  # warm: imports, connection
    start_at, cpu = start.wait()
    deadline = start_at + seconds
    while time.time() < deadline:
        t = time.perf_counter()
        status = request()
        latencies.append(time.perf_counter() - t)
        if status != ok:
            failures += 1
            statuses[status] = statuses.get(status, 0) + 1
    out.put({"latencies": latencies, "failures": failures, "statuses": statuses, "cpu_s": load.cpu_since(cpu)})


# ------------------------------------------------------------------------ consumers


def _consumer(database_url: str, bodies: list[str], seconds: float, start: Any, out: Any) -> None:
    """The Lambda consumer over this client's messages, in batches of 10, each batch the
    event Lambda's SQS event source delivers (the receiving is AWS's work: moto's receive
    is not measured)."""
    os.environ["DATABASE_URL"] = database_url
    import hashlib
    import uuid

    from functions.webhooks import consume
    from ledgerline import jsonutil
    from ledgerline.local.gateway import LambdaContext
    from ledgerline.local.workers import record

    arn = "arn:aws:sqs:eu-west-1:000000000000:ledgerline-gateway-webhooks"

    def event(chunk: list[str]) -> dict[str, Any]:
        messages = [
            {"MessageId": str(uuid.uuid4()), "ReceiptHandle": uuid.uuid4().hex, "Body": b,
             "MD5OfBody": hashlib.md5(b.encode()).hexdigest(), "Attributes": {"ApproximateReceiveCount": "1"}}  # noqa: S324
            for b in chunk
        ]  # fmt: skip
        return {"Records": [record(m, queue_arn=arn, region="eu-west-1") for m in messages]}

    events = [event(bodies[i : i + 10]) for i in range(0, len(bodies), 10)]
    # Warm, as an instance that has run before: imports, connection, the gateway's keys.
    consume.handler(event([jsonutil.dumps({"provider": PROVIDER, "body": "{}"})]), LambdaContext("consume", "warm"))
    _, cpu = start.wait()
    latencies: list[float] = []
    failures = 0
    for e in events:
        t = time.perf_counter()
        result = consume.handler(e, LambdaContext("consume", str(uuid.uuid4())))
        latencies += [(time.perf_counter() - t) / len(e["Records"])] * len(e["Records"])
        failures += len(result["batchItemFailures"])
    out.put({"latencies": latencies, "failures": failures, "finished": time.time(), "cpu_s": load.cpu_since(cpu)})


def _confirm_client(database_url: str, facts: list[dict[str, Any]], seconds: float, start: Any, out: Any) -> None:
    """The crediting statement alone, for this client's share of the payments: one
    ``payment_confirm`` in autocommit (no re-query, no queue, no notification sent)."""
    os.environ["DATABASE_URL"] = database_url
    from psycopg2.extras import RealDictCursor

    from ledgerline.db.connection import app_url, connect
    from ledgerline.payments import store

    actor = {"id": None, "type": "gateway", "metadata": {"provider": PROVIDER}}
    gateway = {"provider_id": "bench", "amount": str(AMOUNT), "currency": "NGN", "status": "succeeded"}
    conn = connect(app_url(), autocommit=True)
    cur = conn.cursor(cursor_factory=RealDictCursor)
    _, cpu = start.wait()
    latencies, failures = [], 0
    for event in facts:
        t = time.perf_counter()
        done = store.confirm(cur, provider=PROVIDER, event=event, decision="succeeded", actor=actor, gateway=gateway)
        latencies.append(time.perf_counter() - t)
        failures += done.outcome != "credited"
    out.put({"latencies": latencies, "failures": failures, "finished": time.time(), "cpu_s": load.cpu_since(cpu)})
    conn.close()


def _credited(url: str, references: list[str]) -> int:
    conn = database.connection.connect(url, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM payments WHERE status = 'succeeded' AND reference = ANY(%s)", (references,)
            )
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def _timed(target: Any, args: list[tuple[Any, ...]], url: str, references: list[str]) -> dict[str, Any]:
    """Credited payments/s: the count credited over the time from the common start to the
    last client's last piece of work. One client process per element of ``args``."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start = load.Start(ctx)
    clients = len(args)
    procs = [ctx.Process(target=target, args=(*a, 600.0, start, out)) for a in args]
    for p in procs:
        p.start()
    try:
        start_at = start.go(clients, procs)
        results = load._collect(out, procs, deadline=start_at + 720)
    finally:
        for p in procs:
            p.join()
    finished = max(r["finished"] for r in results)
    credited = _credited(url, references)
    latencies = [x for r in results for x in r["latencies"]]
    return {
        "tps": credited / max(1e-6, finished - start_at),
        "credited": credited,
        "seconds": finished - start_at,
        "failures": sum(r["failures"] for r in results),
        "p50_ms": round(percentile(latencies, 50) * 1000, 2) if latencies else None,
        "p99_ms": round(percentile(latencies, 99) * 1000, 2) if latencies else None,
    }


def run(quick: bool) -> list[Figure]:
    from ledgerline import config, jsonutil
    from ledgerline.local import aws
    from ledgerline.local.fake_gateway import FakeGateway
    from ledgerline.local.gateway import LocalGateway

    seconds, rounds = (4.0, 1) if quick else (20.0, 3)
    n_ingress, n_credit, wallets = (200, 300, 50) if quick else (500, 1500, 200)
    os.environ["LEDGERLINE_RATE_LIMITS"] = os.environ.get("LEDGERLINE_RATE_LIMITS", "") + ";webhook=off"
    url = database.fresh_database()
    server = database.server_url()
    moto = aws.start(port=aws.free_port())
    gateway = fake = None
    try:
        aws.point_library_at(moto.endpoint_url)
        aws.bootstrap(moto.endpoint_url)
        gateway = LocalGateway(port=0).start()
        fake = FakeGateway(port=0, webhook_url=gateway.url).start()
        os.environ["LEDGERLINE_FAKE_GATEWAY_PORT"] = str(fake.port)
        config.settings.cache_clear()

        # Ingress: the same signed webhooks, over and over (each is verified and queued anew).
        hooks = _signed(fake, _payments(n_ingress, wallets))
        sides = {
            "ingress": lambda: load.run_clients(_ingress_client, (gateway.url, hooks), CLIENTS, seconds),
            "enqueue": lambda: load.run_clients(_enqueue_client, (hooks,), CLIENTS, seconds),
        }
        ingress_runs = interleaved(sides, rounds, before=_fresh_queue, warmup=False)
        _real_queue()

        # Consumer: one webhook per unpaid payment in the queue, drained; then the
        # crediting statement alone over as many other payments.
        consumer_runs, confirm_runs = [], []
        for _ in range(rounds):
            # A credit publishes the user's notification right after its commit: to an
            # empty queue each round (nobody consumes it here, and moto slows as it grows).
            _fresh_queue("notifications")
            baseline.checkpoint(server)
            payments = _payments(n_credit, wallets)
            bodies = [jsonutil.dumps({"provider": PROVIDER, "body": h["body"]}) for h in _signed(fake, payments)]
            references = [p["reference"] for p in payments]
            shares = [(url, bodies[i::CONSUMERS]) for i in range(CONSUMERS)]
            consumer_runs.append(_timed(_consumer, shares, url, references))
            baseline.checkpoint(server)
            others = _payments(n_credit, wallets)
            facts = [(url, [_facts(p) for p in others[i::CONSUMERS]]) for i in range(CONSUMERS)]
            confirm_runs.append(_timed(_confirm_client, facts, url, [p["reference"] for p in others]))
        _real_queue("notifications")
    finally:
        if fake is not None:
            fake.stop()
        if gateway is not None:
            gateway.stop()
        moto.stop()
    ingress, enqueue = load.median_run(ingress_runs["ingress"]), load.median_run(ingress_runs["enqueue"])
    consumer, confirm = load.median_run(consumer_runs), load.median_run(confirm_runs)
    return [
        Figure(
            "webhooks", f"verified and enqueued webhooks/s through the local gateway, {CLIENTS} clients",
            ingress["tps"], "webhooks/s", baseline=enqueue["tps"], baseline_name=f"SQS send alone (moto) {CLIENTS}c",
            runs=[round(r["tps"], 1) for r in ingress_runs["ingress"]],
            extra={**load.latency_extra(ingress), "failures": ingress["failures"], "provider": PROVIDER},
        ),
        Figure(
            "webhooks", f"credited payments/s through the consumer, {CONSUMERS} consumers", consumer["tps"],
            "payments/s", baseline=confirm["tps"], baseline_name=f"payment_confirm alone {CONSUMERS}c",
            runs=[round(r["tps"], 1) for r in consumer_runs],
            extra={"credited": consumer["credited"], "of": n_credit, "seconds": round(consumer["seconds"], 2),
                   "failures": consumer["failures"], "per_message_p50_ms": consumer["p50_ms"],
                   "per_message_p99_ms": consumer["p99_ms"], "wallets": wallets,
                   "baseline_runs": [round(r["tps"], 1) for r in confirm_runs]},
        ),
    ]  # fmt: skip


def _facts(payment: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": f"charge.success:{payment['id']}",
        "type": "charge.success",
        "reference": payment["reference"],
        "amount": str(AMOUNT),
        "currency": "NGN",
        "status": "succeeded",
    }


def _fresh_queue(name: str = "gateway-webhooks") -> None:
    """Point the queue ``name`` at a new, empty one (moto slows as a queue grows, and
    allows one purge a minute); the previous stand-in is deleted."""
    import uuid

    from ledgerline.aws import clients, resources

    sqs = clients.client("sqs")
    var = resources.queue_env_var(name)
    if os.environ.get(var):
        sqs.delete_queue(QueueUrl=os.environ[var])
    os.environ[var] = sqs.create_queue(QueueName=f"bench-{name}-{uuid.uuid4().hex[:8]}")["QueueUrl"]


def _real_queue(name: str = "gateway-webhooks") -> None:
    """Back to the stack's own queue."""
    from ledgerline.aws import clients, resources

    var = resources.queue_env_var(name)
    url = os.environ.pop(var, None)
    if url:
        clients.client("sqs").delete_queue(QueueUrl=url)
