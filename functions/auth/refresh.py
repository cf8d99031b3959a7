"""POST /v1/auth/refresh: rotate a refresh token (reuse ends the session)."""

from ledgerline.auth import failures, sessions
from ledgerline.auth.schemas import RefreshBody
from ledgerline.http import Endpoint, Response, json_response

api = Endpoint(__name__)


@api
def refresh(body: RefreshBody) -> Response:
    request = api.request
    # A refused refresh token counts against the caller's IP like any refused credential.
    result = failures.counted(
        request.ip,
        lambda: sessions.refresh(
            body.refresh_token, sessions.Client.from_request(request, placed=False), run=api.write
        ),
    )
    return json_response(result.to_json(), headers={"Cache-Control": "no-store"})


handler = api.handler
