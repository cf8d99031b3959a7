"""GET /v1/webhook-endpoints/{id}/deliveries: an endpoint's delivery log, newest first."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from ledgerline.http import Endpoint, Response, json_response
from ledgerline.ids import object_id
from ledgerline.webhooks import endpoints

api = Endpoint(__name__)


@api
def list_webhook_deliveries(
    id: str, limit: Annotated[int | None, Query(ge=1, le=200)] = None, cursor: str | None = None
) -> Response:
    endpoint_id = object_id(id, "webhook endpoint")
    principal = api.request.require_principal()
    items, next_cursor = api.read(
        lambda cur: endpoints.deliveries(cur, principal, endpoint_id, limit=limit, cursor=cursor)
    )
    return json_response({"items": [d.to_json() for d in items], "next_cursor": next_cursor})


handler = api.handler
