"""DELETE /v1/api-keys/{id}: revoke one of the caller's API keys."""

from ledgerline.auth import apikeys
from ledgerline.http import Endpoint, Response
from ledgerline.ids import object_id

api = Endpoint(__name__)


@api
def revoke_api_key(id: str) -> Response:
    request = api.request
    key_id = object_id(id, "API key")
    api.write(lambda cur: apikeys.revoke(cur, request.require_principal(), key_id, request.actor))
    return Response(status_code=204)


handler = api.handler
