"""``ledgerline audit verify``: walk the chain from the bucket and compare it with the
database; stop at the first difference and name the record or checkpoint (docs/audit.md).

What is checked, in this order:

1. every version of every object under ``audit/`` (an overwrite is a new version, so the
   original is still there and the two are compared), and no delete marker hides one;
2. every checkpoint: all its versions alike, its signature valid under the KMS audit key's
   public key (GetPublicKey, checked here with ``cryptography``), and the checkpoints tile
   the sequence from 1 with each one's ``prev_head`` the previous one's ``head``;
3. every object a checkpoint lists: present, with the listed SHA-256; and every object in
   a ``dt=`` folder listed by a checkpoint (or part of a batch the database says is still
   being shipped);
4. every record: its content hash re-computed over its bytes, its link to the previous
   record, seqs gap-free and in order, the batch's last chain hash the checkpoint's head;
5. the database: each shipped seq has its chain row with the same hashes, and the audit
   row, rendered now, still hashes to the shipped content hash (an edit in the database).

The records are hashed from the shipped bytes as they are (``canonical.split_line``): no
JSON is parsed per record. The database side is one streaming query, run in a thread
while the bucket is read, so PostgreSQL re-renders rows while Python hashes objects.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TextIO, TypeVar

from ledgerline.audit_trail import canonical, checkpoint, lines, store
from ledgerline.aws import audit_bucket
from ledgerline.aws.audit_bucket import Version
from ledgerline.db import transaction

_RANGE = re.compile(r"/(\d{12})-(\d{12})\.jsonl\Z")
NEWLINE = b"\n"
T = TypeVar("T")
DOWNLOADS = 4  # objects downloaded at once


class Difference(Exception):
    """The first thing that does not match; its message names the record or checkpoint."""


@dataclass
class Outcome:
    records: int = 0
    difference: str | None = None
    pending: int = 0  # chained in the database, in a batch not shipped yet
    detached: int = 0  # shipped rows whose audit_log partition has left the database
    seconds: float = 0.0
    head: str = canonical.GENESIS  # the chain hash of the last verified record
    bucket_seconds: float = 0.0  # reading and hashing the bucket
    database_seconds: float = 0.0  # the database's stream, concurrent with the bucket

    @property
    def ok(self) -> bool:
        return self.difference is None

    def message(self) -> str:
        if self.difference is not None:
            return f"audit verify failed: {self.difference}"
        extra = []
        if self.pending:
            extra.append(f"{self.pending} chained, not shipped yet")
        if self.detached:
            extra.append(f"{self.detached} no longer in the database (detached partitions)")
        return f"verified {self.records} records" + (f" ({'; '.join(extra)})" if extra else "")


class Progress:
    """A one-line bar on a terminal (stderr); silent otherwise."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._on = self._stream.isatty()
        self._last = 0.0

    def __call__(self, done: int, total: int, unit: str) -> None:
        if not self._on or (time.monotonic() - self._last < 0.1 and done < total):
            return
        self._last = time.monotonic()
        width = 30
        filled = width * done // max(total, 1)
        self._stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {unit}")
        if done >= total:
            self._stream.write("\n")
        self._stream.flush()


@dataclass
class _Bucket:
    by_key: dict[str, list[Version]] = field(default_factory=lambda: defaultdict(list))
    fetched: dict[tuple[str, str], Future[bytes]] = field(default_factory=dict)
    checks: dict[tuple[str, str], Future[tuple[str, list[lines.Record]]]] = field(default_factory=dict)
    digests: dict[tuple[str, str], Future[str]] = field(default_factory=dict)
    pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(max_workers=DOWNLOADS))

    def distinct(self, key: str) -> list[Version]:
        """One version per distinct content (ETag), oldest first, no delete markers."""
        seen: dict[str, Version] = {}
        for v in sorted(self.by_key.get(key, []), key=lambda v: v.last_modified):
            if not v.delete_marker and v.etag not in seen:
                seen[v.etag] = v
        return list(seen.values())

    def prefetch(self) -> None:
        """Start downloading every distinct version (checkpoints first), its SHA-256 and
        its records' check, so that downloads and hashing overlap. (Worker processes for
        the per-line work were tried: no faster here, the downloads from the stand-in
        dominate.)"""
        keys = sorted(self.by_key, key=lambda k: (not k.startswith(checkpoint.CHECKPOINTS), _order(k)))
        for key in keys:
            for v in self.distinct(key):
                fetched = self.pool.submit(audit_bucket.get, key, v.version_id)
                self.fetched[(key, v.version_id)] = fetched
                # after its download in the queue: never waits on a download not yet started
                self.digests[(key, v.version_id)] = self.pool.submit(_sha256, fetched)
                if not key.startswith(checkpoint.CHECKPOINTS):
                    self.checks[(key, v.version_id)] = self.pool.submit(self._check, key, fetched)

    def _check(self, key: str, fetched: Future[bytes]) -> tuple[str, list[lines.Record]]:
        return lines.checked(key, fetched.result())

    def contents(self, key: str) -> list[tuple[str, bytes]]:
        """(version id, bytes) of each distinct version of ``key``, oldest first."""
        out = []
        for v in self.distinct(key):
            future = self.fetched.get((key, v.version_id))
            out.append((v.version_id, future.result() if future else audit_bucket.get(key, v.version_id)))
        return out

    def digest(self, key: str, version_id: str, data: bytes) -> str:
        future = self.digests.get((key, version_id))
        return future.result() if future else hashlib.sha256(data).hexdigest()

    def checked(self, key: str, version_id: str, data: bytes) -> tuple[str, list[lines.Record]]:
        future = self.checks.get((key, version_id))
        try:
            return future.result() if future else lines.checked(key, data)
        except lines.BadRecord as exc:
            raise Difference(str(exc)) from None

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def _sha256(fetched: Future[bytes]) -> str:
    return hashlib.sha256(fetched.result()).hexdigest()  # releases the GIL on large objects


def _order(key: str) -> int:
    named = _RANGE.search(key)
    return int(named.group(1)) if named else 0


def verify(*, connect: Callable[[], Any], progress: Callable[[int, int, str], None] | None = None) -> Outcome:
    """Verify the trail; ``connect`` opens a new database connection (owned by this call)."""
    started = time.monotonic()
    db_rows: list[store.ChainRow] = []
    db_error: list[BaseException] = []
    took: list[float] = []
    conn = connect()
    reader = threading.Thread(target=_read_database, args=(conn, db_rows, db_error, took), daemon=True)
    reader.start()
    outcome = Outcome()
    try:
        try:
            shipped, checkpoints = _walk_bucket(
                progress, lambda n: _once(connect, lambda cur: store.batches_from(cur, n))
            )
            outcome.bucket_seconds = time.monotonic() - started
        finally:
            reader.join()
            outcome.database_seconds = took[0] if took else 0.0
        if db_error:
            raise db_error[0]
        _compare(shipped, checkpoints, db_rows, outcome, connect)
    except Difference as diff:
        outcome.difference = str(diff)
    finally:
        conn.close()
    outcome.seconds = time.monotonic() - started
    return outcome


def record(outcome: Outcome, *, by: str) -> None:
    """Record what a successful verify proved in audit_log_verified (as the owner: the
    retention job detaches a month of audit_log only at or below it)."""
    from ledgerline.db.connection import connect, owner_url

    conn = connect(owner_url(), autocommit=True)
    try:
        transaction(lambda cur: store.record_verified(cur, outcome.records, outcome.head, by), connection=lambda: conn)
    finally:
        conn.close()


def _read_database(conn: Any, out: list[store.ChainRow], error: list[BaseException], took: list[float]) -> None:
    started = time.monotonic()
    try:
        out.extend(store.chain_rows(conn))
    except BaseException as exc:  # reported by the caller's thread
        error.append(exc)
    took.append(time.monotonic() - started)


# ------------------------------------------------------------------------ the bucket


def _walk_bucket(
    progress: Callable[[int, int, str], None] | None,
    batches: Callable[[int], set[tuple[int, int]]],
) -> tuple[list[tuple[int, str, str, str]], list[checkpoint.Checkpoint]]:
    """Every shipped record as (seq, prev_hash, chain_hash, content_hash), in seq order,
    and the checkpoints, in seq order."""
    bucket = _Bucket()
    for v in audit_bucket.versions(checkpoint.PREFIX):
        bucket.by_key[v.key].append(v)
    for key, versions in sorted(bucket.by_key.items()):
        if any(v.delete_marker for v in versions):
            raise Difference(f"object {key}: a delete marker hides it from queries")
    bucket.prefetch()
    try:
        return _walk(bucket, progress, batches)
    finally:
        bucket.close()


def _walk(
    bucket: _Bucket,
    progress: Callable[[int, int, str], None] | None,
    batches: Callable[[int], set[tuple[int, int]]],
) -> tuple[list[tuple[int, str, str, str]], list[checkpoint.Checkpoint]]:
    public_key_id, der = audit_bucket.public_key()
    public_key = checkpoint.load_public_key(der)
    checkpoints = [
        _checkpoint(key, bucket, public_key, public_key_id)
        for key in sorted(bucket.by_key)
        if key.startswith(checkpoint.CHECKPOINTS)
    ]
    checkpoints.sort(key=lambda cp: cp.first_seq)
    records: list[tuple[int, str, str, str]] = []
    listed: set[str] = set()
    expected, head = 1, canonical.GENESIS
    for n, cp in enumerate(checkpoints):
        if cp.first_seq != expected:
            what = "a gap before it" if cp.first_seq > expected else "it overlaps the one before"
            raise Difference(f"checkpoint {cp.key}: starts at seq {cp.first_seq}, expected {expected} ({what})")
        if cp.prev_head != head:
            raise Difference(f"checkpoint {cp.key}: its prev_head is not the previous checkpoint's head")
        records.extend(_batch(cp, bucket, records[-1][2] if records else canonical.GENESIS))
        listed.update(key for key, _sha, _n in cp.objects)
        expected, head = cp.last_seq + 1, cp.head
        if progress is not None:
            progress(n + 1, len(checkpoints), "checkpoints")
    _unlisted(bucket, listed, expected, batches)
    return records, checkpoints


def _checkpoint(key: str, bucket: _Bucket, public_key: Any, key_id: str) -> checkpoint.Checkpoint:
    versions = bucket.contents(key)
    if len(versions) > 1:
        raise Difference(f"checkpoint {key}: overwritten ({len(versions)} different versions)")
    try:
        cp = checkpoint.parse(key, versions[0][1], public_key)
    except ValueError as exc:
        raise Difference(f"checkpoint {key}: {exc}") from None
    if not cp.signature_valid:
        raise Difference(f"checkpoint {key}: its signature does not verify with the audit key {key_id}")
    return cp


def _batch(cp: checkpoint.Checkpoint, bucket: _Bucket, prev: str) -> list[tuple[int, str, str, str]]:
    lines: list[tuple[int, str, str, str]] = []
    for key, sha, count in cp.objects:
        versions = bucket.contents(key)
        if not versions:
            raise Difference(
                f"object {key} (records in seq {cp.first_seq}-{cp.last_seq}, checkpoint {cp.key}) is missing:"
                " its version was deleted"
            )
        digests = {version_id: bucket.digest(key, version_id, data) for version_id, data in versions}
        good = [(v, data) for v, data in versions if digests[v] == sha]
        for version_id, data in versions:
            if digests[version_id] != sha:
                raise Difference(f"object {key} version {version_id}: {_diagnose(data, good[0][1] if good else None)}")
        _digest, found = bucket.checked(key, *good[0])
        if len(found) != count:
            raise Difference(f"object {key}: {len(found)} records, its checkpoint says {count}")
        lines.extend(found)
    if len(cp.objects) > 1:
        lines.sort()
    expected = cp.first_seq
    for seq, got_prev, chain, _content in lines:
        if seq != expected:
            what = "missing" if seq > expected else "twice"
            raise Difference(f"record seq {min(seq, expected)}: {what} in the objects of checkpoint {cp.key}")
        if got_prev != prev:
            raise Difference(f"record seq {seq}: prev_hash is not the chain hash of seq {seq - 1}")
        prev = chain
        expected += 1
    if expected != cp.last_seq + 1:
        raise Difference(f"record seq {expected}: missing from the objects of checkpoint {cp.key}")
    if prev != cp.head:
        raise Difference(f"checkpoint {cp.key}: head is not the chain hash of seq {cp.last_seq}")
    return lines


def _diagnose(data: bytes, original: bytes | None) -> str:
    """Why a version differs from what its checkpoint signed: the first record at fault."""
    seqs: list[tuple[int, bytes]] = []
    for n, raw in enumerate(data.split(b"\n")):
        if not raw:
            continue
        try:
            seq, _prev, _chain, content, record = canonical.split_line(raw)
        except canonical.MalformedLine:
            return f"line {n + 1} is not a shipped record (overwritten)"
        if canonical.content_hash(record) != content:
            return f"record seq {seq}{_id(record)} was edited (overwritten object)"
        seqs.append((seq, record))
    seen: set[int] = set()
    for seq, record in seqs:
        if seq in seen:
            return f"record seq {seq}{_id(record)} appears twice (inserted)"
        seen.add(seq)
    for (before, _r), (seq, record) in itertools.pairwise(seqs):
        if seq < before:
            return f"record seq {seq}{_id(record)} is out of order, after seq {before} (reordered)"
    known = {canonical.split_line(raw)[0] for raw in (original or b"").split(b"\n") if raw}
    for seq, record in seqs:
        if known and seq not in known:
            return f"record seq {seq}{_id(record)} is not in the original version (inserted)"
    return "it differs from what its checkpoint signed (overwritten)"


def _id(record: bytes) -> str:
    return lines.record_id(record)


def _unlisted(bucket: _Bucket, listed: set[str], next_seq: int, batches: Callable[[int], set[tuple[int, int]]]) -> None:
    """An object in a dt= folder that no checkpoint lists: forged, unless it belongs to a
    batch the database has chained after the last checkpoint (being shipped right now:
    its objects are put before its checkpoint). ``batches(n)``: the database's batch
    ranges from seq n on, asked after the listing, so a batch in flight is there."""
    in_flight: set[tuple[int, int]] | None = None
    for key in sorted(bucket.by_key):
        if key.startswith(checkpoint.CHECKPOINTS) or key in listed:
            continue
        named = _RANGE.search(key)
        if named and int(named.group(1)) >= next_seq:
            if in_flight is None:
                in_flight = batches(next_seq)
            if (int(named.group(1)), int(named.group(2))) in in_flight:
                continue
        seq = ""
        for _version, data in bucket.contents(key)[:1]:
            try:
                seq = f"record seq {canonical.split_line(data.split(NEWLINE, 1)[0])[0]} in "
            except canonical.MalformedLine:
                seq = ""
        raise Difference(f"{seq}object {key}: in no checkpoint (inserted)")


# ---------------------------------------------------------------------- the database


def _compare(
    shipped: list[tuple[int, str, str, str]],
    checkpoints: list[checkpoint.Checkpoint],
    rows: list[store.ChainRow],
    outcome: Outcome,
    connect: Callable[[], Any],
) -> None:
    """Record by record: the chain rows hold the shipped hashes; batch by batch: the rows'
    digests now match the digest its checkpoint signed (else: name the row)."""
    n = len(shipped)
    digests = _once(connect, store.batch_digests)
    for cp in checkpoints:
        if digests.get(cp.first_seq) != cp.rows_digest:
            raise Difference(_edited_in(cp, shipped, connect))
    for i, (seq, _prev, chain, content) in enumerate(shipped):
        if i >= len(rows) or rows[i][0] != seq:
            raise Difference(f"record seq {seq}: in the bucket but not in the database's chain (inserted)")
        _seq, audit_id, db_content, db_chain, state, _shipped = rows[i]
        if db_content != content or db_chain != chain:
            raise Difference(f"record seq {seq} (audit id {audit_id}): the bucket and the database's chain differ")
        if state == "e":
            raise Difference(f"record seq {seq} (audit id {audit_id}): edited in the database since it was shipped")
        if state == "d":
            outcome.detached += 1
    if shipped:
        outcome.head = shipped[-1][2]
    for row in rows[n:]:
        if row[5]:
            raise Difference(f"record seq {row[0]} (audit id {row[1]}): shipped, but missing from the bucket")
        outcome.pending += 1
    outcome.records = n


def _once(connect: Callable[[], Any], work: Callable[[Any], T]) -> T:
    """``work`` in one read-only transaction on a connection of its own, closed after."""
    conn = connect()
    try:
        return transaction(work, connection=lambda: conn, read_only=True)
    finally:
        conn.close()


def _edited_in(cp: checkpoint.Checkpoint, shipped: list[tuple[int, str, str, str]], connect: Callable[[], Any]) -> str:
    """The batch's rows differ from what its checkpoint signed although each matches its
    chained digest (those were rewritten too): re-render the batch's canonical records."""
    rows = _once(connect, lambda cur: store.recomputed(cur, cp.first_seq, cp.last_seq))
    for seq, audit_id, now in rows:
        if now is not None and now != shipped[seq - 1][3]:
            return f"record seq {seq} (audit id {audit_id}): edited in the database since it was shipped"
    return f"checkpoint {cp.key}: the database's rows of seq {cp.first_seq}-{cp.last_seq} differ from what it signed"
