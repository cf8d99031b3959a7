"""POST /v1/auth/register: self-service sign-up (role ``user``), 202 whatever the address.

A taken address gets the same answer as a free one (no account enumeration); the mail
that follows tells them apart, to the address's owner only (``ledgerline.auth.verification``).
"""

from ledgerline.auth import users
from ledgerline.auth.schemas import RegisterBody
from ledgerline.http import Endpoint, Response, json_response

api = Endpoint(__name__)


@api
def register(body: RegisterBody) -> Response:
    actor = api.request.actor
    api.write(
        lambda cur: users.register(
            cur, email=body.email, password=body.password, full_name=body.full_name, phone=body.phone, actor=actor
        )
    )
    return json_response({"status": "pending_verification"}, 202)


handler = api.handler
