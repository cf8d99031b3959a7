"""API Gateway's Lambda authorizer for every non-public route (HTTP API, REQUEST type,
payload 2.0, simple responses; wired in ``infra/components/http_api.py``).

It makes the same decision as the local gateway (``ledgerline.auth.authorizer``):
merchant API keys and RS256 access tokens. Its answer, per Authorization header value,
is cached by API Gateway for 5 minutes (``AUTHORIZER_CACHE_TTL``); the route's Endpoint re-checks
expiry and the database state on every request, so the cache never extends a token.

Contract with API Gateway:

* allowed: ``{"isAuthorized": true, "context": <claims>}``; the route's function reads
  the claims from ``requestContext.authorizer.lambda`` (JSON values, kept as they are:
  HTTP APIs pass strings, numbers, booleans, lists and maps through);
* refused (forged, expired, revoked, malformed, IP over its failure budget):
  ``{"isAuthorized": false}``, which API Gateway answers with 403 ``{"message":
  "Forbidden"}``; a request without an Authorization header gets 401 from API Gateway
  without this function running;
* anything unexpected (database or KMS unreachable, a bug) is raised, never caught into
  an allow: API Gateway answers 500 and runs no route, and, unlike a refusal, the
  failure is not cached against a good credential.
"""

from __future__ import annotations

from typing import Any

from ledgerline import errors
from ledgerline.auth import origin
from ledgerline.auth.authorizer import authorize_bearer
from ledgerline.observability import logger


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # Payload 2.0 lower-cases header names; compare without relying on it.
    headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
    http = (event.get("requestContext") or {}).get("http") or {}
    try:
        # Failures count against the client, not a proxy we run (LEDGERLINE_TRUSTED_PROXIES).
        client_ip = origin.client_ip(http.get("sourceIp"), headers)
        claims = authorize_bearer(headers.get("authorization"), client_ip)
    except errors.DomainError as refused:
        # The reason, never the credential: the caller only sees API Gateway's 403.
        logger.info("credential refused", extra={"code": refused.code, "detail": refused.detail})
        return {"isAuthorized": False}
    return {"isAuthorized": True, "context": claims}
