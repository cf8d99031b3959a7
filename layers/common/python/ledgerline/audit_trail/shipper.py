"""The audit shipper: chain committed audit rows, put them in the Object Lock bucket,
sign a checkpoint, mark the batch shipped (docs/audit.md).

One batch is three steps, and a crash between any two is harmless:

1. ``audit_chain_extend`` (one transaction, under the lock on ``audit_ship_state``): the
   unshipped batch left by a crash if there is one, else the next rows in commit-safe
   order, numbered and linked, and recorded as a pending batch;
2. its objects (one per ``dt=`` day it spans) and its signed checkpoint are put, at keys
   named by the batch's seq range, so a batch shipped twice is put twice to the same keys
   with the same bytes (a second, identical version; never a gap or a fork);
3. ``audit_chain_shipped`` marks it shipped.

Runs are serialised by a session advisory lock, so two shippers (a slow tick and the next,
or ``ledgerline audit ship`` by hand) neither fork the chain nor put a batch twice at once.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ledgerline.audit_trail import canonical, checkpoint, store
from ledgerline.aws import audit_bucket
from ledgerline.db import transaction
from ledgerline.db.connection import get_connection

BATCH_SIZE = 5_000
LOCK_KEY = 0x61756469745F73  # "audit_s": one shipper at a time


class ChainBroken(RuntimeError):
    """A chained row no longer renders to the hash it was chained with: the database was
    edited after chaining. Nothing is shipped; `audit verify` names the row."""


@dataclass
class ShipReport:
    batches: int = 0
    records: int = 0
    reshipped: int = 0  # batches found chained but unshipped (a crash) and shipped again
    keys: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"batches": self.batches, "records": self.records, "reshipped": self.reshipped}


def ship(
    *, batch_size: int = BATCH_SIZE, time_budget: float = 30.0, after_chain: Callable[[], None] | None = None
) -> ShipReport:
    """Ship batches until none is left or ``time_budget`` seconds have passed.
    ``after_chain`` runs between steps 1 and 2 (tests use it to crash there)."""
    report = ShipReport()
    deadline = time.monotonic() + time_budget
    conn = get_connection()
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
    try:
        while True:
            found = transaction(lambda cur: store.extend(cur, batch_size), attempts=1)
            if found is None:
                return report
            if after_chain is not None:
                after_chain()
            keys = _ship_batch(found)
            report.batches += 1
            report.records += found.last_seq - found.first_seq + 1
            report.reshipped += int(found.pending)
            report.keys.extend(keys)
            if found.last_seq - found.first_seq + 1 < batch_size and not found.pending:
                return report
            if time.monotonic() >= deadline:
                return report
    finally:
        if not conn.closed:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


def _ship_batch(found: store.Batch) -> list[str]:
    row = transaction(lambda cur: store.batch(cur, found.first_seq), read_only=True)
    rendered = transaction(lambda cur: store.lines(cur, found.first_seq, found.last_seq), read_only=True)
    _check(row, rendered)
    days: dict[str, list[str]] = defaultdict(list)
    for _seq, when, text in rendered:
        days[when.isoformat()].append(text)
    objects = []
    recorded: dict[str, Any] = {}
    for day in sorted(days):
        key = checkpoint.object_key(day, found.first_seq, found.last_seq)
        data = ("\n".join(days[day]) + "\n").encode()
        digest = hashlib.sha256(data).hexdigest()
        version = audit_bucket.put(key, data)
        objects.append({"key": key, "sha256": digest, "records": len(days[day])})
        recorded[key] = {"sha256": digest, "records": len(days[day]), "version_id": version}
    signed = checkpoint.signed(
        checkpoint.body(found.first_seq, found.last_seq, row.prev_hash, row.head, row.rows_digest, objects)
    )
    cp_key = checkpoint.checkpoint_key(found.first_seq, found.last_seq)
    audit_bucket.put(cp_key, signed)
    transaction(lambda cur: store.mark_shipped(cur, found.first_seq, recorded, cp_key))
    return [*recorded, cp_key]


def _check(row: store.BatchRow, rendered: list[tuple[int, Any, str]]) -> None:
    """Every line re-hashes to its chained hash and links to the one before: the rows
    were not edited since they were chained (the chain is never shipped wrong)."""
    expected = row.first_seq
    prev = row.prev_hash
    for seq, _dt, text in rendered:
        got_seq, got_prev, chain, content, record = canonical.split_line(text.encode())
        if (
            got_seq != expected
            or got_prev != prev
            or canonical.content_hash(record) != content
            or canonical.chain_hash(seq, prev, content) != chain
        ):
            raise ChainBroken(
                f"audit row seq {expected} no longer matches its chained hash; run `ledgerline audit verify`"
            )
        prev = chain
        expected += 1
    if expected != row.last_seq + 1 or prev != row.head:
        raise ChainBroken(
            f"batch {row.first_seq}-{row.last_seq} is incomplete in the database (seq {expected} missing)"
        )
