"""POST /v1/auth/password-reset/request: mail a reset link (202 whatever the address)."""

from ledgerline.auth import resets
from ledgerline.auth.schemas import ResetRequestBody
from ledgerline.http import Endpoint, Response, json_response

api = Endpoint(__name__)


@api
def password_reset_request(body: ResetRequestBody) -> Response:
    actor = api.request.actor
    api.write(lambda cur: resets.request_reset(cur, body.email, actor))
    return json_response({"status": "accepted"}, 202)


handler = api.handler
