"""boto3 clients, one per service and thread, pointed at moto locally (AWS_ENDPOINT_URL)."""

from __future__ import annotations

import threading
from typing import Any

from ledgerline.config import settings

_local = threading.local()


def client(service: str) -> Any:
    cache = getattr(_local, "clients", None)
    if cache is None:
        cache = _local.clients = {}
    if service not in cache:
        import boto3  # deferred: ~100 ms of cold start that routes without AWS calls skip

        cfg = settings()
        cache[service] = boto3.session.Session().client(
            service, region_name=cfg.aws_region, endpoint_url=cfg.aws_endpoint_url
        )
    return cache[service]


def reset() -> None:
    """Forget clients (tests point the library at another endpoint)."""
    _local.clients = {}
