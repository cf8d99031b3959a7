"""The dispute evidence bucket: presigned uploads straight from the client, read back to confirm.

Request bodies are capped at 64 KB, so a document never travels through the API: the
party gets a presigned POST (``presign_upload``) whose policy fixes the object key the
server chose, the content type, the exact size (``content-length-range``) and the SHA-256
the party declared (``x-amz-meta-sha256``); S3 refuses an upload outside it. The policy
cannot make S3 hash the body, and moto enforces no POST policy at all, so an upload is
evidence only once it is confirmed: ``fetch`` reads the object back, and the caller compares
its size, type and SHA-256 with what was declared (``ledgerline.evidence.confirm``).

A confirmed document is the version that was read back (``StoredObject.version_id``):
``download`` presigns a GET of that version only, so a later upload with a form still valid
never replaces what was confirmed. The bucket is private (block public access, TLS only,
SSE-KMS, versioned; ``infra.components.evidence``).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ledgerline.aws import clients
from ledgerline.config import settings

ENV_BUCKET = "LEDGERLINE_EVIDENCE_BUCKET"
SHA256_FIELD = "x-amz-meta-sha256"
_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Upload:
    """What the client POSTs to: ``url`` with ``fields`` (then the file as ``file``)."""

    url: str
    fields: dict[str, str]
    expires_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "fields": self.fields, "expires_at": self.expires_at}


@dataclass(frozen=True)
class StoredObject:
    size: int
    content_type: str
    sha256: str | None  # hex; None when the object was too large to be worth reading
    version_id: str | None = None  # the version read (the bucket is versioned)


@dataclass(frozen=True)
class Download:
    url: str
    expires_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"url": self.url, "expires_at": self.expires_at}


def local_bucket() -> str:
    return f"{settings().resource_prefix}-evidence-local"


def bucket() -> str:
    """The CDK app sets LEDGERLINE_EVIDENCE_BUCKET (the name carries the account and region);
    locally the name is fixed and ``ledgerline.local.aws.bootstrap`` creates it."""
    explicit = os.environ.get(ENV_BUCKET)
    if explicit:
        return explicit
    if settings().local:
        return local_bucket()
    account = clients.client("sts").get_caller_identity()["Account"]
    return f"{settings().resource_prefix}-evidence-{account}-{settings().aws_region}"


def presign_upload(key: str, *, content_type: str, size: int, sha256: str, expires_in: int) -> Upload:
    """A presigned POST for exactly this object: key, type, size and declared hash. Signed
    locally with the function's credentials (no call to S3)."""
    fields = {"Content-Type": content_type, SHA256_FIELD: sha256}
    conditions: list[Any] = [
        {"Content-Type": content_type},
        ["content-length-range", size, size],
        {SHA256_FIELD: sha256},
    ]
    signed = clients.client("s3").generate_presigned_post(
        Bucket=bucket(), Key=key, Fields=fields, Conditions=conditions, ExpiresIn=expires_in
    )
    return Upload(
        url=str(signed["url"]),
        fields={str(k): str(v) for k, v in signed["fields"].items()},
        expires_at=datetime.now(UTC) + timedelta(seconds=expires_in),
    )


def fetch(key: str, *, max_bytes: int) -> StoredObject | None:
    """The object at ``key`` as stored (None when nothing is there), hashed as it streams."""
    s3 = clients.client("s3")
    try:
        answer = s3.get_object(Bucket=bucket(), Key=key)
    except s3.exceptions.NoSuchKey:
        return None
    size = int(answer["ContentLength"])
    content_type = str(answer.get("ContentType") or "")
    version = answer.get("VersionId")
    body = answer["Body"]
    try:
        if size > max_bytes:
            return StoredObject(size, content_type, None, version)
        digest = hashlib.sha256()
        for chunk in iter(lambda: body.read(_CHUNK), b""):
            digest.update(chunk)
        return StoredObject(size, content_type, digest.hexdigest(), version)
    finally:
        body.close()


def download(key: str, version_id: str, *, filename: str, expires_in: int) -> Download:
    """A presigned GET of exactly the confirmed version, as an attachment (never rendered
    inline by a browser, whatever its type). Signed locally, no call to S3."""
    safe = "".join(ch if ch.isalnum() or ch in "._- " else "_" for ch in filename)
    url = clients.client("s3").generate_presigned_url(
        "get_object",
        Params={
            "Bucket": bucket(),
            "Key": key,
            "VersionId": version_id,
            "ResponseContentDisposition": f'attachment; filename="{safe}"',
        },
        ExpiresIn=expires_in,
    )
    return Download(url=str(url), expires_at=datetime.now(UTC) + timedelta(seconds=expires_in))
