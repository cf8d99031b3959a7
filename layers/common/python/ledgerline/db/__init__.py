"""Database access: connections, the unit of work, migrations. Nothing else knows the driver."""

from ledgerline.db.tx import CommitOutcomeUnknown, Cursor, transaction

__all__ = ["CommitOutcomeUnknown", "Cursor", "transaction"]
