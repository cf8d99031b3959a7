"""People reading the audit trail: a user's activity feed (``feed``: their own events in
plain sentences, ``sentences``) and the administrators' and auditors' investigation view
(``investigation``: the raw trail, filtered, each read itself audited)."""

from ledgerline.activity.feed import ActivityItem, list_activity
from ledgerline.activity.investigation import AuditRecord, Filters, list_audit

__all__ = ["ActivityItem", "AuditRecord", "Filters", "list_activity", "list_audit"]
