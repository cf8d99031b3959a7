"""POST /v1/auth/refresh: rotate a refresh token (reuse ends the session)."""

from ledgerline.auth import sessions
from ledgerline.auth.schemas import RefreshBody
from ledgerline.http import Endpoint, json_response

api = Endpoint(__name__)


@api
def refresh(body: RefreshBody):
    result = sessions.refresh(body.refresh_token, sessions.Client.from_request(api.request))
    return json_response(result, headers={"Cache-Control": "no-store"})


handler = api.handler
