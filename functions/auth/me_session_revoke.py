"""DELETE /v1/me/sessions/{id}: end one of the caller's sessions."""

from ledgerline.auth import sessions
from ledgerline.http import Endpoint, Response
from ledgerline.ids import object_id

api = Endpoint(__name__)


@api
def revoke_my_session(id: str) -> Response:
    request = api.request
    session_id = object_id(id, "session")
    api.write(lambda cur: sessions.revoke_session(cur, request.require_principal(), session_id, request.actor))
    return Response(status_code=204)


handler = api.handler
