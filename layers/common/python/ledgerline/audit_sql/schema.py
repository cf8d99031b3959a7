"""The audit table as Athena sees it: its name and columns. The one definition: the CDK
app builds the Glue table from it (``infra.constants.AUDIT_COLUMNS``), the shipper writes
these columns, DuckDB reads them."""

from __future__ import annotations

TABLE = "audit_events"
PARTITION = "dt"  # YYYY-MM-DD of occurred_at in UTC, from the object's key (audit/dt=.../)
OBJECT_PREFIX = "audit/dt="

# name, Glue (Hive) type; the order of the table's columns.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "string"),
    ("seq", "bigint"),
    ("occurred_at", "string"),  # ISO 8601 UTC; from_iso8601_timestamp() in queries
    ("actor_id", "string"),
    ("actor_type", "string"),
    ("actor_ip", "string"),
    ("user_agent", "string"),
    ("action", "string"),
    ("category", "string"),
    ("resource_type", "string"),
    ("resource_id", "string"),
    ("payload_before", "string"),  # JSON text; json_extract_scalar() in queries
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
