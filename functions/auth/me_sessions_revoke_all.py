"""POST /v1/me/sessions/revoke-all: end every session of the caller, this one too."""

from ledgerline.auth import sessions
from ledgerline.http import Endpoint, Response

api = Endpoint(__name__)


@api
def revoke_all_my_sessions() -> Response:
    request = api.request
    api.write(lambda cur: sessions.revoke_all_sessions(cur, request.require_principal(), request.actor))
    return Response(status_code=204)


handler = api.handler
