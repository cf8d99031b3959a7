"""GET /v1/webhook-endpoints: the caller's webhook endpoints (never their secrets)."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from ledgerline.http import Endpoint, Response, json_response
from ledgerline.webhooks import endpoints

api = Endpoint(__name__)


@api
def list_webhook_endpoints(
    limit: Annotated[int | None, Query(ge=1, le=200)] = None, cursor: str | None = None
) -> Response:
    principal = api.request.require_principal()
    items, next_cursor = api.read(lambda cur: endpoints.list_endpoints(cur, principal, limit=limit, cursor=cursor))
    return json_response({"items": [e.to_json() for e in items], "next_cursor": next_cursor})


handler = api.handler
