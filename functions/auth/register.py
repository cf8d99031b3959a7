"""POST /v1/auth/register: self-service sign-up (role ``user``)."""

from ledgerline.auth import users
from ledgerline.auth.schemas import RegisterBody
from ledgerline.http import Endpoint, Response, json_response

api = Endpoint(__name__)


@api
def register(body: RegisterBody) -> Response:
    actor = api.request.actor
    user = api.write(
        lambda cur: users.register(
            cur, email=body.email, password=body.password, full_name=body.full_name, phone=body.phone, actor=actor
        )
    )
    return json_response(user.to_json(), 201)


handler = api.handler
