"""DELETE /v1/webhook-endpoints/{id}: delete one of the caller's webhook endpoints."""

from ledgerline.http import Endpoint, Response
from ledgerline.ids import object_id
from ledgerline.webhooks import endpoints

api = Endpoint(__name__)


@api
def delete_webhook_endpoint(id: str) -> Response:
    request = api.request
    endpoint_id = object_id(id, "webhook endpoint")
    api.write(lambda cur: endpoints.delete(cur, request.require_principal(), endpoint_id, request.actor))
    return Response(status_code=204)


handler = api.handler
