"""Custom CloudWatch metric names (namespace Ledgerline), shared by the code that emits
them and the CDK alarms that watch them, so the two cannot drift apart."""

LEDGER_IMBALANCE = "LedgerImbalance"  # ledger invariant findings in one check
RECONCILIATION_DISCREPANCIES = "ReconciliationDiscrepancies"
PAYOUTS_OVERDUE = "PayoutsOverdue"  # payouts unanswered past LEDGERLINE_PAYOUT_OVERDUE_HOURS, per run
