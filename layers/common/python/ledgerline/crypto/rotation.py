"""Key rotation: re-encrypt every stored field under a new generation of data keys.

``rotate`` (the ``ledgerline keys rotate`` command) starts a generation whose cut-off is
now: every envelope whose data key was made before the cut-off is decrypted and encrypted
again with a fresh data key (from the current KMS key, so retargeting the key alias first
moves every row to the new KMS key). It works in batches, one transaction each, and
records its cursor per column in the database, so a stopped or failed run resumes where it
was. Reading is never blocked: old and new envelopes both open, each by its own header.

Other processes may go on writing with a data key made before the cut-off until their
cache lets it go (``CachePolicy.max_age_seconds``). So after the first scan the rotation
waits for that settle time and for transactions still in flight, then sweeps again; the
generation is completed only when no envelope older than the cut-off is left, and that is
audited (``keys.rotated``, administration category).
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

from psycopg2 import sql
from psycopg2.extras import execute_values

from ledgerline import audit
from ledgerline.crypto.columns import ENCRYPTED_COLUMNS, EncryptedColumn
from ledgerline.crypto.fields import DEFAULT_POLICY, FieldCipher, cipher, key_created_ms
from ledgerline.crypto.keys import DecryptionError
from ledgerline.db import Cursor, transaction

DEFAULT_BATCH_SIZE = 500
# Margin over the data-key lifetime for clock differences between machines and for the
# time between encrypting a value and writing it.
SETTLE_MARGIN_SECONDS = 60.0
_LOCK_KEY = 0x4B4559524F54  # "KEYROT": one rotation starts or finishes at a time
_IN_FLIGHT_WAIT_SECONDS = 120.0


class RotationError(Exception):
    """The rotation cannot go on; what was re-encrypted so far stays committed."""


@dataclass
class ColumnProgress:
    pass_no: int
    done: bool
    rows_reencrypted: int


@dataclass
class RotationReport:
    generation: int
    status: str  # completed | running (stopped after max_batches) | settling (waiting for writers)
    resumed: bool
    key_id: str
    cutoff_ms: int
    rows_reencrypted: int
    columns: dict[str, ColumnProgress] = field(default_factory=dict)
    settle_in_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _stamp(ms: int) -> bytes:
    # Envelope bytes 1..8 are the data key's creation time, big-endian: bytea comparison
    # in SQL orders them like the numbers.
    return struct.pack(">Q", ms)


def rotate(
    batch_size: int = DEFAULT_BATCH_SIZE,
    *,
    columns: Sequence[EncryptedColumn] | None = None,
    field_cipher: FieldCipher | None = None,
    actor: audit.Actor | None = None,
    max_batches: int | None = None,
    wait: bool = True,
    settle_seconds: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> RotationReport:
    """Start (or resume) a rotation and take it as far as it can go now.

    ``max_batches`` stops after that many batches (status ``running``; run again to go on).
    ``wait=False`` returns with status ``settling`` instead of sleeping until other
    processes' data keys from before the cut-off have expired.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    cols = list(ENCRYPTED_COLUMNS if columns is None else columns)
    fc = field_cipher or cipher()
    actor = actor or audit.Actor.system("keys-rotate")
    settle = DEFAULT_POLICY.max_age_seconds + SETTLE_MARGIN_SECONDS if settle_seconds is None else settle_seconds

    gen, resumed = transaction(lambda cur: _start_or_resume(cur, cols, fc, actor, settle))
    # New envelopes must be younger than the cut-off: drop a data key made before it.
    created = fc.current_key_created_ms()
    if created is not None and created < gen["cutoff_ms"]:
        fc.retire_encryption_key()
    while time.time() * 1000 <= gen["cutoff_ms"]:
        sleep(0.002)

    batches = 0
    for _sweep in range(10):
        for col in cols:
            while True:
                if max_batches is not None and batches >= max_batches:
                    return _report(gen, resumed, "running")
                result = transaction(partial(_batch, gen=gen, col=col, fc=fc, batch_size=batch_size))
                if result is None:
                    break
                batches += 1
        progress = transaction(lambda cur: _progress(cur, gen["generation"]))
        if any(p.pass_no == 1 for p in progress.values()):
            remaining = _wait_to_settle(gen["generation"], wait, sleep)
            if remaining > 0:
                return _report(gen, resumed, "settling", settle_in=remaining)
            transaction(lambda cur: _begin_sweep(cur, gen["generation"]))
            continue
        if transaction(lambda cur: _finish(cur, gen, cols, actor)):
            return _report(gen, resumed, "completed")
        # A straggler was written behind the sweep: sweep that column again.
    raise RotationError(f"generation {gen['generation']}: envelopes older than the cut-off keep appearing")


# --------------------------------------------------------------------------- steps


def _start_or_resume(
    cur: Cursor, cols: list[EncryptedColumn], fc: FieldCipher, actor: audit.Actor, settle: float
) -> tuple[dict[str, Any], bool]:
    cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
    for col in cols:
        _check_column(cur, col)
    cur.execute("SELECT * FROM crypto_key_generations WHERE status = 'running' FOR UPDATE")
    gen = cur.fetchone()
    resumed = gen is not None
    if gen is None:
        cur.execute(
            """
            INSERT INTO crypto_key_generations (generation, cutoff_ms, key_id, settle_at)
            SELECT coalesce(max(generation), 0) + 1, %s, %s, now() + make_interval(secs => %s)
              FROM crypto_key_generations
            RETURNING *
            """,
            # One millisecond ahead: a data key made in the very millisecond the rotation
            # starts (by any process) counts as older than the cut-off, never as newer.
            (int(time.time() * 1000) + 1, fc.provider.key_id, settle),
        )
        gen = cur.fetchone()
        audit.record(
            cur,
            actor,
            "keys.rotation_started",
            "key_generation",
            gen["generation"],
            after={
                "generation": gen["generation"],
                "key_id": gen["key_id"],
                "cutoff_ms": gen["cutoff_ms"],
                "columns": sorted(f"{c.table}.{c.column}" for c in cols),
            },
        )
    cur.execute(
        "SELECT table_name, column_name FROM crypto_rotation_progress WHERE generation = %s", (gen["generation"],)
    )
    known = {(r["table_name"], r["column_name"]) for r in cur.fetchall()}
    missing = known - {(c.table, c.column) for c in cols}
    if missing:
        names = ", ".join(sorted(f"{t}.{c}" for t, c in missing))
        raise RotationError(
            f"generation {gen['generation']} also covers {names}, which is not among the columns given; "
            "resume it with every column it started with"
        )
    for col in cols:
        if (col.table, col.column) not in known:
            # A column registered after the start is scanned in the current pass.
            cur.execute(
                """
                INSERT INTO crypto_rotation_progress (generation, table_name, column_name, pass)
                SELECT %s, %s, %s, coalesce(min(pass), 1) FROM crypto_rotation_progress WHERE generation = %s
                """,
                (gen["generation"], col.table, col.column, gen["generation"]),
            )
    return dict(gen), resumed


def _check_column(cur: Cursor, col: EncryptedColumn) -> None:
    cur.execute(
        """
        SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type
          FROM pg_attribute a
         WHERE a.attrelid = to_regclass(%s) AND a.attname IN (%s, %s) AND NOT a.attisdropped
        """,
        (col.table, col.column, col.id_column),
    )
    types = {r["attname"]: r["type"] for r in cur.fetchall()}
    if types.get(col.column) != "bytea" or col.id_column not in types:
        raise RotationError(
            f"{col.table}.{col.column} (id {col.id_column}) is registered as encrypted, but the database has "
            f"no such bytea column with that id column ({types or 'no such table'})"
        )


def _select_stale(col: EncryptedColumn, after: bool) -> sql.Composed:
    query = sql.SQL(
        "SELECT {id}::text AS row_id, {col} AS blob FROM {table} "
        "WHERE {col} IS NOT NULL AND substring({col} FROM 2 FOR 8) < %(cutoff)s"
    ).format(id=sql.Identifier(col.id_column), col=sql.Identifier(col.column), table=sql.Identifier(col.table))
    if col.where:
        query += sql.SQL(" AND (") + sql.SQL(col.where) + sql.SQL(")")
    if after:
        query += sql.SQL(" AND {id} > %(after)s").format(id=sql.Identifier(col.id_column))
    return query + sql.SQL(" ORDER BY {id} LIMIT %(limit)s FOR UPDATE").format(id=sql.Identifier(col.id_column))


def _batch(cur: Cursor, gen: dict[str, Any], col: EncryptedColumn, fc: FieldCipher, batch_size: int) -> int | None:
    """Re-encrypt the next batch of one column; None when the column's pass is done."""
    cur.execute(
        """
        SELECT last_id, done FROM crypto_rotation_progress
         WHERE generation = %s AND table_name = %s AND column_name = %s FOR UPDATE
        """,
        (gen["generation"], col.table, col.column),
    )
    progress = cur.fetchone()
    if progress["done"]:
        return None
    cutoff = gen["cutoff_ms"]
    cur.execute(
        _select_stale(col, progress["last_id"] is not None),
        {"cutoff": _stamp(cutoff), "after": progress["last_id"], "limit": batch_size},
    )
    rows = cur.fetchall()
    fresh = []
    for row in rows:
        try:
            plaintext = fc.decrypt(row["blob"], table=col.table, column=col.column, row_id=row["row_id"])
        except DecryptionError as exc:
            raise RotationError(
                f"{col.table}.{col.column} row {row['row_id']} cannot be decrypted ({exc}); "
                "repair or clear that value, then run the rotation again to resume"
            ) from None
        blob = fc.encrypt(plaintext, table=col.table, column=col.column, row_id=row["row_id"])
        if key_created_ms(blob) < cutoff:
            raise RotationError("this machine's clock is behind the rotation's cut-off; fix the clock and resume")
        fresh.append((row["row_id"], blob))
    if fresh:
        # One statement per batch; the rows are locked (FOR UPDATE above) until commit.
        cur.execute(
            "SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attname = %s",
            (col.table, col.id_column),
        )
        update = sql.SQL(
            "UPDATE {table} AS t SET {col} = v.blob FROM (VALUES %s) AS v(id, blob) WHERE t.{id} = v.id::{id_type}"
        ).format(
            table=sql.Identifier(col.table),
            col=sql.Identifier(col.column),
            id=sql.Identifier(col.id_column),
            id_type=sql.SQL(cur.fetchone()["t"]),
        )
        execute_values(cur, update.as_string(cur), fresh, template="(%s, %s::bytea)", page_size=len(fresh))
    cur.execute(
        """
        UPDATE crypto_rotation_progress
           SET last_id = coalesce(%s, last_id), done = %s, rows_reencrypted = rows_reencrypted + %s,
               updated_at = now()
         WHERE generation = %s AND table_name = %s AND column_name = %s
        """,
        (
            rows[-1]["row_id"] if rows else None,
            len(rows) < batch_size,
            len(rows),
            gen["generation"],
            col.table,
            col.column,
        ),
    )
    cur.execute(
        "UPDATE crypto_key_generations SET rows_reencrypted = rows_reencrypted + %s WHERE generation = %s",
        (len(rows), gen["generation"]),
    )
    return len(rows)


def _progress(cur: Cursor, generation: int) -> dict[str, ColumnProgress]:
    cur.execute(
        """
        SELECT table_name, column_name, pass, done, rows_reencrypted
          FROM crypto_rotation_progress WHERE generation = %s ORDER BY table_name, column_name
        """,
        (generation,),
    )
    return {
        f"{r['table_name']}.{r['column_name']}": ColumnProgress(r["pass"], r["done"], r["rows_reencrypted"])
        for r in cur.fetchall()
    }


def _wait_to_settle(generation: int, wait: bool, sleep: Callable[[float], None]) -> float:
    """Seconds still to wait (0 when settled): data keys from before the cut-off have
    expired everywhere and every transaction that may have used one has ended."""

    def remaining(cur: Cursor) -> float:
        cur.execute(
            "SELECT greatest(extract(epoch FROM settle_at - now()), 0)::float AS s "
            "FROM crypto_key_generations WHERE generation = %s",
            (generation,),
        )
        return float(cur.fetchone()["s"])

    left = transaction(remaining)
    if left > 0:
        if not wait:
            return left
        sleep(left)
    # Transactions that began before now may still commit values encrypted earlier.
    horizon = transaction(lambda cur: _one(cur, "SELECT pg_snapshot_xmax(pg_current_snapshot())::text AS v"))
    deadline = time.monotonic() + _IN_FLIGHT_WAIT_SECONDS
    while not transaction(
        lambda cur: _one(cur, "SELECT pg_snapshot_xmin(pg_current_snapshot()) >= %s::xid8 AS v", (horizon,))
    ):
        if not wait or time.monotonic() > deadline:
            return 1.0
        sleep(0.2)
    return 0.0


def _one(cur: Cursor, query: str, params: tuple[Any, ...] = ()) -> Any:
    cur.execute(query, params)
    return cur.fetchone()["v"]


def _begin_sweep(cur: Cursor, generation: int) -> None:
    cur.execute(
        """
        UPDATE crypto_rotation_progress SET pass = 2, last_id = NULL, done = false, updated_at = now()
         WHERE generation = %s AND pass = 1 AND done
        """,
        (generation,),
    )


def _finish(cur: Cursor, gen: dict[str, Any], cols: list[EncryptedColumn], actor: audit.Actor) -> bool:
    """Complete the generation if no envelope older than its cut-off is left."""
    cur.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
    cur.execute("SELECT status FROM crypto_key_generations WHERE generation = %s FOR UPDATE", (gen["generation"],))
    if cur.fetchone()["status"] == "completed":
        return True  # another run of the same rotation finished it
    stale = []
    for col in cols:
        cur.execute(_select_stale(col, False), {"cutoff": _stamp(gen["cutoff_ms"]), "limit": 1})
        if cur.fetchone() is not None:
            stale.append(col)
    if stale:
        for col in stale:
            cur.execute(
                """
                UPDATE crypto_rotation_progress SET last_id = NULL, done = false, updated_at = now()
                 WHERE generation = %s AND table_name = %s AND column_name = %s
                """,
                (gen["generation"], col.table, col.column),
            )
        return False
    cur.execute(
        """
        UPDATE crypto_key_generations SET status = 'completed', completed_at = now()
         WHERE generation = %s RETURNING rows_reencrypted
        """,
        (gen["generation"],),
    )
    rows = cur.fetchone()["rows_reencrypted"]
    audit.record(
        cur,
        actor,
        "keys.rotated",
        "key_generation",
        gen["generation"],
        after={
            "generation": gen["generation"],
            "key_id": gen["key_id"],
            "cutoff_ms": gen["cutoff_ms"],
            "rows_reencrypted": rows,
            "columns": {name: asdict(p) for name, p in _progress(cur, gen["generation"]).items()},
        },
    )
    return True


def _report(gen: dict[str, Any], resumed: bool, status: str, settle_in: float = 0.0) -> RotationReport:
    def read(cur: Cursor) -> tuple[int, dict[str, ColumnProgress]]:
        cur.execute("SELECT rows_reencrypted FROM crypto_key_generations WHERE generation = %s", (gen["generation"],))
        return cur.fetchone()["rows_reencrypted"], _progress(cur, gen["generation"])

    rows, progress = transaction(read)
    return RotationReport(
        generation=gen["generation"],
        status=status,
        resumed=resumed,
        key_id=gen["key_id"],
        cutoff_ms=gen["cutoff_ms"],
        rows_reencrypted=rows,
        columns=progress,
        settle_in_seconds=round(settle_in, 1),
    )


def status() -> dict[str, Any] | None:
    """The latest generation and its progress (``ledgerline keys status``), or None."""

    def read(cur: Cursor) -> dict[str, Any] | None:
        cur.execute("SELECT * FROM crypto_key_generations ORDER BY generation DESC LIMIT 1")
        gen = cur.fetchone()
        if gen is None:
            return None
        out = dict(gen)
        out["columns"] = {k: asdict(v) for k, v in _progress(cur, gen["generation"]).items()}
        return out

    return transaction(read)


def main(argv: Sequence[str] | None = None) -> int:
    """``ledgerline keys rotate|status``: exit 0 when done, 3 when the rotation must be run again."""
    parser = argparse.ArgumentParser(prog="ledgerline keys", description="field-encryption keys")
    sub = parser.add_subparsers(dest="command", required=True)
    rot = sub.add_parser("rotate", help="re-encrypt every encrypted field under a new data-key generation")
    rot.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    rot.add_argument("--max-batches", type=int, default=None, help="stop after this many batches (resume later)")
    rot.add_argument(
        "--no-wait", action="store_true", help="do not wait for other processes' data keys to expire; resume later"
    )
    sub.add_parser("status", help="the latest generation and its progress")
    args = parser.parse_args(argv)
    if args.command == "status":
        print(json.dumps(status(), default=str, indent=2))
        return 0
    try:
        report = rotate(args.batch_size, max_batches=args.max_batches, wait=not args.no_wait)
    except RotationError as exc:
        print(f"keys rotate: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report.as_dict(), default=str, indent=2))
    return 0 if report.status == "completed" else 3
