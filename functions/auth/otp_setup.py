"""POST /v1/auth/otp/setup: start TOTP enrolment (secret and recovery codes, shown once)."""

from ledgerline.auth import otp, users
from ledgerline.auth.model import OtpEnrolment
from ledgerline.db.tx import Cursor
from ledgerline.http import Endpoint, Response, json_response

api = Endpoint(__name__)


@api
def otp_setup() -> Response:
    request = api.request
    principal = request.require_principal()

    def work(cur: Cursor) -> OtpEnrolment:
        me = users.get_user(cur, principal.id)
        return otp.setup(cur, principal.id, me.email, request.actor)

    return json_response(api.write(work).to_json(), headers={"Cache-Control": "no-store"})


handler = api.handler
