"""What the local AWS stand-in keeps across restarts: S3 objects (every version) and KMS keys.

moto keeps its state in memory, so without this every ``dev up`` is a blank account: the
audit bucket is empty and every KMS key is new (a shipped trail no longer verifies, access
tokens issued before the restart stop verifying). moto has no state persistence of its own
(its recorder replays requests, which would make new random keys and new version ids), so
this module runs inside moto's server process and reads and writes moto's models directly:

- ``restore()``, before the server answers its first request, loads what was kept into
  moto's backends: buckets (versioning, Object Lock and its default retention) with every
  object version in its order, keeping version ids, last-modified times, checksums,
  metadata and each version's own retention and legal hold; delete markers too; then KMS
  keys with their ids, ARNs, key material (symmetric) and private keys (asymmetric), state
  and aliases.
- ``wrap(app)`` wraps moto's WSGI application: after every request that may change S3 or
  KMS, and before the client sees the answer, the change is on disk. The child process
  dies with ``os._exit`` when its parent goes, so nothing may wait for a clean shutdown.

On disk (``<state_dir>``, private to the user): ``kms.json`` (rewritten whole; a handful
of keys), ``s3/journal.jsonl`` (one line per new or changed version or bucket, appended and
fsynced; folded and rewritten at each start) and ``s3/blobs/<sha256>`` (object bodies,
written once by content). Not kept: bucket policies, encryption settings, tags, ACLs,
multipart uploads in progress; SQS messages and Secrets Manager values (those are seeded
again from ``local-secrets.json`` by ``bootstrap``).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import json
import logging
import os
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

logger = logging.getLogger("ledgerline.local.aws_state")

KMS_FILE = "kms.json"
S3_DIR = "s3"
JOURNAL = "journal.jsonl"
BLOBS = "blobs"

# KMS actions that change nothing; every other action is followed by a save.
_KMS_READS = ("Describe", "List", "Get", "Sign", "Verify", "Encrypt", "Decrypt", "Generate", "ReEncrypt")
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"

Wsgi = Callable[[dict[str, Any], Any], Iterable[bytes]]
VersionId = tuple[str, str, str, str]  # account, bucket, key, version id


class StateStore:
    """The kept state of one local stand-in, under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._kms_text = ""
        self._buckets: dict[tuple[str, str], str] = {}  # (account, bucket) → its record, as written
        self._versions: dict[VersionId, tuple[Any, ...]] = {}  # → fingerprint of what was written

    # ------------------------------------------------------------------ paths

    @property
    def kms_file(self) -> Path:
        return self.root / KMS_FILE

    @property
    def journal(self) -> Path:
        return self.root / S3_DIR / JOURNAL

    @property
    def blobs(self) -> Path:
        return self.root / S3_DIR / BLOBS

    # ------------------------------------------------------------------ start

    def restore(self) -> None:
        """Load what was kept into moto's backends (call before serving)."""
        for path in (self.root, self.root / S3_DIR, self.blobs):
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o700)
        try:
            with self._lock:
                self._restore_s3()
                self._restore_kms()
        except Exception as exc:
            # Starting blank would silently lose the kept trail and keys: refuse, and say how.
            raise RuntimeError(
                f"could not load the kept local AWS state from {self.root}: {exc}. Fix or restore it, or move "
                "it away to start blank (the kept audit objects and keys are then gone)"
            ) from exc

    def _restore_s3(self) -> None:
        buckets, versions = _fold(self._read_journal())
        for record in buckets.values():
            _restore_bucket(record)
        for record in versions.values():
            _restore_version(record, self._blob(record["blob"]) if record.get("blob") else b"")
        # Compact: one line per live bucket and version, and no body nobody refers to.
        lines = [*buckets.values(), *versions.values()]
        _write_atomically(self.journal, "".join(json.dumps(r, sort_keys=True) + "\n" for r in lines).encode())
        referenced = {r["blob"] for r in versions.values() if r.get("blob")}
        for blob in self.blobs.iterdir():
            if blob.name not in referenced:
                blob.unlink()
        # What is on disk now, in the terms the next diff uses.
        self._buckets.clear()
        self._versions.clear()
        self._scan_s3(write=False)

    def _read_journal(self) -> Iterator[dict[str, Any]]:
        if not self.journal.exists():
            return
        with open(self.journal, "rb") as f:
            for number, line in enumerate(f, 1):
                try:
                    yield json.loads(line)
                except ValueError:
                    # Only a line cut short by a crash mid-append can be torn; it was never
                    # acknowledged to the client, so it is dropped.
                    logger.warning("%s line %d is not JSON; ignored", self.journal, number)

    def _restore_kms(self) -> None:
        if not self.kms_file.exists():
            return
        text = self.kms_file.read_text()
        for record in json.loads(text):
            _restore_key(record)
        self._kms_text = text

    # ------------------------------------------------------------------ serving

    def wrap(self, app: Wsgi) -> Wsgi:
        """``app`` with every S3 or KMS change saved before its answer is sent."""

        def wrapped(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            service = _service(environ)
            body = app(environ, start_response)  # moto has done the work when this returns
            try:
                if service in (None, "s3") and environ.get("REQUEST_METHOD") in ("PUT", "POST", "DELETE"):
                    self.save_s3()
                if service in (None, "kms") and _kms_may_change(environ):
                    self.save_kms()
            except Exception:
                # The change is made in memory and cannot be taken back; say so loudly.
                logger.exception("could not keep the local AWS state under %s", self.root)
            return body

        return wrapped

    def save_s3(self) -> None:
        with self._lock:
            self._scan_s3(write=True)

    def save_kms(self) -> None:
        with self._lock:
            text = json.dumps([_key_record(k) for k in _kms_keys()], indent=1, sort_keys=True)
            if text != self._kms_text:
                _write_atomically(self.kms_file, text.encode())
                self._kms_text = text

    def _scan_s3(self, *, write: bool) -> None:
        """Append to the journal whatever differs from what it holds (in moto's order)."""
        lines: list[dict[str, Any]] = []
        seen_buckets: set[tuple[str, str]] = set()
        seen: set[VersionId] = set()
        for account, bucket in _buckets():
            ident = (account, bucket.name)
            seen_buckets.add(ident)
            record = _bucket_record(account, bucket)
            text = json.dumps(record, sort_keys=True)
            if self._buckets.get(ident) != text:
                lines.append(record)
                self._buckets[ident] = text
            for name, versions in bucket.keys.lists():
                for version in versions:
                    vid = (account, bucket.name, name, str(version.version_id))
                    seen.add(vid)
                    fingerprint = _fingerprint(version)
                    if self._versions.get(vid) != fingerprint:
                        lines.append(self._version_record(account, bucket.name, version, write=write))
                        self._versions[vid] = fingerprint
        for vid in [v for v in self._versions if v not in seen]:
            lines.append({"op": "drop", "account": vid[0], "bucket": vid[1], "key": vid[2], "version_id": vid[3]})
            del self._versions[vid]
        for ident in [b for b in self._buckets if b not in seen_buckets]:
            lines.append({"op": "drop_bucket", "account": ident[0], "bucket": ident[1]})
            del self._buckets[ident]
        if write and lines:
            with open(self.journal, "ab") as f:
                f.write("".join(json.dumps(r, sort_keys=True) + "\n" for r in lines).encode())
                f.flush()
                os.fsync(f.fileno())

    def _version_record(self, account: str, bucket: str, version: Any, *, write: bool) -> dict[str, Any]:
        record = _version_record(account, bucket, version)
        if write and record["kind"] == "object":
            value = version.value
            record["blob"] = hashlib.sha256(value).hexdigest()
            self._put_blob(record["blob"], value)
        elif record["kind"] == "object":
            record["blob"] = None  # not needed: only fingerprints are kept on a scan without writes
        return record

    def _blob(self, digest: str) -> bytes:
        value = (self.blobs / digest).read_bytes()
        if hashlib.sha256(value).hexdigest() != digest:
            # A damaged file fails the start rather than serve other bytes under a kept version.
            raise RuntimeError(f"{self.blobs / digest} does not match its hash; restore it or move {self.root} away")
        return value

    def _put_blob(self, digest: str, value: bytes) -> None:
        path = self.blobs / digest
        if not path.exists():
            _write_atomically(path, value)


# ---------------------------------------------------------------------- requests


def _service(environ: dict[str, Any]) -> str | None:
    """The AWS service a request is signed for (None when it cannot be told)."""
    found = _CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", "")) or _CREDENTIAL_SCOPE.search(
        "Credential=" + urllib.parse.unquote(_query(environ).get("X-Amz-Credential", ""))
    )
    if found:
        return found.group(1).lower()
    if environ.get("HTTP_X_AMZ_TARGET", "").startswith("TrentService."):
        return "kms"
    return None


def _query(environ: dict[str, Any]) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(environ.get("QUERY_STRING", "")))


def _kms_may_change(environ: dict[str, Any]) -> bool:
    action = environ.get("HTTP_X_AMZ_TARGET", "").partition(".")[2]
    return environ.get("REQUEST_METHOD") == "POST" and not action.startswith(_KMS_READS)


# ---------------------------------------------------------------------- S3 ↔ records


def _buckets() -> Iterator[tuple[str, Any]]:
    from moto.s3.models import s3_backends

    # items()/values(), not [...]: indexing would create backends for every account and region.
    for account, regions in list(s3_backends.items()):
        for backend in list(regions.values()):
            for bucket in list(backend.buckets.values()):
                yield account, bucket


def _bucket_record(account: str, bucket: Any) -> dict[str, Any]:
    return {
        "op": "bucket",
        "account": account,
        "bucket": bucket.name,
        "region": bucket.region_name,
        "versioning": bucket.versioning_status,
        "object_lock": bool(bucket.object_lock_enabled),
        "default_lock": [bucket.default_lock_mode or "", bucket.default_lock_days or 0, bucket.default_lock_years or 0],
    }


def _is_delete_marker(version: Any) -> bool:
    from moto.s3.models import FakeDeleteMarker

    return isinstance(version, FakeDeleteMarker)


def _fingerprint(version: Any) -> tuple[Any, ...]:
    # The object itself (compared by identity, and held so that its id cannot be reused): an
    # object replaced under the same version id (a bucket without versioning) is a new one.
    if _is_delete_marker(version):
        return ("marker", version)
    return ("object", version, version.lock_mode, version.lock_until, version.lock_legal_status)


def _version_record(account: str, bucket: str, version: Any) -> dict[str, Any]:
    common = {
        "op": "version",
        "account": account,
        "bucket": bucket,
        "key": version.name,
        "version_id": str(version.version_id),
        "last_modified": version.last_modified.strftime(_TIME_FORMAT),
    }
    if _is_delete_marker(version):
        return {**common, "kind": "marker"}
    return {
        **common,
        "kind": "object",
        "region": version.region_name,
        "etag": version.etag.strip('"'),
        "storage": version.storage_class,
        "metadata": dict(version.metadata),
        "encryption": version.encryption,
        "kms_key_id": version.kms_key_id,
        "lock_mode": version.lock_mode,
        "lock_until": version.lock_until,
        "legal_hold": version.lock_legal_status,
        "checksum_algorithm": version.checksum_algorithm,
        "checksum_value": version.checksum_value,
    }


def _fold(records: Iterable[dict[str, Any]]) -> tuple[dict[Any, dict[str, Any]], dict[Any, dict[str, Any]]]:
    """The journal's end state: live buckets and versions, versions in first-written order."""
    buckets: dict[Any, dict[str, Any]] = {}
    versions: dict[Any, dict[str, Any]] = {}
    for r in records:
        op = r.get("op")
        if op == "bucket":
            buckets[(r["account"], r["bucket"])] = r
        elif op == "drop_bucket":
            buckets.pop((r["account"], r["bucket"]), None)
            for vid in [v for v in versions if v[:2] == (r["account"], r["bucket"])]:
                del versions[vid]
        elif op == "version":
            vid = (r["account"], r["bucket"], r["key"], r["version_id"])
            versions[vid] = r  # a changed retention keeps the version's place
        elif op == "drop":
            versions.pop((r["account"], r["bucket"], r["key"], r["version_id"]), None)
    return buckets, versions


def _restore_bucket(record: dict[str, Any]) -> None:
    from moto.s3.models import s3_backends
    from moto.utilities.utils import get_partition

    backend = s3_backends[record["account"]][get_partition(record["region"])]
    bucket = backend.create_bucket(record["bucket"], record["region"])
    bucket.versioning_status = record["versioning"]
    bucket.object_lock_enabled = record["object_lock"]
    bucket.default_lock_mode, bucket.default_lock_days, bucket.default_lock_years = record["default_lock"]


def _restore_version(record: dict[str, Any], value: bytes) -> None:
    from moto.s3.models import FakeDeleteMarker, FakeKey, s3_backends

    partition, account = s3_backends.bucket_accounts[record["bucket"]]
    bucket = s3_backends[account][partition].buckets[record["bucket"]]
    existing = bucket.keys.getlist(record["key"], [])
    last_modified = datetime.datetime.strptime(record["last_modified"], _TIME_FORMAT)
    version: Any
    if record["kind"] == "marker":
        # A marker points at the version it hid; one whose versions are gone points at a stub.
        hidden = existing[-1] if existing else FakeKey(record["key"], b"", account, bucket.region_name)
        version = FakeDeleteMarker(hidden)
        version._version_id = record["version_id"]
    else:
        version = FakeKey(
            name=record["key"],
            value=value,
            account_id=account,
            region_name=record["region"],
            storage=record["storage"],
            etag=record["etag"],
            is_versioned=record["version_id"] != "null",
            version_id=record["version_id"],
            bucket_name=record["bucket"],
            encryption=record["encryption"],
            kms_key_id=record["kms_key_id"],
            lock_mode=record["lock_mode"],
            lock_legal_status=record["legal_hold"],
            lock_until=record["lock_until"],
            checksum_value=record["checksum_value"],
        )
        version.checksum_algorithm = record["checksum_algorithm"]
        version.metadata.update(record["metadata"])
    version.last_modified = last_modified
    bucket.keys.setlist(record["key"], [*existing, version])


# ---------------------------------------------------------------------- KMS ↔ records


def _kms_keys() -> Iterator[Any]:
    from moto.kms.models import kms_backends

    for _, regions in list(kms_backends.items()):
        for backend in list(regions.values()):
            yield from list(backend.keys.values())


def _key_record(key: Any) -> dict[str, Any]:
    from cryptography.hazmat.primitives import serialization

    private_pem = key.private_key.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return {
        "account": key.account_id,
        "region": key.region,
        "id": key.id,
        "arn": key.arn,
        "creation_date": key.creation_date,
        "description": key.description,
        "key_usage": key.key_usage,
        "key_spec": key.key_spec,
        "origin": key.origin,
        "policy": key.policy,
        "key_state": key.key_state,
        "enabled": key.enabled,
        "deletion_date": key.deletion_date.strftime(_TIME_FORMAT) if key.deletion_date else None,
        "rotation": key.key_rotation_status,
        "key_material": base64.b64encode(key.key_material).decode(),
        "private_key": private_pem.decode(),
        "aliases": sorted(key.aliases),
    }


def _restore_key(record: dict[str, Any]) -> None:
    from cryptography.hazmat.primitives import serialization
    from moto.kms.models import kms_backends

    backend = kms_backends[record["account"]][record["region"]]
    key = backend.create_key(record["policy"], record["key_usage"], record["key_spec"], record["description"], None,
                             origin=record["origin"])  # fmt: skip
    del backend.keys[key.id]
    key.id, key.arn, key.creation_date = record["id"], record["arn"], record["creation_date"]
    key.key_material = base64.b64decode(record["key_material"])
    wrapper: Any = key.private_key  # moto's wrapper around a cryptography key
    wrapper.private_key = serialization.load_pem_private_key(record["private_key"].encode(), password=None)
    key.key_state, key.enabled, key.key_rotation_status = record["key_state"], record["enabled"], record["rotation"]
    if record["deletion_date"]:
        key.deletion_date = datetime.datetime.strptime(record["deletion_date"], _TIME_FORMAT)
    backend.keys[key.id] = key
    for alias in record["aliases"]:
        backend.create_alias(key.id, alias)


# ---------------------------------------------------------------------- files


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
