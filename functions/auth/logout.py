"""POST /v1/auth/logout: revoke this access token and its session."""

from ledgerline.auth import sessions
from ledgerline.http import Endpoint, Response

api = Endpoint(__name__)


@api
def logout() -> Response:
    request = api.request
    api.write(lambda cur: sessions.logout(cur, request.require_principal(), request.actor))
    return Response(status_code=204)


handler = api.handler
