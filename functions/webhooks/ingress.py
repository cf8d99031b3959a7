"""POST /v1/webhooks/{provider}: a payment gateway's webhook (no caller; the provider's
signature).

The raw bytes are kept before the input gate parses the body, and the signature is
checked over them (``ledgerline.payments.ingress``): a bad one is 401, audited as
``payment.webhook_signature_invalid`` at most once per IP and minute. A good one is queued
on ``gateway-webhooks`` and answered 200 at once; the consumer does the rest
(``functions.webhooks.consume``). Its own rate limit (``RateLimit.WEBHOOK``): gateways
call from a few addresses, far more often than a person.
"""

import threading
from typing import Any

from ledgerline.http import Endpoint, Response, json_response
from ledgerline.payments import ingress

api = Endpoint(__name__)
_raw = threading.local()  # the local gateway serves requests on many threads


@api
def receive_webhook(provider: str) -> Response:
    request = api.request
    ingress.verify(provider, request.headers, _raw.body, request.actor)
    ingress.enqueue(provider, _raw.body, request.actor)
    return json_response({"status": "received"})


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _raw.body = ingress.raw_body(event)
    try:
        return api.handler(event, context)
    finally:
        _raw.body = b""
