"""Names and ids of the AWS resources the stack uses, resolved in one place.

In AWS the CDK app passes every id to the Lambdas as an environment variable (an ARN, a
URL, a bucket name), so nothing is looked up at run time. Locally nothing is set and the
conventional names below apply: they are the names ``ledgerline.local.aws.bootstrap``
creates in the moto server, derived from ``settings().resource_prefix``.
"""

from __future__ import annotations

import os
import re
import threading

from ledgerline.aws import clients
from ledgerline.config import settings

# Key aliases and secret names, by purpose; the CDK app uses the same purposes.
KEY_PURPOSES = ("jwt", "field", "audit")

_lock = threading.Lock()
_queue_urls: dict[tuple[str | None, str, str], str] = {}


def _env(name: str) -> str | None:
    return os.environ.get(name) or None


def _prefix() -> str:
    return settings().resource_prefix


def key_alias(purpose: str) -> str:
    """``jwt`` → ``alias/ledgerline-jwt``."""
    return f"alias/{_prefix()}-{purpose}"


def jwt_key_id() -> str:
    """The KMS key that signs access tokens (RSA_2048, SIGN_VERIFY)."""
    return _env("LEDGERLINE_JWT_KEY_ID") or key_alias("jwt")


def field_key_id() -> str:
    """The KMS key that wraps per-field data keys (SYMMETRIC_DEFAULT)."""
    return _env("LEDGERLINE_FIELD_KEY_ID") or key_alias("field")


def audit_key_id() -> str:
    """The KMS key that signs audit checkpoints (RSA_2048, SIGN_VERIFY)."""
    return _env("LEDGERLINE_AUDIT_KEY_ID") or key_alias("audit")


def local_audit_bucket() -> str:
    return f"{_prefix()}-audit-local"


def audit_bucket() -> str:
    """The Object Lock bucket the audit shipper writes to.

    Bucket names are global across AWS accounts, so the deployed name carries the
    account and region (the CDK app sets LEDGERLINE_AUDIT_BUCKET); locally it is fixed.
    """
    explicit = _env("LEDGERLINE_AUDIT_BUCKET")
    if explicit:
        return explicit
    if settings().local:
        return local_audit_bucket()
    account = clients.client("sts").get_caller_identity()["Account"]
    return f"{_prefix()}-audit-{account}-{settings().aws_region}"


def queue_name(name: str) -> str:
    """``notifications`` → ``ledgerline-notifications`` (a QUEUES row's name)."""
    return f"{_prefix()}-{name}"


def queue_env_var(name: str) -> str:
    """``merchant-webhooks`` → ``LEDGERLINE_QUEUE_MERCHANT_WEBHOOKS_URL``."""
    return f"LEDGERLINE_QUEUE_{re.sub(r'[^A-Za-z0-9]+', '_', name).upper()}_URL"


def queue_url(name: str) -> str:
    """The URL of a QUEUES row's queue (``<name>-dlq`` for its dead-letter queue)."""
    explicit = _env(queue_env_var(name))
    if explicit:
        return explicit
    cfg = settings()
    key = (cfg.aws_endpoint_url, cfg.resource_prefix, name)
    with _lock:
        cached = _queue_urls.get(key)
    if cached:
        return cached
    url = clients.client("sqs").get_queue_url(QueueName=queue_name(name))["QueueUrl"]
    with _lock:
        _queue_urls[key] = url
    return url


def gateway_secret_id() -> str:
    """The Secrets Manager secret with the payment gateways' keys (JSON)."""
    return _env("LEDGERLINE_GATEWAY_SECRET_ARN") or f"{_prefix()}/gateways"


def blind_index_secret_id() -> str:
    """The Secrets Manager secret with the blind-index HMAC key (hex)."""
    return _env("LEDGERLINE_BLIND_INDEX_SECRET_ARN") or f"{_prefix()}/blind-index"


def reset() -> None:
    """Forget looked-up ids (tests point the library at another endpoint)."""
    with _lock:
        _queue_urls.clear()
