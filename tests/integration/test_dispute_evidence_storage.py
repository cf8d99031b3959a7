"""The evidence bucket in the local stand-in: ``bootstrap`` makes it private and versioned
(again on a second run), a presigned POST writes exactly where the server said, ``fetch``
reads back size, type and SHA-256, and an upload survives a restart of the stand-in on
the same state directory (as ``dev up`` keeps it)."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from ledgerline.aws import clients
from ledgerline.aws import evidence as storage
from ledgerline.local import aws

BODY = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8


@contextmanager
def running(tmp_path: Path, state_dir: Path | None) -> Iterator[str]:
    server = aws.start(aws.free_port(), log_file=tmp_path / f"moto-{uuid.uuid4().hex[:6]}.log", state_dir=state_dir)
    previous = aws.point_library_at(server.endpoint_url)
    try:
        aws.bootstrap(server.endpoint_url, secrets_path=tmp_path / "local-secrets.json")
        yield server.endpoint_url
    finally:
        aws.restore_environment(previous)
        server.stop()


def post(key: str, body: bytes, content_type: str = "image/png") -> requests.Response:
    form = storage.presign_upload(
        key, content_type="image/png", size=len(BODY), sha256=hashlib.sha256(BODY).hexdigest(), expires_in=60
    )
    fields = {**form.fields, "Content-Type": content_type}
    return requests.post(form.url, data=fields, files={"file": ("x.png", body)}, timeout=30)


def test_bootstrap_makes_the_evidence_bucket_private_and_versioned_twice_over(aws_endpoint: str) -> None:
    found = aws.bootstrap(aws_endpoint)
    assert found.evidence_bucket == storage.local_bucket() == storage.bucket()
    s3 = clients.client("s3")
    assert s3.get_bucket_versioning(Bucket=found.evidence_bucket)["Status"] == "Enabled"
    block = s3.get_public_access_block(Bucket=found.evidence_bucket)["PublicAccessBlockConfiguration"]
    assert block == {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                     "RestrictPublicBuckets": True}  # fmt: skip


def test_the_presigned_post_fixes_key_type_exact_size_and_declared_hash(aws_endpoint: str) -> None:
    key = f"evidence/{uuid.uuid4()}/{uuid.uuid4()}"
    form = storage.presign_upload(key, content_type="image/png", size=len(BODY), sha256="ab" * 32, expires_in=60)
    policy = json.loads(base64.b64decode(form.fields["policy"]))
    assert {"key": key} in policy["conditions"] and {"bucket": storage.bucket()} in policy["conditions"]
    assert ["content-length-range", len(BODY), len(BODY)] in policy["conditions"]
    assert {"Content-Type": "image/png"} in policy["conditions"]
    assert {"x-amz-meta-sha256": "ab" * 32} in policy["conditions"]
    assert form.fields["key"] == key and form.fields["Content-Type"] == "image/png"


def test_fetch_reads_back_what_was_uploaded_and_nothing_when_nothing_was(aws_endpoint: str) -> None:
    key = f"evidence/{uuid.uuid4()}/{uuid.uuid4()}"
    assert storage.fetch(key, max_bytes=1 << 20) is None
    assert post(key, BODY).status_code in (200, 201, 204)
    stored = storage.fetch(key, max_bytes=1 << 20)
    assert stored is not None and stored.version_id
    assert stored == storage.StoredObject(len(BODY), "image/png", hashlib.sha256(BODY).hexdigest(), stored.version_id)
    big = storage.StoredObject(len(BODY), "image/png", None, stored.version_id)
    assert storage.fetch(key, max_bytes=10) == big  # too large to be worth reading: not hashed


def test_a_download_names_one_version_and_asks_to_be_saved(aws_endpoint: str) -> None:
    key = f"evidence/{uuid.uuid4()}/{uuid.uuid4()}"
    assert post(key, BODY).status_code in (200, 201, 204)
    first = storage.fetch(key, max_bytes=1 << 20)
    assert first is not None and first.version_id
    assert post(key, BODY[::-1]).status_code in (200, 201, 204)  # a later upload to the same key
    link = storage.download(key, first.version_id, filename='bad"name/..\\.png', expires_in=60)
    got = requests.get(link.url, timeout=30)
    assert got.status_code == 200 and got.content == BODY
    disposition = got.headers["content-disposition"]
    assert disposition.startswith("attachment;") and '"' not in disposition.split('filename="', 1)[1][:-1]


@pytest.mark.parametrize("body, content_type", [(BODY[:-1] + b"!", "image/png"), (BODY, "text/html")])
def test_moto_takes_an_upload_outside_the_policy_and_fetch_shows_what_it_really_is(
    aws_endpoint: str, body: bytes, content_type: str
) -> None:
    """Why the API confirms every upload itself: the stand-in enforces no POST policy."""
    key = f"evidence/{uuid.uuid4()}/{uuid.uuid4()}"
    assert post(key, body, content_type).status_code in (200, 201, 204)
    stored = storage.fetch(key, max_bytes=1 << 20)
    assert stored is not None
    assert (stored.content_type, stored.sha256) == (content_type, hashlib.sha256(body).hexdigest())


def test_an_upload_survives_a_restart_of_the_stand_in(tmp_path: Path) -> None:
    state = tmp_path / "aws"
    key = f"evidence/{uuid.uuid4()}/{uuid.uuid4()}"
    with running(tmp_path, state):
        assert post(key, BODY).status_code in (200, 201, 204)
    with running(tmp_path, state):
        stored = storage.fetch(key, max_bytes=1 << 20)
    assert stored is not None and stored.sha256 == hashlib.sha256(BODY).hexdigest()
