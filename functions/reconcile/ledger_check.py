"""Scheduled (ledger-check): the incremental invariant check, then the next slices of the
full check, within a time budget (``ledgerline.ledger.invariants.run_ledger_check``).

Findings are logged as errors (an alarm fires on them in AWS), counted in a metric, and
each new one is audited once as ``ledger.imbalance_detected``; the books are never
changed here: a repair (``ledger.rebuild_balances``) is a decision for an operator.
"""

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from ledgerline import metric_names
from ledgerline.ledger.invariants import run_ledger_check
from ledgerline.observability import logger, metrics

# The schedule's function times out at 60 s (jobs.Schedule.timeout_seconds): the budget leaves
# room for the slice under way when it runs out (each slice is a short transaction, under
# the 5 s statement timeout), and for a cold start.
BUDGET_SECONDS = 40.0


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger.set_correlation_id(event.get("id"))
    run = run_ledger_check(BUDGET_SECONDS)
    findings = run.findings
    metrics.add_metric(name=metric_names.LEDGER_IMBALANCE, unit=MetricUnit.Count, value=len(findings))
    if metrics.metric_set:
        metrics.flush_metrics()
    if findings:
        for f in findings:
            logger.error(
                "ledger invariant broken", extra={"invariant": f.invariant, "detail": f.detail, "data": f.data}
            )
    else:
        logger.info(
            "ledger invariants hold",
            extra={"checked_below": run.checked_below, "full_passes_completed": run.full_passes_completed},
        )
    return run.to_json()
