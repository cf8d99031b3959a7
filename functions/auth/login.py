"""POST /v1/auth/login: password (+ TOTP) → access and refresh tokens."""

from ledgerline.auth import sessions
from ledgerline.auth.schemas import LoginBody
from ledgerline.http import Endpoint, Response, json_response

api = Endpoint(__name__)


@api
def login(body: LoginBody) -> Response:
    client = sessions.Client.from_request(api.request)
    result = sessions.login(body.email, body.password, body.otp, client, run=api.write)
    return json_response(result.to_json(), headers={"Cache-Control": "no-store"})


handler = api.handler
