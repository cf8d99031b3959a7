"""POST /v1/webhooks/{provider}: a payment gateway's webhook (no caller; the provider's
signature).

The signature is checked first, over the raw bytes as the gateway sent them, before
anything parses the body (``ledgerline.payments.ingress``): a bad one is 401, audited as
``payment.webhook_signature_invalid`` at most once per IP and minute. A good one then
goes the way of every request (the input gate, admission with the route's own rate limit,
``RateLimit.WEBHOOK``: gateways call from a few addresses, far more often than a person),
is queued on ``gateway-webhooks`` and answered 200 at once; the consumer does the rest
(``functions.webhooks.consume``).
"""

import threading
from typing import Any

from ledgerline import errors
from ledgerline.audit import Actor
from ledgerline.http import Endpoint, Response, json_response
from ledgerline.http.endpoint import log_refusal, problem_result
from ledgerline.http.gate import MAX_BODY_BYTES
from ledgerline.payments import ingress

api = Endpoint(__name__)
_verified = threading.local()  # the local gateway serves requests on many threads


@api
def receive_webhook(provider: str) -> Response:
    ingress.enqueue(provider, _verified.body, api.request.actor)
    return json_response({"status": "received"})


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    body = ingress.raw_body(event)
    if len(body) <= MAX_BODY_BYTES:  # a larger one is the input gate's 413, unhashed
        http = (event.get("requestContext") or {}).get("http") or {}
        actor = Actor(
            id=None,
            type="gateway",
            ip=http.get("sourceIp"),
            user_agent=_storable(http.get("userAgent")),
            request_id=(event.get("requestContext") or {}).get("requestId"),
        )
        provider = (event.get("pathParameters") or {}).get("provider", "")
        try:
            ingress.verify(provider, event.get("headers") or {}, body, actor)
        except errors.DomainError as err:
            log_refusal(err)
            return problem_result(err)
    _verified.body = body
    try:
        return api.handler(event, context)
    finally:
        _verified.body = b""


def _storable(text: str | None) -> str | None:
    """Text the audit row can hold: the input gate, which refuses a NUL or a lone
    surrogate in a header, has not run yet."""
    if not text:
        return None
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")[:500]
