"""GET /v1/me: the caller's profile."""

from ledgerline.auth import users
from ledgerline.http import Endpoint, Response, json_response

api = Endpoint(__name__)


@api
def get_me() -> Response:
    principal = api.request.require_principal()
    return json_response(api.read(lambda cur: users.get_user(cur, principal.id)).to_json())


handler = api.handler
