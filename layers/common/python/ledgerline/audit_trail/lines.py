"""`audit verify`'s inner loop over one object's bytes: a pure function of the bytes
(``verify`` runs it in its download threads, as each object arrives)."""

from __future__ import annotations

import hashlib
import re

# The layout of a shipped line (canonical.line): the chain fields, then the record.
LINE = re.compile(
    rb'\{"seq":(\d{1,19}),"prev_hash":"([0-9a-f]{64})","chain_hash":"([0-9a-f]{64})","content_hash":"([0-9a-f]{64})",'
    rb"([^\n]*)\n"
)
_ID = re.compile(rb'"id":"([0-9a-f-]{36})"')

Record = tuple[int, str, str, str]  # (seq, prev_hash, chain_hash, content_hash)


class BadRecord(ValueError):
    """The first line at fault; the message names it."""


def record_id(record: bytes) -> str:
    found = _ID.search(record)
    return f" (audit id {found.group(1).decode()})" if found else ""


def checked(key: str, data: bytes) -> tuple[str, list[Record]]:
    """(sha256 of the object, its records), each line's content hash re-computed over its
    bytes and its link hash checked: one regex scan, two SHA-256 per line, no JSON."""
    out = []
    sha256 = hashlib.sha256
    at = 0
    for m in LINE.finditer(data):
        if m.start() != at:
            break
        at = m.end()
        digits, prev, chain, content, rest = m.groups()
        seq = int(digits)
        h = sha256(b"{")
        h.update(rest)
        if h.hexdigest().encode() != content:
            raise BadRecord(
                f"record seq {seq}{record_id(rest)}: edited in the bucket (it no longer hashes to its content_hash)"
            )
        if sha256(b"%d:%s:%s" % (seq, prev, content)).hexdigest().encode() != chain:
            raise BadRecord(
                f"record seq {seq}{record_id(rest)}: its chain_hash does not link prev_hash and content_hash"
            )
        out.append((seq, prev.decode(), chain.decode(), content.decode()))
    if at != len(data):
        line = data.count(b"\n", 0, at) + 1
        raise BadRecord(f"object {key} line {line}: not a shipped record")
    return sha256(data).hexdigest(), out
