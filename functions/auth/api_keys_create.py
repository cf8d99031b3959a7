"""POST /v1/api-keys: a new API key for a merchant (the secret is shown once)."""

from ledgerline.auth import apikeys
from ledgerline.auth.schemas import ApiKeyBody
from ledgerline.http import Endpoint, Response, json_response

api = Endpoint(__name__)


@api
def create_api_key(body: ApiKeyBody) -> Response:
    request = api.request
    principal = request.require_principal()
    key = api.write(lambda cur: apikeys.create(cur, principal, name=body.name, scopes=body.scopes, actor=request.actor))
    return json_response(key.to_json(), 201, headers={"Cache-Control": "no-store"})


handler = api.handler
