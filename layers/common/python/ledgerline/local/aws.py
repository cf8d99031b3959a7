"""The local AWS stand-in: moto's server in a child process, and the resources the stack uses.

``start()`` runs moto's server (S3, SQS, KMS, Secrets Manager, SES, ...) in a child
process that dies with its parent, even when the parent is SIGKILLed: the child watches a
pipe from the parent (EOF the moment the parent is gone) and its parent pid (reparented
when the parent dies). ``bootstrap(endpoint_url)`` then creates, idempotently, what the
CDK app creates in AWS: one queue + DLQ per ``ledgerline.jobs.QUEUES`` row, the Object
Lock audit bucket, the dispute evidence bucket, the KMS keys and the secrets.

moto keeps its state in memory. Given a ``state_dir`` (``dev up`` passes
``<data_dir>/aws``), the server keeps its S3 objects (every version, with its Object Lock
retention) and its KMS keys (ids, key material, aliases) there and loads them again on the
next start (``ledgerline.local.aws_state``): a trail shipped before a restart still
verifies, and access tokens issued before it still verify. Without one (tests), every
start is a blank account. Secrets are throwaway dev values generated once and kept in
``<data_dir>/local-secrets.json`` (mode 600), and re-seeded with the same values on every
start, so data written under them stays readable. SQS messages are not kept.

Run as a module (``python -m ledgerline.local.aws serve --port N --parent-pid P``) this
file is the child process itself.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledgerline.local import lifeline

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4566
PORT_ENV = "LEDGERLINE_MOTO_PORT"
DUMMY_CREDENTIAL = "testing"  # moto accepts any credentials; never real ones
AUDIT_RETENTION_DAYS = 400
SECRETS_FILE_NAME = "local-secrets.json"
DLQ_RETENTION_SECONDS = 14 * 24 * 3600  # the SQS maximum: time to inspect poison messages

# purpose → (KeySpec, KeyUsage); the CDK data-protection and audit constructs match these.
KEY_SPECS: dict[str, tuple[str, str]] = {
    "jwt": ("RSA_2048", "SIGN_VERIFY"),
    "field": ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"),
    "audit": ("RSA_2048", "SIGN_VERIFY"),
}


class NotLocalError(RuntimeError):
    """A local-only operation was asked for outside the local stack."""


# --------------------------------------------------------------------------- server


class MotoServer:
    """A running moto server child process; ``stop()`` ends it (also on parent death)."""

    def __init__(self, process: subprocess.Popen[bytes], host: str, port: int, log_file: Path) -> None:
        self.process = process
        self.host = host
        self.port = port
        self.log_file = log_file

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        lifeline.stop(self.process, timeout)

    def __enter__(self) -> MotoServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def configured_port() -> int:
    return int(os.environ.get(PORT_ENV) or DEFAULT_PORT)


def free_port(host: str = DEFAULT_HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def start(
    port: int | None = None,
    host: str = DEFAULT_HOST,
    *,
    log_file: Path | None = None,
    state_dir: Path | None = None,
    ready_timeout: float = 30.0,
) -> MotoServer:
    """Start moto's server on ``host:port`` (default LEDGERLINE_MOTO_PORT or 4566).

    With ``state_dir``, S3 objects and KMS keys are kept there across restarts.

    Returns once it answers HTTP. Raises RuntimeError when the port is taken or the
    server does not come up (with the tail of its log).
    """
    port = configured_port() if port is None else port
    if _port_in_use(host, port):
        raise RuntimeError(f"{host}:{port} is already in use (another moto or localstack?); stop it or set {PORT_ENV}")
    if log_file is None:
        fd, name = tempfile.mkstemp(prefix="ledgerline-moto-", suffix=".log")
        os.close(fd)
        log_file = Path(name)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["MOTO_PORT"] = str(port)  # moto builds queue URLs from it
    package_root = str(Path(__file__).resolve().parents[2])  # the directory holding ledgerline/
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    # A fresh log per start, like moto's fresh state.
    args = ["-m", "ledgerline.local.aws", "serve", "--host", host, "--port", str(port)]
    if state_dir is not None:
        args += ["--state-dir", str(state_dir)]
    process = lifeline.spawn(args, log_file=log_file, env=env)
    server = MotoServer(process, host, port, log_file)
    try:
        _wait_ready(server, ready_timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_ready(server: MotoServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.running():
            raise RuntimeError(f"moto server exited with {server.process.returncode}: {_tail(server.log_file)}")
        try:
            with urllib.request.urlopen(server.endpoint_url + "/moto-api/", timeout=1):  # noqa: S310 - fixed http URL
                return
        except urllib.error.HTTPError:
            return  # it answers HTTP: it is up
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"moto server did not answer within {timeout:.0f}s: {_tail(server.log_file)}")


def _tail(path: Path, size: int = 2000) -> str:
    try:
        return path.read_bytes()[-size:].decode(errors="replace")
    except OSError:
        return "(no log)"


def _serve(host: str, port: int, parent_pid: int, state_dir: Path | None = None) -> None:
    """The child process: die with the parent, load the kept state, then run moto's server
    (as ``moto.server.main`` does, with the state kept after every change)."""
    lifeline.tie_to_parent(parent_pid)
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # One line per request (workers long-poll every second) would bury moto's errors.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import run_simple

    app: Any = DomainDispatcherApplication(create_backend_app)
    if state_dir is not None:
        from ledgerline.local.aws_state import StateStore

        store = StateStore(state_dir)
        store.restore()
        app = store.wrap(app)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    run_simple(host, port, app, threaded=True, request_handler=MotoRequestHandler)


# --------------------------------------------------------------------------- environment


def client_environment(endpoint_url: str, region: str | None = None) -> dict[str, str]:
    """The variables that point boto3 (and so ``ledgerline.aws``) at the local server."""
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "eu-west-1"
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": DUMMY_CREDENTIAL,
        "AWS_SECRET_ACCESS_KEY": DUMMY_CREDENTIAL,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
    }


def point_library_at(endpoint_url: str, region: str | None = None) -> dict[str, str | None]:
    """Set this process's AWS variables to the local server and forget cached clients.

    Returns the previous values, for ``restore_environment``.
    """
    env = client_environment(endpoint_url, region)
    previous = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.pop("AWS_PROFILE", None)
    _forget_cached_clients()
    return previous


def restore_environment(previous: Mapping[str, str | None]) -> None:
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    _forget_cached_clients()


def _forget_cached_clients() -> None:
    from ledgerline import config
    from ledgerline.aws import clients, resources
    from ledgerline.aws import secrets as aws_secrets

    config.settings.cache_clear()
    clients.reset()
    resources.reset()
    aws_secrets.reset()


# --------------------------------------------------------------------------- dev secrets


def secrets_file() -> Path:
    from ledgerline.config import settings

    return settings().data_dir / SECRETS_FILE_NAME


def _generate_dev_secrets() -> dict[str, Any]:
    return {
        "gateways": {
            "paystack_secret_key": "sk_test_" + secrets.token_hex(20),
            "stripe_secret_key": "sk_test_" + secrets.token_hex(24),
            "stripe_webhook_secret": "whsec_" + secrets.token_urlsafe(24),
            "flutterwave_secret_key": "FLWSECK_TEST-" + secrets.token_hex(16) + "-X",
            "flutterwave_secret_hash": secrets.token_urlsafe(24),
        },
        "blind_index_key": secrets.token_hex(32),
    }


def _merge_new_gateway_keys(values: Any) -> bool:
    """Add the gateway keys a newer version needs to an older file, keeping every value it
    has (a gateway key encrypts nothing, so a new throwaway one is harmless). True when
    something was added."""
    gateways = values.get("gateways") if isinstance(values, dict) else None
    if not isinstance(gateways, dict):
        return False
    missing = {k: v for k, v in _generate_dev_secrets()["gateways"].items() if not gateways.get(k)}
    gateways.update(missing)
    return bool(missing)


def _write_private(path: Path, values: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(values, out, indent=2)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def load_dev_secrets(path: Path | None = None) -> dict[str, Any]:
    """The throwaway local secrets, generated on first use and kept (mode 600)."""
    path = path or secrets_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    # One lock file per secrets file: two processes starting at once agree on one value.
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if path.exists():
                values = json.loads(path.read_text())
                if _merge_new_gateway_keys(values):
                    _write_private(path, values)
                _check_dev_secrets(values, path)
                if path.stat().st_mode & 0o077:
                    path.chmod(0o600)
                return values
            values = _generate_dev_secrets()
            _write_private(path, values)
            return values
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _check_dev_secrets(values: Any, path: Path) -> None:
    gateways = values.get("gateways") if isinstance(values, dict) else None
    needed = tuple(_generate_dev_secrets()["gateways"])
    if not isinstance(gateways, dict) or any(not gateways.get(k) for k in needed) or not values.get("blind_index_key"):
        raise RuntimeError(
            f"{path} is not a complete local secrets file; move it away to generate new throwaway values "
            "(data encrypted or indexed under the old values becomes unreadable)"
        )


def dev_secrets(path: Path | None = None) -> dict[str, str]:
    """What ``ledgerline dev secrets`` prints. Refuses outside the local stack."""
    from ledgerline.config import settings

    cfg = settings()
    if not cfg.local:
        raise NotLocalError(
            f"dev secrets exist only in the local stack (LEDGERLINE_ENV={cfg.environment!r}); "
            "in AWS read them from Secrets Manager with your own credentials"
        )
    values = load_dev_secrets(path)
    return {**values["gateways"], "blind_index_key": values["blind_index_key"]}


# --------------------------------------------------------------------------- bootstrap


@dataclass
class Bootstrapped:
    """What ``bootstrap`` created or found, by purpose."""

    queue_urls: dict[str, str] = field(default_factory=dict)  # QUEUES name → URL
    dlq_urls: dict[str, str] = field(default_factory=dict)  # QUEUES name → its DLQ's URL
    audit_bucket: str = ""
    evidence_bucket: str = ""
    key_ids: dict[str, str] = field(default_factory=dict)  # purpose → key id
    key_aliases: dict[str, str] = field(default_factory=dict)  # purpose → alias/...
    secret_ids: dict[str, str] = field(default_factory=dict)  # "gateways"/"blind-index" → ARN


def bootstrap(
    endpoint_url: str,
    *,
    prefix: str | None = None,
    region: str | None = None,
    secrets_path: Path | None = None,
) -> Bootstrapped:
    """Create every resource the stack uses in the server at ``endpoint_url``; idempotent."""
    from ledgerline.config import settings

    cfg = settings()
    prefix = prefix or cfg.resource_prefix
    region = region or cfg.aws_region
    import boto3  # the local stand-in plays the CDK app's part: it provisions

    session = boto3.session.Session(
        aws_access_key_id=DUMMY_CREDENTIAL, aws_secret_access_key=DUMMY_CREDENTIAL, region_name=region
    )

    def client(service: str) -> Any:
        return session.client(service, endpoint_url=endpoint_url)

    out = Bootstrapped()
    _queues(client("sqs"), prefix, out)
    out.audit_bucket = _audit_bucket(client("s3"), f"{prefix}-audit-local", region)
    out.evidence_bucket = _evidence_bucket(client("s3"), f"{prefix}-evidence-local", region)
    _keys(client("kms"), prefix, out)
    _secrets(client("secretsmanager"), prefix, load_dev_secrets(secrets_path), out)
    return out


def _queues(sqs: Any, prefix: str, out: Bootstrapped) -> None:
    from ledgerline.jobs import QUEUES

    for q in QUEUES:
        dlq_url = _ensure_queue(sqs, f"{prefix}-{q.dlq_name}", {"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)})
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": q.max_receive_count})
        url = _ensure_queue(
            sqs,
            f"{prefix}-{q.name}",
            {"VisibilityTimeout": str(q.visibility_timeout_seconds), "RedrivePolicy": redrive},
        )
        out.queue_urls[q.name] = url
        out.dlq_urls[q.name] = dlq_url


def _ensure_queue(sqs: Any, name: str, attributes: dict[str, str]) -> str:
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist:
        return sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    # It exists (a second bootstrap on the same server): converge its attributes.
    sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    return url


def _audit_bucket(s3: Any, name: str, region: str) -> str:
    try:
        s3.head_bucket(Bucket=name)
        exists = True
    except s3.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
        exists = False
    if not exists:
        kwargs: dict[str, Any] = {"Bucket": name, "ObjectLockEnabledForBucket": True}
        if region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        s3.create_bucket(**kwargs)
    lock = s3.get_object_lock_configuration(Bucket=name)["ObjectLockConfiguration"]
    if lock.get("ObjectLockEnabled") != "Enabled":
        raise RuntimeError(f"bucket {name} exists without Object Lock; the audit trail needs it")
    if s3.get_bucket_versioning(Bucket=name).get("Status") != "Enabled":
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    retention = lock.get("Rule", {}).get("DefaultRetention", {})
    if (retention.get("Mode"), retention.get("Days"), retention.get("Years") or 0) != (
        "COMPLIANCE",
        AUDIT_RETENTION_DAYS,
        0,
    ):
        # Only when it differs: moto (unlike S3) refuses this call on a non-empty bucket.
        s3.put_object_lock_configuration(
            Bucket=name,
            ObjectLockConfiguration={
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": AUDIT_RETENTION_DAYS}},
            },
        )
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    return name


def _evidence_bucket(s3: Any, name: str, region: str) -> str:
    """Dispute evidence (ledgerline.aws.evidence): private and versioned, as in AWS; moto
    does not enforce the presigned POST's policy, so the API confirms every upload itself."""
    try:
        s3.head_bucket(Bucket=name)
    except s3.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
        kwargs: dict[str, Any] = {"Bucket": name}
        if region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        s3.create_bucket(**kwargs)
    if s3.get_bucket_versioning(Bucket=name).get("Status") != "Enabled":
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    return name


def _keys(kms: Any, prefix: str, out: Bootstrapped) -> None:
    existing = {a["AliasName"]: a.get("TargetKeyId") for a in _paginate(kms, "list_aliases", "Aliases")}
    for purpose, (spec, usage) in KEY_SPECS.items():
        alias = f"alias/{prefix}-{purpose}"
        key_id = existing.get(alias)
        if not key_id:
            key_id = kms.create_key(KeySpec=spec, KeyUsage=usage, Description=f"{prefix} {purpose} key (local)")[
                "KeyMetadata"
            ]["KeyId"]
            kms.create_alias(AliasName=alias, TargetKeyId=key_id)
        out.key_ids[purpose] = key_id
        out.key_aliases[purpose] = alias


def _paginate(client: Any, operation: str, key: str) -> Iterator[dict[str, Any]]:
    for page in client.get_paginator(operation).paginate():
        yield from page.get(key, [])


def _secrets(sm: Any, prefix: str, values: dict[str, Any], out: Bootstrapped) -> None:
    wanted = {
        "gateways": json.dumps(values["gateways"], sort_keys=True),
        "blind-index": values["blind_index_key"],
    }
    for purpose, secret_string in wanted.items():
        name = f"{prefix}/{purpose}"
        try:
            current = sm.get_secret_value(SecretId=name)
        except sm.exceptions.ResourceNotFoundException:
            out.secret_ids[purpose] = sm.create_secret(
                Name=name, SecretString=secret_string, Description=f"{prefix} {purpose} (local throwaway value)"
            )["ARN"]
            continue
        if current.get("SecretString") != secret_string:
            sm.put_secret_value(SecretId=name, SecretString=secret_string)
        out.secret_ids[purpose] = current["ARN"]


# --------------------------------------------------------------------------- child entry


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ledgerline.local.aws")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run moto's server until the parent process is gone")
    serve.add_argument("--host", default=DEFAULT_HOST)
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.add_argument("--parent-pid", type=int, required=True)
    serve.add_argument("--state-dir", type=Path, default=None, help="keep S3 objects and KMS keys here")
    args = parser.parse_args(argv)
    _serve(args.host, args.port, args.parent_pid, args.state_dir)


if __name__ == "__main__":
    _main()
