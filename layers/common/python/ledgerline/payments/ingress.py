"""Gateway webhooks at the door: verify the raw bytes, then queue them.

The signature is checked over the bytes exactly as the gateway sent them (a parsed and
re-serialised body would not hash the same), in constant time, by the provider's adapter
(``Gateway.verify_webhook``). A verified body is queued on ``gateway-webhooks`` as it
came, with the provider's name: the consumer parses it, re-queries the gateway and
credits (``ledgerline.payments.confirm``). No header travels: Flutterwave's
``verif-hash`` *is* the secret.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ledgerline import errors
from ledgerline.audit import Actor
from ledgerline.db import transaction
from ledgerline.gateways.base import SignatureInvalid
from ledgerline.payments import store

QUEUE = "gateway-webhooks"


def raw_body(event: Mapping[str, Any]) -> bytes:
    """The request body's bytes as API Gateway (or the local gateway) received them."""
    body = event.get("body") or ""
    if not event.get("isBase64Encoded"):
        return str(body).encode("utf-8", "surrogatepass")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return b""


def verify(provider: str, headers: Mapping[str, str], body: bytes, actor: Actor) -> None:
    """Pass a correctly signed body; refuse anything else with 401, audited (throttled)
    with ``actor``, the gateway as the request shows it. An unknown provider is 404
    (``registry.UnknownProvider``)."""
    from ledgerline.gateways.registry import gateway  # deferred: loads the adapters

    adapter = gateway(provider)
    try:
        adapter.verify_webhook(headers, body)
    except SignatureInvalid as exc:
        reason = str(exc)[:200]
        transaction(lambda cur: store.record_invalid_signature(cur, actor, provider, reason))
        raise errors.Unauthorized("the webhook's signature does not verify") from None


def message(provider: str, body: bytes, actor: Actor) -> dict[str, Any]:
    """The queue message for a verified body: what the consumer needs, and no secret."""
    return {
        "provider": provider,
        "body": body.decode("utf-8"),
        "received_at": datetime.now(UTC).isoformat(),
        "request_id": actor.request_id,
        "ip": actor.ip,
    }


def enqueue(provider: str, body: bytes, actor: Actor) -> str:
    from ledgerline.aws import queues

    return queues.send(QUEUE, message(provider, body, actor), attributes={"provider": provider})
