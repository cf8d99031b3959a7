"""The canonical record, its hashes and the shipped line (docs/audit.md).

PostgreSQL renders the canonical record (``audit_chain_record``, ``audit_chain_canonical_json``
in db/routines/) and hashes it; this module is the same definition in Python, for
``audit verify`` and for the test that holds the two to the same bytes.

* canonical JSON: objects with keys sorted by code point, no whitespace, strings escaped as
  PostgreSQL's to_json does (", \\, \\b \\f \\n \\r \\t, other control characters as
  \\u00xx, everything else as UTF-8), numbers as PostgreSQL numeric prints them (plain
  decimal, no exponent, scale kept, no negative zero).
* the record: the Glue table's content columns, keys sorted, every value a string or null;
  payloads and metadata as strings holding their canonical JSON.
* content_hash = sha256(record); chain_hash = sha256("<seq>:<prev_hash>:<content_hash>")
  over lowercase hex, the first prev_hash 64 zeros.
* a line: ``{"seq":N,"prev_hash":"…","chain_hash":"…","content_hash":"…",`` + record[1:].
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

GENESIS = "0" * 64
RECORD_KEYS = (
    "action",
    "actor_id",
    "actor_ip",
    "actor_type",
    "category",
    "id",
    "metadata",
    "occurred_at",
    "payload_after",
    "payload_before",
    "resource_id",
    "resource_type",
    "user_agent",
)
JSON_KEYS = frozenset({"metadata", "payload_after", "payload_before"})
_HEX = 64
# '{"seq":' N ',"prev_hash":"' hex '","chain_hash":"' hex '","content_hash":"' hex '",' record[1:]
_SEQ_AT = len(b'{"seq":')
_PREV = len(b',"prev_hash":"')
_CHAIN = len(b'","chain_hash":"')
_CONTENT = len(b'","content_hash":"')
_TAIL = len(b'",')


class MalformedLine(ValueError):
    pass


def _string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _number(value: int | Decimal) -> str:
    if isinstance(value, int):
        return str(value)
    if value.is_zero():
        value = abs(value)  # numeric has no negative zero
    return format(value, "f")


def canonical_json(value: Any) -> str:
    """The canonical text of a JSON value, parsed with ``loads`` (numbers as int/Decimal)."""
    if isinstance(value, dict):
        return "{" + ",".join(_string(k) + ":" + canonical_json(value[k]) for k in sorted(value)) + "}"
    if isinstance(value, list):
        return "[" + ",".join(canonical_json(v) for v in value) + "]"
    if isinstance(value, str):
        return _string(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if isinstance(value, int | Decimal):
        return _number(value)
    raise TypeError(f"not a JSON value: {type(value).__name__} (floats are parsed as Decimal: use loads)")


def loads(text: str | bytes) -> Any:
    """Parse JSON keeping every number exact (Decimal), as PostgreSQL's numeric does."""
    return json.loads(text, parse_float=Decimal)


def render_time(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record(row: Mapping[str, Any]) -> bytes:
    """The canonical record of an audit row: ``occurred_at`` a datetime, ``actor_ip`` the
    text PostgreSQL's host() gives, payloads as parsed JSON (``loads``) or None."""
    parts = []
    for key in RECORD_KEYS:
        value = row.get(key)
        if value is None:
            rendered = "null"
        elif key in JSON_KEYS:
            rendered = _string(canonical_json(value))
        elif key == "occurred_at":
            rendered = _string(render_time(value))
        else:
            rendered = _string(str(value))
        parts.append(f'"{key}":{rendered}')
    return ("{" + ",".join(parts) + "}").encode()


def content_hash(record_bytes: bytes) -> str:
    return hashlib.sha256(record_bytes).hexdigest()


def chain_hash(seq: int, prev_hash: str, content: str) -> str:
    return hashlib.sha256(f"{seq}:{prev_hash}:{content}".encode()).hexdigest()


def line(seq: int, prev_hash: str, chain: str, content: str, record_bytes: bytes) -> bytes:
    head = f'{{"seq":{seq},"prev_hash":"{prev_hash}","chain_hash":"{chain}","content_hash":"{content}",'
    return head.encode() + record_bytes[1:]


def split_line(raw: bytes) -> tuple[int, str, str, str, bytes]:
    """(seq, prev_hash, chain_hash, content_hash, record bytes) of a shipped line, by
    position: no JSON parsing (this is ``audit verify``'s inner loop)."""
    comma = raw.find(b",", _SEQ_AT, _SEQ_AT + 21)
    if not raw.startswith(b'{"seq":') or comma < 0:
        raise MalformedLine("a line must start with its seq")
    try:
        seq = int(raw[_SEQ_AT:comma])
    except ValueError:
        raise MalformedLine("seq is not a number") from None
    p = comma + _PREV
    c = p + _HEX + _CHAIN
    h = c + _HEX + _CONTENT
    r = h + _HEX + _TAIL
    if (
        raw[comma:p] != b',"prev_hash":"'
        or raw[p + _HEX : c] != b'","chain_hash":"'
        or raw[c + _HEX : h] != b'","content_hash":"'
        or raw[h + _HEX : r] != b'",'
    ):
        raise MalformedLine("the chain fields are not where a shipped line has them")
    return seq, raw[p : p + _HEX].decode(), raw[c : c + _HEX].decode(), raw[h : h + _HEX].decode(), b"{" + raw[r:]
