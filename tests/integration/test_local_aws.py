"""The local AWS stand-in: moto's server, the bootstrapped resources, the dev secrets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import boto3
import pytest
from botocore.exceptions import ClientError

from ledgerline.jobs import QUEUES
from ledgerline.local import aws


def _client(service, endpoint):
    return boto3.client(service, endpoint_url=endpoint)


def test_every_queue_has_a_dlq_with_the_rows_redrive_and_visibility(aws_endpoint):
    sqs = _client("sqs", aws_endpoint)
    for q in QUEUES:
        url = sqs.get_queue_url(QueueName=f"ledgerline-{q.name}")["QueueUrl"]
        dlq_url = sqs.get_queue_url(QueueName=f"ledgerline-{q.dlq_name}")["QueueUrl"]
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        redrive = json.loads(attrs["RedrivePolicy"])
        assert redrive["deadLetterTargetArn"] == dlq_arn
        assert int(redrive["maxReceiveCount"]) == q.max_receive_count
        assert int(attrs["VisibilityTimeout"]) == q.visibility_timeout_seconds


def test_audit_bucket_has_compliance_object_lock_and_versioning(aws_endpoint):
    s3 = _client("s3", aws_endpoint)
    bucket = "ledgerline-audit-local"
    lock = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    retention = lock["Rule"]["DefaultRetention"]
    assert (retention["Mode"], retention["Days"], retention.get("Years", 0)) == ("COMPLIANCE", 400, 0)
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"


def test_a_locked_audit_object_version_cannot_be_deleted(aws_endpoint):
    s3 = _client("s3", aws_endpoint)
    bucket = "ledgerline-audit-local"
    put = s3.put_object(Bucket=bucket, Key="test/locked.json", Body=b"{}", ChecksumAlgorithm="SHA256")
    with pytest.raises(ClientError):
        s3.delete_object(Bucket=bucket, Key="test/locked.json", VersionId=put["VersionId"])
    assert s3.get_object(Bucket=bucket, Key="test/locked.json", VersionId=put["VersionId"])["Body"].read() == b"{}"


def test_keys_have_their_specs_and_the_library_resolves_them(aws_endpoint):
    from ledgerline.aws import clients, resources

    kms = clients.client("kms")
    expected = {
        resources.jwt_key_id(): ("RSA_2048", "SIGN_VERIFY"),
        resources.field_key_id(): ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"),
        resources.audit_key_id(): ("RSA_2048", "SIGN_VERIFY"),
    }
    for key_id, (spec, usage) in expected.items():
        meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
        assert (meta["KeySpec"], meta["KeyUsage"]) == (spec, usage), key_id
    signature = kms.sign(
        KeyId=resources.jwt_key_id(), Message=b"header.payload", SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256"
    )["Signature"]
    verified = kms.verify(
        KeyId=resources.jwt_key_id(),
        Message=b"header.payload",
        Signature=signature,
        SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256",
    )
    assert verified["SignatureValid"] is True


def test_library_reads_the_seeded_secrets(aws_endpoint):
    from ledgerline.aws import resources, secrets

    gateways = secrets.get_json(resources.gateway_secret_id())
    assert gateways["paystack_secret_key"].startswith("sk_test_")
    assert gateways["stripe_webhook_secret"].startswith("whsec_")
    assert gateways["flutterwave_secret_hash"]
    blind_index = secrets.get_string(resources.blind_index_secret_id())
    assert len(bytes.fromhex(blind_index)) == 32
    assert aws.dev_secrets()["stripe_webhook_secret"] == gateways["stripe_webhook_secret"]
    assert aws.dev_secrets()["blind_index_key"] == blind_index


def test_queue_url_resolves_by_convention_or_environment(aws_endpoint, monkeypatch):
    from ledgerline.aws import resources

    assert resources.queue_url("notifications").endswith("/ledgerline-notifications")
    monkeypatch.setenv("LEDGERLINE_QUEUE_MERCHANT_WEBHOOKS_URL", "https://sqs.example/1/x")
    assert resources.queue_url("merchant-webhooks") == "https://sqs.example/1/x"


def test_bootstrap_twice_is_a_no_op(aws_endpoint):
    first = aws.bootstrap(aws_endpoint)
    second = aws.bootstrap(aws_endpoint)
    assert first == second
    sqs = _client("sqs", aws_endpoint)
    names = sqs.list_queues(QueueNamePrefix="ledgerline-").get("QueueUrls", [])
    assert len(names) == 2 * len(QUEUES)
    kms = _client("kms", aws_endpoint)
    aliases = [a["AliasName"] for a in kms.list_aliases()["Aliases"] if a["AliasName"].startswith("alias/ledgerline-")]
    assert sorted(aliases) == ["alias/ledgerline-audit", "alias/ledgerline-field", "alias/ledgerline-jwt"]


def test_dev_secrets_survive_a_restart_and_the_file_is_private(tmp_path):
    path = tmp_path / "local-secrets.json"
    seen = []
    for _ in range(2):
        with aws.start(aws.free_port(), log_file=tmp_path / "moto.log") as server:
            aws.bootstrap(server.endpoint_url, secrets_path=path)
            sm = _client("secretsmanager", server.endpoint_url)
            seen.append(
                (
                    sm.get_secret_value(SecretId="ledgerline/gateways")["SecretString"],
                    sm.get_secret_value(SecretId="ledgerline/blind-index")["SecretString"],
                )
            )
    assert seen[0] == seen[1]
    assert json.loads(seen[0][0]) == json.loads(path.read_text())["gateways"]
    assert path.stat().st_mode & 0o777 == 0o600


def test_dev_secrets_are_refused_outside_the_local_stack(monkeypatch, tmp_path):
    from ledgerline import config

    monkeypatch.setenv("LEDGERLINE_ENV", "aws")
    config.settings.cache_clear()
    try:
        with pytest.raises(aws.NotLocalError):
            aws.dev_secrets(tmp_path / "s.json")
        assert not (tmp_path / "s.json").exists()
    finally:
        monkeypatch.undo()
        config.settings.cache_clear()


def test_port_in_use_is_refused_clearly(aws_endpoint):
    port = int(aws_endpoint.rsplit(":", 1)[1])
    with pytest.raises(RuntimeError, match="already in use"):
        aws.start(port)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purposes once reaped or defunct.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_moto_dies_when_its_parent_is_sigkilled(tmp_path):
    # Given a parent process that started moto and was then killed without any clean-up
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from pathlib import Path
                from ledgerline.local import aws
                server = aws.start(aws.free_port(), log_file=Path({str(tmp_path / "moto.log")!r}))
                print(server.pid, server.port, flush=True)
                time.sleep(120)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    child_pid = None
    try:
        child_pid, port = map(int, parent.stdout.readline().split())
        assert _alive(child_pid)
        # When the parent is SIGKILLed
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=5)
        # Then the moto server goes too, and its port is free again
        deadline = time.monotonic() + 5
        # (A dying multi-threaded process shows as a zombie a moment before its last
        # thread has closed the listening socket: wait for both.)
        while (_alive(child_pid) or aws._port_in_use("127.0.0.1", port)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(child_pid), "moto server outlived its SIGKILLed parent"
        assert not aws._port_in_use("127.0.0.1", port)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if child_pid is not None and _alive(child_pid):
            os.kill(child_pid, signal.SIGKILL)  # leave no orphan behind, even on failure
