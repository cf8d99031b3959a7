"""The audit table as Athena sees it: its name and columns (the Glue table of
``infra/components/audit.py``; a unit test holds this copy equal to ``infra.constants``,
which the layer cannot import)."""

from __future__ import annotations

TABLE = "audit_events"
PARTITION = "dt"  # YYYY-MM-DD of occurred_at in UTC, from the object's key (audit/dt=.../)
OBJECT_PREFIX = "audit/dt="

# name, Glue (Hive) type; the order of the table's columns.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "string"),
    ("seq", "bigint"),
    ("occurred_at", "string"),
    ("actor_id", "string"),
    ("actor_type", "string"),
    ("actor_ip", "string"),
    ("user_agent", "string"),
    ("action", "string"),
    ("category", "string"),
    ("resource_type", "string"),
    ("resource_id", "string"),
    ("payload_before", "string"),
    ("payload_after", "string"),
    ("metadata", "string"),
    ("content_hash", "string"),
    ("prev_hash", "string"),
    ("chain_hash", "string"),
)


def database(prefix: str) -> str:
    """``ledgerline`` → ``ledgerline_audit`` (Glue database names take no hyphen)."""
    return f"{prefix}_audit".replace("-", "_")


def qualified_table(prefix: str) -> str:
    return f"{database(prefix)}.{TABLE}"
