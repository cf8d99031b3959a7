"""Signed checkpoints: after each batch, what was shipped, signed by the KMS audit key.

A checkpoint object (``audit/checkpoints/<first seq>-<last seq>.json``, outside every
``dt=`` folder, so neither Athena nor DuckDB reads it as rows) holds::

    {"checkpoint": {"version": 1, "first_seq", "last_seq", "records", "prev_head", "head",
                    "rows_digest", "objects": [{"key", "sha256", "records"}, ...]},
     "algorithm": "RSASSA_PKCS1_V1_5_SHA_256", "key_id": "<KMS key ARN>",
     "signature": "<base64>"}

The signature is over the canonical JSON of ``checkpoint``. ``rows_digest`` is the sha256
of the batch's database rows' digests (``audit_chain_row_digest``), so that `audit verify`
can tell a row edited in the database since without re-rendering every record. Nothing in it depends on when
or how often it was written (no time, no version ids) and PKCS#1 v1.5 signatures are
deterministic, so a batch shipped again after a crash writes the very same bytes.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ledgerline.audit_trail.canonical import canonical_json, loads
from ledgerline.aws import audit_bucket

PREFIX = "audit/"
CHECKPOINTS = "audit/checkpoints/"
VERSION = 1


def object_key(dt: str, first: int, last: int) -> str:
    return f"{PREFIX}dt={dt}/{first:012d}-{last:012d}.jsonl"


def checkpoint_key(first: int, last: int) -> str:
    return f"{CHECKPOINTS}{first:012d}-{last:012d}.json"


def body(
    first: int, last: int, prev_head: str, head: str, rows_digest: str, objects: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "version": VERSION,
        "first_seq": first,
        "last_seq": last,
        "records": last - first + 1,
        "prev_head": prev_head,
        "head": head,
        "rows_digest": rows_digest,
        "objects": objects,
    }


def signed(checkpoint: dict[str, Any]) -> bytes:
    """The checkpoint object's bytes, signed by the audit key through KMS."""
    key_id, signature = audit_bucket.sign(canonical_json(checkpoint).encode())
    document = {
        "checkpoint": checkpoint,
        "algorithm": audit_bucket.SIGNING_ALGORITHM,
        "key_id": key_id,
        "signature": base64.b64encode(signature).decode(),
    }
    return (canonical_json(document) + "\n").encode()


@dataclass(frozen=True)
class Checkpoint:
    key: str
    first_seq: int
    last_seq: int
    prev_head: str
    head: str
    rows_digest: str
    objects: tuple[tuple[str, str, int], ...]  # (key, sha256, records)
    key_id: str
    signature_valid: bool


def load_public_key(der: bytes) -> rsa.RSAPublicKey:
    key = serialization.load_der_public_key(der)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("the audit key is not an RSA key")
    return key


def parse(key: str, raw: bytes, public_key: rsa.RSAPublicKey) -> Checkpoint:
    """Read a checkpoint object and check its signature with ``public_key``. Raises
    ValueError when it is not a checkpoint at all."""
    try:
        document = loads(raw)
        body_ = document["checkpoint"]
        signature = base64.b64decode(document["signature"], validate=True)
        objects = tuple((str(o["key"]), str(o["sha256"]), int(o["records"])) for o in body_["objects"])
        parsed = (
            int(body_["first_seq"]),
            int(body_["last_seq"]),
            str(body_["prev_head"]),
            str(body_["head"]),
            str(body_["rows_digest"]),
        )
    except (ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{key} is not a checkpoint: {exc}") from None
    try:
        public_key.verify(signature, canonical_json(body_).encode(), padding.PKCS1v15(), hashes.SHA256())
        valid = document.get("algorithm") == audit_bucket.SIGNING_ALGORITHM
    except InvalidSignature:
        valid = False
    return Checkpoint(key, *parsed, objects=objects, key_id=str(document.get("key_id", "")), signature_valid=valid)
