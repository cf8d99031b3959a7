"""POST /v1/webhook-endpoints: register a merchant's webhook endpoint (the secret is shown once)."""

from ledgerline.http import Endpoint, Response, json_response
from ledgerline.webhooks import endpoints
from ledgerline.webhooks.schemas import WebhookEndpointBody

api = Endpoint(__name__)


@api
def create_webhook_endpoint(body: WebhookEndpointBody) -> Response:
    request = api.request
    principal = request.require_principal()
    created = api.write(
        lambda cur: endpoints.create(cur, principal, url=body.url, events=body.events, actor=request.actor)
    )
    return json_response(created.to_json(), 201, headers={"Cache-Control": "no-store"})


handler = api.handler
