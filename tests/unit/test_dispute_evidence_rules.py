"""Evidence submissions checked before anything is written or signed (ledgerline.evidence):
the readers (administrators, auditors) do not submit, a document is one of four types,
within the size setting, with a lowercase SHA-256 and a file name that is not a path; the
object key is the server's, never the file name."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from ledgerline import errors, evidence
from ledgerline.caller import Principal

ESCROW = str(uuid.uuid4())
PARTY = Principal(id=uuid.uuid4(), role="user")


def body(**document) -> evidence.EvidenceBody:
    doc = {"filename": "bill.pdf", "content_type": "application/pdf", "size": 10, "sha256": "0" * 64, **document}
    return evidence.EvidenceBody(document=evidence.DocumentDeclaration(**doc))


def test_a_document_gets_a_key_of_the_servers_choosing() -> None:
    checked = evidence.check_submission(ESCROW, body(filename="x.pdf"), PARTY)
    assert checked.object_key == f"evidence/{ESCROW}/{checked.evidence_id}"
    assert "x.pdf" not in checked.object_key
    assert evidence.check_submission(ESCROW, evidence.EvidenceBody(text="words"), PARTY).object_key is None


@pytest.mark.parametrize("role", ["admin", "auditor"])
def test_readers_do_not_submit(role: str) -> None:
    with pytest.raises(errors.Forbidden):
        evidence.check_submission(ESCROW, evidence.EvidenceBody(text="my view"), Principal(uuid.uuid4(), role))


@pytest.mark.parametrize(
    "submission, field",
    [
        (evidence.EvidenceBody(), "body"),
        (evidence.EvidenceBody(text=" \n "), "text"),
        (body(size=10 * 1024 * 1024 + 1), "document.size"),
        (body(sha256="F" * 64), "document.sha256"),
        (body(filename="a/b.pdf"), "document.filename"),
        (body(filename="a\\b.pdf"), "document.filename"),
        (body(filename="a\nb.pdf"), "document.filename"),
    ],
)
def test_each_refusal_names_its_field(submission: evidence.EvidenceBody, field: str) -> None:
    with pytest.raises(errors.ValidationFailed) as refused:
        evidence.check_submission(ESCROW, submission, PARTY)
    assert [e.field for e in refused.value.errors] == [field]


def test_only_four_document_types_are_accepted() -> None:
    assert evidence.CONTENT_TYPES == ("application/pdf", "image/png", "image/jpeg", "text/plain")
    with pytest.raises(ValidationError):
        body(content_type="text/html")


def test_an_escrow_id_that_is_not_a_uuid_is_not_found() -> None:
    with pytest.raises(errors.NotFound):
        evidence.check_submission("not-a-uuid", evidence.EvidenceBody(text="x"), PARTY)
