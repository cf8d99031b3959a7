"""One reconciliation run of a provider's UTC day.

The run row is created first (by the schedule, the CLI, or an admin's request: the
request only queues it), then ``execute`` does the work in one transaction: the
(provider, day) advisory lock, the report COPYed into staging page by page, the
set-based comparison, the staging rows deleted, the run's counts, and, when something
was found, the finance e-mail through the outbox. The metric goes out after the commit.
A run that fails is marked failed with the error, and nothing else of it remains.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any, TextIO

from ledgerline import outbox
from ledgerline.config import settings
from ledgerline.db import Cursor, transaction
from ledgerline.gateways.base import Gateway, GatewayPayment, Page
from ledgerline.reconciliation import store
from ledgerline.reconciliation.model import RunSummary
from ledgerline.reconciliation.staging import LineReader, copy_lines

# (provider, day, cursor) -> one page of the day's report: an adapter's list_payments.
PageSource = Callable[[date, str | None], Page]


class RunTaken(Exception):
    """The run is not queued any more: nothing to do here."""


def report(list_payments: PageSource, day: date) -> Iterator[GatewayPayment]:
    """Every payment of the day's report, fetched a page at a time as it is consumed."""
    cursor: str | None = None
    while True:
        page = list_payments(day, cursor)
        yield from page.items
        if not page.next_cursor:
            return
        cursor = page.next_cursor


def reconcile(
    provider: str,
    day: date,
    gateway: Gateway,
    *,
    requested_by: str | None = None,
    progress: Callable[[int], None] | None = None,
    grace: timedelta | None = None,
) -> RunSummary:
    """Create a run of ``provider``'s ``day`` and execute it now (the schedule, the CLI)."""
    run = transaction(lambda cur: store.create_run(cur, provider, day, requested_by))
    return execute(run["id"], gateway.list_payments, progress=progress, grace=grace)


def execute(
    run_id: str,
    list_payments: PageSource,
    *,
    progress: Callable[[int], None] | None = None,
    grace: timedelta | None = None,
    emit_metric: bool = True,
) -> RunSummary:
    grace = grace if grace is not None else timedelta(minutes=settings().reconcile_grace_minutes)
    run = transaction(lambda cur: store.get_run(cur, run_id), read_only=True)
    if run is None:
        raise LookupError(f"no reconciliation run {run_id}")
    provider, day = run["provider"], run["day"]
    if not transaction(lambda cur: store.claim(cur, run_id)):
        raise RunTaken(f"reconciliation run {run_id} is not queued (another worker has it, or it ran)")
    started = time.monotonic()

    def work(cur: Cursor) -> RunSummary:
        store.lock_day(cur, provider, day)
        reader = LineReader(copy_lines(run_id, provider, report(list_payments, day)), progress)
        store.stage(cur, reader)
        staged_ms = int((time.monotonic() - started) * 1000)
        result = store.compare(cur, run_id, grace)
        duration_ms = int((time.monotonic() - started) * 1000)
        store.finish(cur, run_id, result, duration_ms)
        summary = RunSummary(
            run_id=run_id,
            provider=provider,
            day=day.isoformat(),
            gateway_count=int(result["gateway_count"]),
            ledger_count=int(result["ledger_count"]),
            discrepancy_count=int(result["discrepancy_count"]),
            totals=dict(result["totals"]),
            duration_ms=duration_ms,
            staged_ms=staged_ms,
        )
        if summary.discrepancy_count:
            _notify_finance(cur, summary)
        return summary

    try:
        summary = transaction(work)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        transaction(lambda cur: store.fail(cur, run_id, error))
        raise
    if emit_metric:
        _metric(summary)
    return summary


def _notify_finance(cur: Cursor, summary: RunSummary) -> None:
    """One e-mail per run with discrepancies, in the run's transaction (the outbox)."""
    ids = outbox.enqueue(
        cur,
        "notifications",
        {
            "type": "reconciliation.discrepancies",
            "email": settings().finance_email,
            "subject": f"Reconciliation {summary.provider} {summary.day}: {summary.discrepancy_count} discrepancies",
            "message": (
                f"The {summary.provider} report of {summary.day} (UTC) against the ledger found"
                f" {summary.discrepancy_count} discrepancies ({summary.gateway_count} report rows,"
                f" {summary.ledger_count} ledger payments).\n\n"
                f"Review them: GET /v1/admin/reconciliations/{summary.run_id}/discrepancies\n"
            ),
            "run_id": summary.run_id,
        },
    )
    outbox.publish_after_commit(cur, [ids])


def _metric(summary: RunSummary) -> None:
    from aws_lambda_powertools.metrics import MetricUnit

    from ledgerline import metric_names
    from ledgerline.observability import metrics

    metrics.add_metric(
        name=metric_names.RECONCILIATION_DISCREPANCIES, unit=MetricUnit.Count, value=summary.discrepancy_count
    )
    if metrics.metric_set:
        metrics.flush_metrics()


class Progress:
    """Report rows read so far, on one terminal line (stderr); silent when not a tty."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._on = self._stream.isatty()
        self._last = 0.0

    def __call__(self, rows: int) -> None:
        if not self._on or time.monotonic() - self._last < 0.1:
            return
        self._last = time.monotonic()
        width = 30
        filled = (rows // 10_000) % (width + 1)
        self._stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {rows} report rows read")
        self._stream.flush()

    def done(self, rows: int) -> None:
        if self._on:
            self._stream.write(f"\r{rows} report rows read{' ' * 30}\n")
            self._stream.flush()


def summary_json(s: RunSummary) -> dict[str, Any]:
    return {
        "run_id": s.run_id,
        "provider": s.provider,
        "day": s.day,
        "gateway_count": s.gateway_count,
        "ledger_count": s.ledger_count,
        "discrepancy_count": s.discrepancy_count,
        "totals": s.totals,
        "duration_ms": s.duration_ms,
        "staged_ms": s.staged_ms,
    }


def configured_providers() -> list[str]:
    """The providers whose keys the gateways secret holds (the schedule runs each)."""
    from ledgerline.aws import resources, secrets
    from ledgerline.gateways.base import PROVIDERS

    keys = secrets.get_json(resources.gateway_secret_id())
    return [p for p in PROVIDERS if keys.get(f"{p}_secret_key")]
