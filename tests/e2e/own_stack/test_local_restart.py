"""`make run` twice on one data directory: what the local AWS stand-in was given is still
there (audit objects with their Object Lock retention, the audit key, the JWT key)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from ledgerline.config import PROJECT_ROOT
from tests.e2e.conftest import own_stack_environment
from tests.registration import poster, register_and_verify

pytestmark = pytest.mark.slow

BUCKET = "ledgerline-audit-local"
AUDIT_KEY = "alias/ledgerline-audit"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Under the project, not /tmp: the embedded server runs as its own system user.
    path = PROJECT_ROOT / ".data" / f"restart-test-{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@contextmanager
def dev_up(data_dir: Path, api_port: int, moto_port: int) -> Iterator[dict[str, Any]]:
    env = own_stack_environment()
    env.update(
        LEDGERLINE_ENV="local",
        LEDGERLINE_DATA_DIR=str(data_dir),
        LEDGERLINE_API_PORT=str(api_port),
        LEDGERLINE_MOTO_PORT=str(moto_port),
        LEDGERLINE_API_WORKERS="1",
        LEDGERLINE_FAKE_GATEWAY_PORT=str(_free_port()),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "ledgerline.cli", "dev", "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    api = f"http://127.0.0.1:{api_port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else "dev up exited"
            assert time.monotonic() < deadline, "no answer in 120 s"
            try:
                if requests.get(f"{api}/v1/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.3)
        aws = {
            "endpoint_url": f"http://127.0.0.1:{moto_port}",
            "region_name": "eu-west-1",
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
        }
        yield {"api": api, "s3": boto3.client("s3", **aws), "kms": boto3.client("kms", **aws)}
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_restart_keeps_audit_objects_their_lock_the_audit_key_and_issued_tokens(data_dir):
    api_port, moto_port = _free_port(), _free_port()
    email, password = f"restart-{uuid.uuid4().hex[:8]}@example.test", "correct horse battery staple 9"
    checkpoint = b'{"keys":["audit/dt=2026-12-01/000001.json"],"to_seq":1}'
    with dev_up(data_dir, api_port, moto_port) as first:
        body = {"email": email, "password": password, "full_name": "Ada Obi"}
        register_and_verify(poster(first["api"]), body, data_dir=data_dir)
        login = requests.post(f"{first['api']}/v1/auth/login", json={"email": email, "password": password}, timeout=30)
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]
        put = first["s3"].put_object(
            Bucket=BUCKET, Key="audit/dt=2026-12-01/000001.json", Body=b'{"seq":1}\n', ChecksumAlgorithm="SHA256"
        )
        signature = first["kms"].sign(
            KeyId=AUDIT_KEY, Message=checkpoint, MessageType="RAW", SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256"
        )["Signature"]
        before = first["s3"].list_object_versions(Bucket=BUCKET)["Versions"]

    with dev_up(data_dir, api_port, moto_port) as second:
        # The access token issued before the restart still opens the API.
        me = requests.get(f"{second['api']}/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert me.status_code == 200, me.text
        assert me.json()["email"] == email
        # The shipped object is there, the same version, still locked in COMPLIANCE mode.
        s3 = second["s3"]
        assert s3.list_object_versions(Bucket=BUCKET)["Versions"] == before
        head = s3.head_object(Bucket=BUCKET, Key="audit/dt=2026-12-01/000001.json", VersionId=put["VersionId"])
        assert head["ObjectLockMode"] == "COMPLIANCE"
        with pytest.raises(ClientError) as refused:
            s3.delete_object(Bucket=BUCKET, Key="audit/dt=2026-12-01/000001.json", VersionId=put["VersionId"])
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
        # A checkpoint signed before the restart verifies with the audit key's public key after it.
        public = serialization.load_der_public_key(second["kms"].get_public_key(KeyId=AUDIT_KEY)["PublicKey"])
        public.verify(signature, checkpoint, padding.PKCS1v15(), hashes.SHA256())
