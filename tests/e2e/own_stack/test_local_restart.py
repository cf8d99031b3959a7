"""`make run` twice on one data directory: what the local AWS stand-in was given is still
there (audit objects with their Object Lock retention, the audit key, the JWT key)."""

from __future__ import annotations

import uuid

import pytest
import requests
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from tests.e2e.own_stack.stack import LocalStack
from tests.registration import poster, register_and_verify

pytestmark = pytest.mark.slow

BUCKET = "ledgerline-audit-local"
AUDIT_KEY = "alias/ledgerline-audit"


def test_a_restart_keeps_audit_objects_their_lock_the_audit_key_and_issued_tokens():
    email, password = f"restart-{uuid.uuid4().hex[:8]}@example.test", "correct horse battery staple 9"
    checkpoint = b'{"keys":["audit/dt=2026-12-01/000001.json"],"to_seq":1}'
    stack = LocalStack("restart-test")
    try:
        stack.start(timeout=120)
        body = {"email": email, "password": password, "full_name": "Ada Obi"}
        register_and_verify(poster(stack.api), body, data_dir=stack.data_dir)
        login = requests.post(f"{stack.api}/v1/auth/login", json={"email": email, "password": password}, timeout=30)
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]
        put = stack.aws("s3").put_object(
            Bucket=BUCKET, Key="audit/dt=2026-12-01/000001.json", Body=b'{"seq":1}\n', ChecksumAlgorithm="SHA256"
        )
        signature = stack.aws("kms").sign(
            KeyId=AUDIT_KEY, Message=checkpoint, MessageType="RAW", SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256"
        )["Signature"]
        before = stack.aws("s3").list_object_versions(Bucket=BUCKET)["Versions"]
        assert stack.stop(timeout=60) == 0, stack.output()

        stack.start(timeout=120)  # `make run` again, on the same data directory and ports
        # The access token issued before the restart still opens the API.
        me = requests.get(f"{stack.api}/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert me.status_code == 200, me.text
        assert me.json()["email"] == email
        # The shipped object is there, the same version, still locked in COMPLIANCE mode.
        s3 = stack.aws("s3")
        assert s3.list_object_versions(Bucket=BUCKET)["Versions"] == before
        head = s3.head_object(Bucket=BUCKET, Key="audit/dt=2026-12-01/000001.json", VersionId=put["VersionId"])
        assert head["ObjectLockMode"] == "COMPLIANCE"
        with pytest.raises(ClientError) as refused:
            s3.delete_object(Bucket=BUCKET, Key="audit/dt=2026-12-01/000001.json", VersionId=put["VersionId"])
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
        # A checkpoint signed before the restart verifies with the audit key's public key after it.
        public = serialization.load_der_public_key(stack.aws("kms").get_public_key(KeyId=AUDIT_KEY)["PublicKey"])
        public.verify(signature, checkpoint, padding.PKCS1v15(), hashes.SHA256())
        assert stack.stop(timeout=60) == 0, stack.output()
    finally:
        stack.close()
