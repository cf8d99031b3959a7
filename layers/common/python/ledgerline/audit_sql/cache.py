"""A local copy of the audit bucket's table objects, for DuckDB (whose S3 extension
cannot be downloaded here): ``<cache>/audit/dt=YYYY-MM-DD/<object>``, the keys as they
are, so the ``dt`` partition comes from the path as Athena's does.

Incremental: only keys that are new or have a new current version are fetched; a file
whose key is gone (or was never the bucket's) is removed, so the copy holds exactly what
Athena would read.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ledgerline.audit_sql import schema
from ledgerline.aws import athena

MANIFEST = "manifest.json"
# What the table reads: objects right in a dt= folder, none whose name Hive skips (_ or .).
TABLE_KEY = re.compile(r"audit/dt=\d{4}-\d{2}-\d{2}/[^/_.][^/]*")


@dataclass(frozen=True)
class Synced:
    objects: int
    fetched: int
    removed: int


def table_root(cache: Path) -> Path:
    return cache / "audit"


def sync(bucket: str, cache: Path) -> Synced:
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two queries at once fetch each object once
        try:
            return _sync(bucket, cache)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _sync(bucket: str, cache: Path) -> Synced:
    manifest_path = cache / MANIFEST
    known: dict[str, str] = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    current = {k: v for k, v in athena.current_objects(bucket, schema.OBJECT_PREFIX) if TABLE_KEY.fullmatch(k)}
    tmp = cache / "tmp"
    tmp.mkdir(exist_ok=True)
    fetched = 0
    for key, tag in sorted(current.items()):
        path = cache / key
        if known.get(key) == tag and path.is_file():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        part = tmp / f"{os.getpid()}.part"
        athena.download(bucket, key, tag, part)
        os.replace(part, path)
        known[key] = tag
        fetched += 1
    removed = 0
    root = table_root(cache)
    for path in root.rglob("*") if root.exists() else ():
        if path.is_file() and path.relative_to(cache).as_posix() not in current:
            path.unlink()
            removed += 1
    known = {k: v for k, v in known.items() if k in current}
    part = tmp / f"{os.getpid()}.manifest"
    part.write_text(json.dumps(known, sort_keys=True))
    os.replace(part, manifest_path)
    return Synced(objects=len(current), fetched=fetched, removed=removed)
