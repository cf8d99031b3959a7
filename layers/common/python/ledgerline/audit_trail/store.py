"""The audit trail's SQL, in one place (the routines are in db/routines/audit_chain_*.sql)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from ledgerline.db import Cursor

# The canonical record of audit_log row ``a``, as the chain hashed it.
_RECORD = """audit_chain_record(
    p_id => a.id, p_occurred_at => a.occurred_at, p_category => a.category, p_action => a.action,
    p_actor_id => a.actor_id, p_actor_type => a.actor_type, p_actor_ip => a.actor_ip,
    p_user_agent => a.user_agent, p_resource_type => a.resource_type, p_resource_id => a.resource_id,
    p_payload_before => a.payload_before, p_payload_after => a.payload_after, p_metadata => a.metadata)"""


@dataclass(frozen=True)
class Batch:
    first_seq: int
    last_seq: int
    pending: bool  # chained earlier and not shipped: ship it again, unchanged


@dataclass(frozen=True)
class BatchRow:
    first_seq: int
    last_seq: int
    prev_hash: str
    head: str
    rows_digest: str
    shipped: bool


def extend(cur: Cursor, limit: int) -> Batch | None:
    """The batch to ship: an unshipped one, or up to ``limit`` newly chained rows."""
    cur.execute("SELECT audit_chain_extend(p_limit => %s) AS batch", (limit,))
    found = cur.fetchone()["batch"]
    if found is None:
        return None
    return Batch(int(found["first_seq"]), int(found["last_seq"]), bool(found["pending"]))


def lines(cur: Cursor, first: int, last: int) -> list[tuple[int, date, str]]:
    """(seq, dt, line) of the chained rows first..last, in seq order."""
    cur.execute("SELECT seq, dt, line FROM audit_chain_lines(%s, %s)", (first, last))
    return [(int(r["seq"]), r["dt"], r["line"]) for r in cur.fetchall()]


def batch(cur: Cursor, first: int) -> BatchRow:
    cur.execute(
        "SELECT first_seq, last_seq, encode(prev_hash, 'hex') AS prev_hash, encode(head, 'hex') AS head,"
        " encode(rows_digest, 'hex') AS rows_digest, shipped_at IS NOT NULL AS shipped"
        " FROM audit_ship_batches WHERE first_seq = %s",
        (first,),
    )
    r = cur.fetchone()
    return BatchRow(
        int(r["first_seq"]), int(r["last_seq"]), r["prev_hash"], r["head"], r["rows_digest"], bool(r["shipped"])
    )


def mark_shipped(cur: Cursor, first: int, objects: dict[str, Any], checkpoint: str) -> bool:
    """``objects``: key → {"sha256", "version_id", "records"} (a JSON object)."""
    cur.execute(
        "SELECT audit_chain_shipped(p_first_seq => %s, p_objects => %s, p_checkpoint => %s) AS done",
        (first, objects, checkpoint),
    )
    return bool(cur.fetchone()["done"])


def batches_from(cur: Cursor, first: int) -> set[tuple[int, int]]:
    """The seq ranges of the batches chained from seq ``first`` on, shipped or not."""
    cur.execute("SELECT first_seq, last_seq FROM audit_ship_batches WHERE first_seq >= %s", (first,))
    return {(int(r["first_seq"]), int(r["last_seq"])) for r in cur.fetchall()}


def shipped_through(cur: Cursor) -> int:
    """The last seq of the last shipped batch (0 before the first)."""
    cur.execute("SELECT coalesce(max(last_seq), 0) AS last FROM audit_ship_batches WHERE shipped_at IS NOT NULL")
    return int(cur.fetchone()["last"])


_DIGEST = _RECORD.replace("audit_chain_record(", "audit_chain_row_digest(")

# For `audit verify`: every chained row in seq order, and whether its audit_log row is as
# it was chained: 's' same (its row version's xmin has not moved, or its digest still
# matches), 'e' edited since, 'd' detached (its partition has left the database).
CHAIN_ROWS = f"""
SELECT c.seq, c.audit_id::text, encode(c.content_hash, 'hex'), encode(c.chain_hash, 'hex'),
       CASE WHEN a.id IS NULL THEN 'd'
            WHEN a.xmin = c.row_xmin THEN 's'
            WHEN {_DIGEST} = c.row_digest THEN 's'
            ELSE 'e' END,
       b.shipped_at IS NOT NULL
  FROM audit_chain c
  JOIN audit_ship_batches b ON b.first_seq = c.batch
  LEFT JOIN audit_log a ON a.id = c.audit_id
 ORDER BY c.seq
"""

# The digest of each batch's chained row digests, to hold against its signed checkpoint.
BATCH_DIGESTS = """
SELECT batch, encode(sha256(string_agg(row_digest, ''::bytea ORDER BY seq)), 'hex') AS digest
  FROM audit_chain GROUP BY batch
"""

# (seq, audit id, content hash, chain hash, 's'|'e'|'d', shipped)
ChainRow = tuple[int, str, str, str, str, bool]


def chain_rows(conn: Any, *, fetch: int = 20_000) -> Iterator[ChainRow]:
    """Stream the chain through a server-side cursor, in a read-only transaction of its
    own on ``conn``."""
    conn.autocommit = False
    conn.set_session(readonly=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SET LOCAL work_mem = '64MB'")  # the seq sort stays in memory
        with conn.cursor(name="audit_verify_chain") as cur:
            cur.itersize = fetch
            cur.execute(CHAIN_ROWS)
            yield from cur
    finally:
        conn.rollback()


def batch_digests(cur: Cursor) -> dict[int, str]:
    cur.execute(BATCH_DIGESTS)
    return {int(r["batch"]): r["digest"] for r in cur.fetchall()}


def recomputed(cur: Cursor, first: int, last: int) -> list[tuple[int, str, str | None]]:
    """(seq, audit id, content hash of the row rendered now) for seqs first..last: the
    canonical record re-rendered (slow; for naming the row once a batch differs)."""
    cur.execute(
        f"""SELECT c.seq, c.audit_id::text AS audit_id,
                   encode(sha256(convert_to({_RECORD}, 'UTF8')), 'hex') AS now
              FROM audit_chain c LEFT JOIN audit_log a ON a.id = c.audit_id
             WHERE c.seq BETWEEN %s AND %s ORDER BY c.seq""",
        (first, last),
    )
    return [(int(r["seq"]), r["audit_id"], r["now"]) for r in cur.fetchall()]


def record_verified(cur: Cursor, through_seq: int, head: str, by: str) -> None:
    """What `audit verify` proved (audit_log_verified, migration 0018): the retention job
    detaches a month of audit_log only at or below it. Owner only."""
    cur.execute(
        "INSERT INTO audit_log_verified (through_seq, chain_head, verified_by) VALUES (%s, decode(%s, 'hex'), %s)",
        (through_seq, head, by),
    )
