"""The audit trail's AWS side: objects in the Object Lock bucket and the checkpoint key.

Every put carries a SHA-256 checksum (S3 refuses a body that does not match it, and an
Object Lock bucket requires one). The bucket is versioned: an overwrite adds a version, it
never replaces one, so ``versions`` lists every version under a prefix, oldest first per
key, with the delete markers. Checkpoints are signed by the KMS audit key (RSA_2048,
RSASSA_PKCS1_V1_5_SHA_256); ``public_key`` is what ``audit verify`` checks them with.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ledgerline.aws import clients, resources

SIGNING_ALGORITHM = "RSASSA_PKCS1_V1_5_SHA_256"
MAX_SIGNED_BYTES = 4096  # KMS Sign, MessageType RAW


@dataclass(frozen=True)
class Version:
    key: str
    version_id: str
    last_modified: float  # epoch seconds
    etag: str
    size: int
    delete_marker: bool = False


def put(key: str, body: bytes, *, bucket: str | None = None) -> str:
    """Put ``body`` at ``key`` with its SHA-256 checksum; return the new version's id."""
    answer = clients.client("s3").put_object(
        Bucket=bucket or resources.audit_bucket(),
        Key=key,
        Body=body,
        ChecksumAlgorithm="SHA256",
        ChecksumSHA256=base64.b64encode(hashlib.sha256(body).digest()).decode(),
        ContentType="application/x-ndjson" if key.endswith(".jsonl") else "application/json",
    )
    return str(answer.get("VersionId") or "null")


def get(key: str, version_id: str, *, bucket: str | None = None) -> bytes:
    answer = clients.client("s3").get_object(Bucket=bucket or resources.audit_bucket(), Key=key, VersionId=version_id)
    return bytes(answer["Body"].read())


def versions(prefix: str, *, bucket: str | None = None) -> Iterator[Version]:
    """Every version and delete marker under ``prefix`` (ListObjectVersions, all pages)."""
    s3 = clients.client("s3")
    pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket or resources.audit_bucket(), Prefix=prefix)
    for page in pages:
        for v in page.get("Versions", []):
            yield Version(
                key=v["Key"],
                version_id=str(v.get("VersionId") or "null"),
                last_modified=v["LastModified"].timestamp(),
                etag=str(v.get("ETag", "")).strip('"'),
                size=int(v.get("Size", 0)),
            )
        for m in page.get("DeleteMarkers", []):
            yield Version(
                key=m["Key"],
                version_id=str(m.get("VersionId") or "null"),
                last_modified=m["LastModified"].timestamp(),
                etag="",
                size=0,
                delete_marker=True,
            )


def sign(message: bytes, *, key_id: str | None = None) -> tuple[str, bytes]:
    """Sign ``message`` (at most 4 KiB) with the audit key; return (key ARN, signature)."""
    if len(message) > MAX_SIGNED_BYTES:
        raise ValueError(f"a checkpoint is {len(message)} bytes; KMS signs at most {MAX_SIGNED_BYTES}")
    answer = clients.client("kms").sign(
        KeyId=key_id or resources.audit_key_id(),
        Message=message,
        MessageType="RAW",
        SigningAlgorithm=SIGNING_ALGORITHM,
    )
    return str(answer["KeyId"]), bytes(answer["Signature"])


def public_key(*, key_id: str | None = None) -> tuple[str, bytes]:
    """The audit key's ARN and public key (DER SubjectPublicKeyInfo), from KMS."""
    answer: dict[str, Any] = clients.client("kms").get_public_key(KeyId=key_id or resources.audit_key_id())
    return str(answer["KeyId"]), bytes(answer["PublicKey"])
