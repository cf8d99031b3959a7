"""Dispute evidence: what the buyer and the seller of a disputed escrow put before the
administrator who resolves it.

A piece of evidence is text, a document, or both. A document never passes through the API
(request bodies are capped at 64 KB): the party declares it (filename, type, size,
SHA-256), gets a presigned POST for a key the server chose (``ledgerline.aws.evidence``),
uploads straight to the private evidence bucket, then confirms; only a stored object of
exactly the declared size, type and hash becomes evidence (``uploaded_at``). Writes go
through SECURITY DEFINER routines (``dispute_evidence_add``, ``dispute_evidence_confirm``)
that check the party and the open dispute and write the audit row in the same
transaction. Who sees what: the two parties and administrators and auditors list the
evidence; only the parties submit it; anyone else gets 404, as for a missing escrow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, get_args
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field

from ledgerline import errors
from ledgerline.audit import Actor
from ledgerline.aws import evidence as storage
from ledgerline.caller import Principal
from ledgerline.config import settings
from ledgerline.db import Cursor
from ledgerline.ids import object_id
from ledgerline.ledger import sql

SUBMITTED = "dispute.evidence_submitted"
UPLOADED = "dispute.evidence_uploaded"

# What a document may be: formats an administrator can open safely in a browser or viewer.
ContentType = Literal["application/pdf", "image/png", "image/jpeg", "text/plain"]
CONTENT_TYPES: tuple[str, ...] = get_args(ContentType)
READERS = ("admin", "auditor")  # see every dispute's evidence; never submit any
KEY_PREFIX = "evidence/"

_SHA256 = re.compile(r"[0-9a-f]{64}")
# A name to show, never a path: no separators, no control characters.
_FILENAME = re.compile(r"[^/\\\x00-\x1f\x7f]{1,200}")


class DocumentDeclaration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filename: str = Field(min_length=1, max_length=200)
    content_type: ContentType
    size: int = Field(gt=0, description="bytes; at most LEDGERLINE_EVIDENCE_MAX_BYTES (10 MiB)")
    sha256: str = Field(min_length=64, max_length=64, description="the document's SHA-256, lowercase hex")


class EvidenceBody(BaseModel):
    """POST /v1/escrows/{id}/dispute/evidence: text, a document, or both."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(default=None, min_length=1, max_length=10000)
    document: DocumentDeclaration | None = None


@dataclass(frozen=True)
class Submission:
    """A checked submission, with the id and object key the server chose."""

    escrow_id: UUID
    evidence_id: UUID
    text: str | None
    document: DocumentDeclaration | None

    @property
    def object_key(self) -> str | None:
        return None if self.document is None else f"{KEY_PREFIX}{self.escrow_id}/{self.evidence_id}"


def _invalid(field: str, message: str) -> errors.ValidationFailed:
    return errors.ValidationFailed(f"{field}: {message}", errors=[errors.FieldError(field, message)])


def check_submission(escrow_id: str, body: EvidenceBody, caller: Principal) -> Submission:
    """Everything that needs no database: 422s naming the field, 403 for the readers."""
    escrow = object_id(escrow_id, "escrow")
    if caller.role in READERS:
        raise errors.Forbidden("administrators and auditors read the evidence; only the buyer and seller submit it")
    text = body.text
    if text is not None and not text.strip():
        raise _invalid("text", "write something, or leave text out")
    doc = body.document
    if text is None and doc is None:
        raise _invalid("body", "send text, a document, or both")
    if doc is not None:
        if not _FILENAME.fullmatch(doc.filename):
            raise _invalid("document.filename", "a file name without path separators or control characters")
        if doc.size > settings().evidence_max_bytes:
            raise _invalid("document.size", f"at most {settings().evidence_max_bytes} bytes")
        if not _SHA256.fullmatch(doc.sha256):
            raise _invalid("document.sha256", "the document's SHA-256 as 64 lowercase hex digits")
    return Submission(escrow_id=escrow, evidence_id=uuid4(), text=text, document=doc)


def presign(submission: Submission) -> storage.Upload | None:
    """The upload form for the submission's document (signed locally, no call to S3)."""
    doc, key = submission.document, submission.object_key
    if doc is None or key is None:
        return None
    return storage.presign_upload(
        key,
        content_type=doc.content_type,
        size=doc.size,
        sha256=doc.sha256,
        expires_in=settings().evidence_upload_seconds,
    )


def record(cur: Cursor, submission: Submission, caller: Principal, actor: Actor) -> dict[str, Any]:
    row = sql.call(
        cur,
        "SELECT dispute_evidence_add(p_escrow => %(escrow)s, p_evidence => %(evidence)s, p_party => %(party)s,"
        " p_body => %(body)s, p_document => %(document)s, p_object_key => %(key)s,"
        " p_actor => %(actor)s, p_audit => %(audit)s) AS e",
        {
            "escrow": submission.escrow_id,
            "evidence": submission.evidence_id,
            "party": caller.id,
            "body": submission.text,
            "document": None if submission.document is None else sql.jsonb(submission.document.model_dump()),
            "key": submission.object_key,
            "actor": sql.actor_json(actor),
            "audit": sql.jsonb(sql.audit_row(SUBMITTED)),
        },
    )
    result: dict[str, Any] = row["e"]
    return result


@dataclass(frozen=True)
class Listed:
    """One piece of evidence as listed, with where its confirmed document is stored."""

    body: dict[str, Any]
    object_key: str | None
    object_version: str | None


def list_evidence(cur: Cursor, escrow_id: str, caller: Principal) -> list[Listed]:
    """Oldest first. A dispute holds at most 50 pieces (dispute_evidence_add), so the whole
    list is one page."""
    escrow = object_id(escrow_id, "escrow")
    cur.execute("SELECT buyer_id, seller_id FROM escrows WHERE id = %s", (escrow,))
    found = cur.fetchone()
    if found is None or (caller.role not in READERS and caller.id not in (found["buyer_id"], found["seller_id"])):
        raise errors.NotFound(f"escrow {escrow_id} not found")
    cur.execute(
        "SELECT dispute_evidence_json(v) AS e, v.object_key, v.object_version"
        "  FROM dispute_evidence v JOIN disputes d ON d.id = v.dispute_id"
        " WHERE d.escrow_id = %s ORDER BY v.created_at, v.id",
        (escrow,),
    )
    return [Listed(r["e"], r["object_key"], r["object_version"]) for r in cur.fetchall()]


def with_downloads(items: list[Listed]) -> list[dict[str, Any]]:
    """Each confirmed document gets ``download``: a short-lived link to the version that was
    confirmed (signed locally, after the transaction); an unconfirmed one has none."""
    out = []
    for item in items:
        body = dict(item.body)
        document = body.get("document")
        if document is not None and item.object_key and item.object_version:
            link = storage.download(
                item.object_key,
                item.object_version,
                filename=document["filename"],
                expires_in=settings().evidence_upload_seconds,
            )
            body["document"] = {**document, "download": link.to_json()}
        elif document is not None:
            body["document"] = {**document, "download": None}
        out.append(body)
    return out


def pending_upload(cur: Cursor, escrow_id: str, evidence_id: str, caller: Principal) -> str | None:
    """The object key of the caller's own declared document, still unconfirmed; None when
    there is nothing to read (text, or already confirmed: the routine answers those)."""
    escrow = object_id(escrow_id, "escrow")
    evidence = object_id(evidence_id, "evidence")
    cur.execute(
        "SELECT v.object_key, v.uploaded_at FROM dispute_evidence v JOIN disputes d ON d.id = v.dispute_id"
        " WHERE v.id = %s AND d.escrow_id = %s AND v.submitted_by = %s",
        (evidence, escrow, caller.id),
    )
    found = cur.fetchone()
    if found is None:
        raise errors.NotFound(f"evidence {evidence_id} not found")
    return None if found["uploaded_at"] is not None else found["object_key"]


def read_upload(key: str | None) -> storage.StoredObject | None:
    """What is stored under ``key`` (outside any transaction: up to 10 MiB is read)."""
    return None if key is None else storage.fetch(key, max_bytes=settings().evidence_max_bytes)


def confirm(
    cur: Cursor,
    escrow_id: str,
    evidence_id: str,
    stored: storage.StoredObject | None,
    caller: Principal,
    actor: Actor,
) -> dict[str, Any]:
    row = sql.call(
        cur,
        "SELECT dispute_evidence_confirm(p_escrow => %(escrow)s, p_evidence => %(evidence)s, p_party => %(party)s,"
        " p_size => %(size)s, p_content_type => %(type)s, p_sha256 => %(sha)s, p_version => %(version)s,"
        " p_actor => %(actor)s, p_audit => %(audit)s) AS e",
        {
            "escrow": object_id(escrow_id, "escrow"),
            "evidence": object_id(evidence_id, "evidence"),
            "party": caller.id,
            "size": None if stored is None else stored.size,
            "type": None if stored is None else stored.content_type,
            "sha": None if stored is None else stored.sha256,
            "version": None if stored is None else stored.version_id,
            "actor": sql.actor_json(actor),
            "audit": sql.jsonb(sql.audit_row(UPLOADED)),
        },
    )
    result: dict[str, Any] = row["e"]
    return result
