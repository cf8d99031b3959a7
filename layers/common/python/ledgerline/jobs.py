"""Schedules and queues: the single source of truth for asynchronous work.

The CDK async stack creates one EventBridge schedule per ``SCHEDULES`` row and one
queue (+ DLQ) per ``QUEUES`` row; the local scheduler and workers read the very same
rows, so the expressions and consumers cannot drift between AWS and a laptop.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    name: str  # kebab-case; also the function's name suffix
    expression: str  # EventBridge syntax: rate(1 minute) | cron(0 2 * * ? *)
    handler: str  # dotted module path exposing ``handler(event, context)``
    description: str
    # One run at a time: a run must end before the next tick can fire (EventBridge fires
    # somewhere within the minute), so the CDK app refuses a timeout longer than the
    # schedule's shortest interval minus 15 s. A per-minute job gets 45 s at most; what a
    # run leaves undone, the next tick picks up.
    timeout_seconds: int = 60
    grants: tuple[str, ...] = ()  # as Route.grants (ledgerline.routes.GRANTS)
    # A planned job's handler has not landed yet: AWS creates its schedule DISABLED and
    # the local scheduler skips it, so the deployable shape is complete but nothing fires.
    planned: bool = False


@dataclass(frozen=True)
class Queue:
    name: str  # kebab-case; the DLQ is ``<name>-dlq``
    consumer: str  # dotted module path exposing ``handler(event, context)`` for SQS batches
    description: str
    consumer_timeout_seconds: int = 30
    batch_size: int = 10
    max_receive_count: int = 5
    # Concurrent consumer invocations SQS may run (2-1000): each holds a database connection
    # through the proxy, so a burst of messages cannot exhaust the pool the API needs.
    max_concurrency: int = 5
    grants: tuple[str, ...] = ()  # as Route.grants (ledgerline.routes.GRANTS)
    planned: bool = False  # as for Schedule: the consumer has not landed yet

    @property
    def dlq_name(self) -> str:
        return f"{self.name}-dlq"

    @property
    def visibility_timeout_seconds(self) -> int:
        # AWS guidance: visibility >= 6 x the consumer's timeout, so a retried batch
        # never overlaps a still-running invocation.
        return 6 * self.consumer_timeout_seconds


SCHEDULES: tuple[Schedule, ...] = (
    Schedule("ledger-check", "rate(1 hour)", "functions.reconcile.ledger_check", "Ledger invariant check"),
    Schedule("hold-expiry", "rate(1 minute)", "functions.jobs.hold_expiry", "Expire holds past their expiry", 45),
    Schedule(
        "idempotency-expiry",
        "rate(1 hour)",
        "functions.jobs.idempotency_expiry",
        "Purge idempotency keys older than 24 h",
    ),
    Schedule(
        "auth-purge",
        "rate(1 hour)",
        "functions.auth.purge",
        "Drop expired revocations, one-time tokens, reset requests and old throttles",
    ),
    Schedule(
        "balance-fold",
        "rate(1 minute)",
        "functions.jobs.balance_fold",
        "Fold hot-account deltas into cached balances",
        45,
    ),
    Schedule(
        "reconcile",
        "cron(30 2 * * ? *)",
        "functions.reconcile.gateway_reports",
        "Daily reconciliation against gateway reports",
        900,
        grants=("secret:gateways", "sqs:notifications"),
    ),
    Schedule(
        "reconcile-queued",
        "rate(15 minutes)",
        "functions.reconcile.queued_runs",
        "Reconciliation runs queued by administrators",
        870,
        grants=("secret:gateways", "sqs:notifications"),
    ),
    Schedule(
        "audit-ship",
        "rate(1 minute)",
        "functions.audit.ship",
        "Chain and ship audit rows to the Object Lock bucket",
        45,  # ships what fits in a run; the next tick continues from the chain head
        grants=("s3:audit-write", "kms:audit-checkpoint"),
    ),
    Schedule(
        "outbox-relay",
        "rate(1 minute)",
        "functions.jobs.outbox_relay",
        "Relay outbox rows to their queues",
        45,
        grants=("sqs:notifications", "sqs:merchant-webhooks", "sqs:gateway-payouts"),
    ),
    Schedule(
        "outbox-purge",
        "rate(1 hour)",
        "functions.jobs.outbox_purge",
        "Delete outbox rows relayed longer ago than the retention (as the owner role)",
    ),
    Schedule("overdue-invoices", "cron(0 6 * * ? *)", "functions.invoices.overdue", "Mark invoices past due"),
    Schedule(
        "payouts-status",
        "rate(15 minutes)",
        "functions.jobs.payouts_status",
        "Ask the gateways about payouts they accepted and have not answered",
        300,
        # the settlement's notification and merchant event are published right after its commit
        grants=("secret:gateways", "sqs:notifications", "sqs:merchant-webhooks"),
    ),
)

QUEUES: tuple[Queue, ...] = (
    Queue(
        "gateway-payouts",
        "functions.jobs.payouts",
        "Approved withdrawals to pay out through their gateway (ids only)",
        grants=("secret:gateways", "kms:field"),
    ),
    Queue(
        "gateway-webhooks",
        "functions.webhooks.consume",
        "Verified gateway webhooks awaiting processing",
        # The re-query; the notification and the merchant event it writes to the outbox are
        # published right after its commit (the relay's sweep sends them otherwise).
        grants=("secret:gateways", "sqs:notifications", "sqs:merchant-webhooks"),
    ),
    Queue(
        "notifications",
        "functions.jobs.notifications",
        "Outgoing e-mail/SMS notifications (password reset, alerts)",
        grants=("ses:send",),
    ),
    Queue(
        "merchant-webhooks",
        "functions.webhooks.deliver",
        "Signed deliveries to merchant endpoints",
        # One POST per invocation: a slow merchant (up to delivery.DEADLINE_SECONDS) cannot
        # push a batch past the consumer's timeout and spend the other messages' receives.
        batch_size=1,
        grants=("kms:field",),
    ),
)


def schedule(name: str) -> Schedule:
    return next(s for s in SCHEDULES if s.name == name)


def queue(name: str) -> Queue:
    return next(q for q in QUEUES if q.name == name)
