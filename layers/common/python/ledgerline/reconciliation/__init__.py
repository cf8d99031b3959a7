"""Reconciliation: a day's gateway report against the ledger's payments (issue 16).

``run.reconcile`` streams the report page by page (the adapter's ``list_payments``) into
``reconciliation_staging`` with COPY, then one set-based comparison in PostgreSQL
(``reconcile_compare``) stores the findings; ``store`` is the SQL access.
"""

from ledgerline.reconciliation.model import KINDS, Discrepancy, RunSummary

__all__ = ["KINDS", "Discrepancy", "RunSummary"]
