"""Health: the database answers and its schema version."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg2

from ledgerline.db import transaction
from ledgerline.observability import logger

if TYPE_CHECKING:
    from ledgerline.db import Cursor


def check() -> dict[str, Any]:
    try:
        version = transaction(lambda cur: _schema_version(cur), attempts=2)
    except (psycopg2.Error, OSError):
        logger.exception("health check: database unreachable")
        return {"status": "degraded", "database": "unreachable", "schema_version": None}
    return {"status": "ok", "database": "ok", "schema_version": version}


def _schema_version(cur: Cursor) -> int:
    cur.execute("SELECT coalesce(max(version), 0) AS v FROM schema_migrations")
    return int(cur.fetchone()["v"])
