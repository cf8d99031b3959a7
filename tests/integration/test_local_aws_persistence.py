"""The local AWS stand-in keeps what it is given: S3 object versions (with their Object
Lock retention) and KMS keys survive a restart on the same state directory."""

from __future__ import annotations

import datetime
import json
import signal
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from ledgerline.auth import keys, tokens
from ledgerline.local import aws
from ledgerline.local.aws_state import JOURNAL, S3_DIR

BUCKET = "ledgerline-audit-local"
PKCS1_SHA256 = "RSASSA_PKCS1_V1_5_SHA_256"


class Local:
    """One run of the stand-in: its URL and clients, the library pointed at it."""

    def __init__(self, server: aws.MotoServer) -> None:
        self.server = server
        self.url = server.endpoint_url
        self.s3 = self._client("s3")
        self.kms = self._client("kms")

    def _client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="eu-west-1",
            aws_access_key_id=aws.DUMMY_CREDENTIAL,
            aws_secret_access_key=aws.DUMMY_CREDENTIAL,
        )


@contextmanager
def running(tmp_path: Path, state_dir: Path | None) -> Iterator[Local]:
    server = aws.start(aws.free_port(), log_file=tmp_path / f"moto-{uuid.uuid4().hex[:6]}.log", state_dir=state_dir)
    previous = aws.point_library_at(server.endpoint_url)
    ring = keys.use_keyring(None)  # a new KmsKeyring: nothing resolved against another run
    try:
        aws.bootstrap(server.endpoint_url, secrets_path=tmp_path / "local-secrets.json")
        yield Local(server)
    finally:
        keys.use_keyring(ring)
        aws.restore_environment(previous)
        server.stop()


def _versions(s3: Any, bucket: str = BUCKET) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    listed = s3.list_object_versions(Bucket=bucket)
    return listed.get("Versions", []), listed.get("DeleteMarkers", [])


def _object(s3: Any, key: str, version_id: str, bucket: str = BUCKET) -> dict[str, Any]:
    got = s3.get_object(Bucket=bucket, Key=key, VersionId=version_id, ChecksumMode="ENABLED")
    return {
        "body": got["Body"].read(),
        "etag": got["ETag"],
        "checksum": got.get("ChecksumSHA256"),
        "content_type": got["ContentType"],
        "metadata": got["Metadata"],
        "lock_mode": got.get("ObjectLockMode"),
        "retain_until": got.get("ObjectLockRetainUntilDate"),
        "legal_hold": got.get("ObjectLockLegalHoldStatus"),
    }


def _public_key(kms: Any, key_id: str) -> Any:
    return serialization.load_der_public_key(kms.get_public_key(KeyId=key_id)["PublicKey"])


def test_object_versions_retention_keys_and_tokens_survive_a_restart(tmp_path):
    state = tmp_path / "aws"
    checkpoint = b'{"from_seq":1,"to_seq":2,"head":"ab12"}'
    far = datetime.datetime(2031, 5, 17, 8, 30, tzinfo=datetime.UTC)
    with running(tmp_path, state) as first:
        s3 = first.s3
        v1 = s3.put_object(
            Bucket=BUCKET,
            Key="audit/dt=2026-12-01/1.json",
            Body=b'{"seq":1}\n',
            ChecksumAlgorithm="SHA256",
            ContentType="application/x-ndjson",
            Metadata={"records": "1"},
        )["VersionId"]
        # An overwrite is a new version; the first stays.
        v2 = s3.put_object(
            Bucket=BUCKET,
            Key="audit/dt=2026-12-01/1.json",
            Body=b'{"seq":1,"edited":true}\n',
            ChecksumAlgorithm="SHA256",
        )["VersionId"]
        v3 = s3.put_object(
            Bucket=BUCKET,
            Key="audit/checkpoints/2.json",
            Body=checkpoint,
            ChecksumAlgorithm="SHA256",
            ObjectLockMode="COMPLIANCE",
            ObjectLockRetainUntilDate=far,
        )["VersionId"]
        s3.put_object_legal_hold(
            Bucket=BUCKET,
            Key="audit/checkpoints/2.json",
            VersionId=v3,
            LegalHold={"Status": "ON"},
            ChecksumAlgorithm="SHA256",
        )
        marker = s3.delete_object(Bucket=BUCKET, Key="audit/dt=2026-12-01/1.json")["VersionId"]  # a delete marker
        before_versions = _versions(s3)
        before_objects = {
            v: _object(s3, k, v)
            for k, v in [
                ("audit/dt=2026-12-01/1.json", v1),
                ("audit/dt=2026-12-01/1.json", v2),
                ("audit/checkpoints/2.json", v3),
            ]
        }

        signature = first.kms.sign(
            KeyId="alias/ledgerline-audit", Message=checkpoint, MessageType="RAW", SigningAlgorithm=PKCS1_SHA256
        )["Signature"]
        audit_public_before = _public_key(first.kms, "alias/ledgerline-audit")
        token, _ = tokens.issue_access_token(uuid.uuid4(), "user")
        sealed = first.kms.encrypt(KeyId="alias/ledgerline-field", Plaintext=b"4111 1111")["CiphertextBlob"]
        key_ids = {a["AliasName"]: a["TargetKeyId"] for a in first.kms.list_aliases()["Aliases"]}

    with running(tmp_path, state) as second:
        s3 = second.s3
        # Every version and the delete marker, with the same ids, times and order.
        assert _versions(s3) == before_versions
        assert [m["VersionId"] for m in _versions(s3)[1]] == [marker]
        for version_id, before in before_objects.items():
            key = next(v["Key"] for v in before_versions[0] if v["VersionId"] == version_id)
            assert _object(s3, key, version_id) == before
        assert before_objects[v1]["lock_mode"] == "COMPLIANCE" and before_objects[v1]["retain_until"] is not None
        assert before_objects[v3]["retain_until"] == far
        assert before_objects[v3]["legal_hold"] == "ON"
        assert before_objects[v1]["metadata"] == {"records": "1"}

        # The audit key is the same key: the checkpoint signed before verifies with the public
        # key read after, as `audit verify` does it (PKCS#1 v1.5, SHA-256).
        audit_public = _public_key(second.kms, "alias/ledgerline-audit")
        audit_public.verify(signature, checkpoint, padding.PKCS1v15(), hashes.SHA256())
        assert audit_public.public_numbers() == audit_public_before.public_numbers()
        assert {a["AliasName"]: a["TargetKeyId"] for a in second.kms.list_aliases()["Aliases"]} == key_ids
        # The token issued before the restart still verifies; the field key still opens.
        assert tokens.verify_access_token(token)["role"] == "user"
        assert second.kms.decrypt(CiphertextBlob=sealed)["Plaintext"] == b"4111 1111"

        # And Object Lock still holds after the restart.
        for key, version_id in [("audit/dt=2026-12-01/1.json", v1), ("audit/checkpoints/2.json", v3)]:
            with pytest.raises(ClientError) as refused:
                s3.delete_object(Bucket=BUCKET, Key=key, VersionId=version_id)
            assert refused.value.response["Error"]["Code"] == "AccessDenied"


def test_without_a_state_directory_every_start_is_blank(tmp_path):
    with running(tmp_path, None) as first:
        first.s3.put_object(Bucket=BUCKET, Key="audit/x.json", Body=b"{}", ChecksumAlgorithm="SHA256")
        public = _public_key(first.kms, "alias/ledgerline-audit").public_numbers()
    with running(tmp_path, None) as second:
        assert _versions(second.s3) == ([], [])
        assert _public_key(second.kms, "alias/ledgerline-audit").public_numbers() != public


def test_a_shipped_version_is_locked_by_the_buckets_default_retention_and_cannot_be_deleted(tmp_path):
    with running(tmp_path, tmp_path / "aws") as local:
        put = local.s3.put_object(
            Bucket=BUCKET, Key="audit/dt=2026-12-01/9.json", Body=b'{"seq":9}\n', ChecksumAlgorithm="SHA256"
        )
        head = local.s3.head_object(Bucket=BUCKET, Key="audit/dt=2026-12-01/9.json", VersionId=put["VersionId"])
        # The bucket's default retention applies to a put that names none.
        assert head["ObjectLockMode"] == "COMPLIANCE"
        days = (head["ObjectLockRetainUntilDate"] - datetime.datetime.now(datetime.UTC)).days
        assert aws.AUDIT_RETENTION_DAYS - 1 <= days <= aws.AUDIT_RETENTION_DAYS
        for attempt in (
            lambda: local.s3.delete_object(Bucket=BUCKET, Key="audit/dt=2026-12-01/9.json", VersionId=put["VersionId"]),
            lambda: local.s3.delete_object(
                Bucket=BUCKET,
                Key="audit/dt=2026-12-01/9.json",
                VersionId=put["VersionId"],
                BypassGovernanceRetention=True,
            ),
        ):
            with pytest.raises(ClientError) as refused:
                attempt()
            assert refused.value.response["Error"]["Code"] == "AccessDenied"
        batch = local.s3.delete_objects(
            Bucket=BUCKET,
            Delete={"Objects": [{"Key": "audit/dt=2026-12-01/9.json", "VersionId": put["VersionId"]}]},
            ChecksumAlgorithm="SHA256",
        )
        assert [e["Code"] for e in batch.get("Errors", [])] == ["AccessDenied"]
        body = local.s3.get_object(Bucket=BUCKET, Key="audit/dt=2026-12-01/9.json", VersionId=put["VersionId"])
        assert body["Body"].read() == b'{"seq":9}\n'


def test_an_object_is_kept_once_its_put_is_answered_even_if_moto_is_killed_right_after(tmp_path):
    state = tmp_path / "aws"
    with running(tmp_path, state) as first:
        put = first.s3.put_object(Bucket=BUCKET, Key="audit/last.json", Body=b"last", ChecksumAlgorithm="SHA256")
        first.server.process.send_signal(signal.SIGKILL)  # no clean shutdown: nothing is flushed at exit
        first.server.process.wait(timeout=5)
    with running(tmp_path, state) as second:
        got = second.s3.get_object(Bucket=BUCKET, Key="audit/last.json", VersionId=put["VersionId"])
        assert got["Body"].read() == b"last"


def test_deletions_allowed_by_s3_stay_deleted_and_other_buckets_are_kept_too(tmp_path):
    state = tmp_path / "aws"
    with running(tmp_path, state) as first:
        s3 = first.s3
        s3.create_bucket(Bucket="scratch", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        s3.put_bucket_versioning(Bucket="scratch", VersioningConfiguration={"Status": "Enabled"})
        keep = s3.put_object(Bucket="scratch", Key="a", Body=b"keep")["VersionId"]
        gone = s3.put_object(Bucket="scratch", Key="a", Body=b"gone")["VersionId"]
        s3.delete_object(Bucket="scratch", Key="a", VersionId=gone)  # no lock on this bucket: allowed
        b = s3.put_object(Bucket="scratch", Key="b", Body=b"b")["VersionId"]
        s3.delete_object(Bucket="scratch", Key="b", VersionId=b)
    with running(tmp_path, state) as second:
        versions, markers = _versions(second.s3, "scratch")
        assert [(v["Key"], v["VersionId"]) for v in versions] == [("a", keep)]
        assert markers == []
        assert second.s3.get_bucket_versioning(Bucket="scratch")["Status"] == "Enabled"
        assert second.s3.get_object(Bucket="scratch", Key="a")["Body"].read() == b"keep"
    # The journal was folded at the start: one line per live bucket and version.
    lines = [json.loads(line) for line in (state / S3_DIR / JOURNAL).read_text().splitlines()]
    assert sorted((r["op"], r["bucket"], r.get("key")) for r in lines) == [
        ("bucket", BUCKET, None),
        ("bucket", "ledgerline-evidence-local", None),  # bootstrap's too (dispute evidence)
        ("bucket", "scratch", None),
        ("version", "scratch", "a"),
    ]


def test_a_moved_alias_is_kept_so_a_rotated_jwt_key_stays_rotated(tmp_path):
    state = tmp_path / "aws"
    with running(tmp_path, state) as first:
        old = first.kms.describe_key(KeyId="alias/ledgerline-jwt")["KeyMetadata"]["Arn"]
        new = first.kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
        first.kms.update_alias(AliasName="alias/ledgerline-jwt", TargetKeyId=new)
    with running(tmp_path, state) as second:
        assert second.kms.describe_key(KeyId="alias/ledgerline-jwt")["KeyMetadata"]["Arn"] == new
        assert second.kms.describe_key(KeyId=old)["KeyMetadata"]["KeyState"] == "Enabled"


def test_the_state_files_are_private(tmp_path):
    state = tmp_path / "aws"
    with running(tmp_path, state) as local:
        local.s3.put_object(Bucket=BUCKET, Key="audit/p.json", Body=b"{}", ChecksumAlgorithm="SHA256")
    assert state.stat().st_mode & 0o077 == 0
    for path in state.rglob("*"):
        assert path.stat().st_mode & 0o077 == 0, path


def test_a_line_cut_short_by_a_crash_is_ignored(tmp_path):
    state = tmp_path / "aws"
    with running(tmp_path, state) as first:
        put = first.s3.put_object(Bucket=BUCKET, Key="audit/ok.json", Body=b"ok", ChecksumAlgorithm="SHA256")
    with open(state / S3_DIR / JOURNAL, "a") as journal:
        journal.write('{"op": "version", "bucket": "ledgerline-au')
    with running(tmp_path, state) as second:
        got = second.s3.get_object(Bucket=BUCKET, Key="audit/ok.json", VersionId=put["VersionId"])
        assert got["Body"].read() == b"ok"


def test_a_blob_that_does_not_match_its_hash_is_refused_at_start(tmp_path):
    # Not a defence against tampering (whoever can write the blob can write the journal):
    # a damaged file fails the start loudly instead of serving different bytes.
    state = tmp_path / "aws"
    with running(tmp_path, state) as first:
        first.s3.put_object(Bucket=BUCKET, Key="audit/d.json", Body=b"original", ChecksumAlgorithm="SHA256")
    (blob,) = (state / S3_DIR / "blobs").iterdir()
    blob.write_bytes(b"damaged")
    with pytest.raises(RuntimeError, match="does not match"):
        aws.start(aws.free_port(), log_file=tmp_path / "moto-damaged.log", state_dir=state)


def test_puts_racing_from_many_threads_are_all_kept(tmp_path):
    state = tmp_path / "aws"
    with running(tmp_path, state) as first:

        def ship(worker: int) -> list[tuple[str, str]]:
            s3 = Local(first.server).s3  # a client per thread, as boto3 wants
            out = []
            for n in range(8):
                key = f"audit/dt=2026-12-01/{worker:02}-{n % 3}.json"  # overwrites: several versions per key
                body = f'{{"worker":{worker},"n":{n}}}\n'.encode()
                out.append(
                    (s3.put_object(Bucket=BUCKET, Key=key, Body=body, ChecksumAlgorithm="SHA256")["VersionId"], key)
                )
            return out

        with ThreadPoolExecutor(max_workers=8) as pool:
            shipped = [v for batch in pool.map(ship, range(8)) for v in batch]
        assert len({v for v, _ in shipped}) == 64
        before = _versions(first.s3)
        first.server.process.send_signal(signal.SIGKILL)
        first.server.process.wait(timeout=5)
    with running(tmp_path, state) as second:
        assert _versions(second.s3) == before
        assert {v["VersionId"] for v in _versions(second.s3)[0]} == {v for v, _ in shipped}


def test_an_object_replaced_in_a_bucket_without_versioning_keeps_its_last_body(tmp_path):
    state = tmp_path / "aws"
    with running(tmp_path, state) as first:
        first.s3.create_bucket(Bucket="plain", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        for body in (b"one", b"two", b"three"):
            first.s3.put_object(Bucket="plain", Key="k", Body=body)
    with running(tmp_path, state) as second:
        assert second.s3.get_object(Bucket="plain", Key="k")["Body"].read() == b"three"


def test_kept_keys_that_cannot_be_read_stop_the_start_instead_of_new_keys(tmp_path):
    state = tmp_path / "aws"
    with running(tmp_path, state):
        pass
    (state / "kms.json").write_text("[{")
    with pytest.raises(RuntimeError, match="could not load the kept local AWS state"):
        aws.start(aws.free_port(), log_file=tmp_path / "moto-bad-keys.log", state_dir=state)
