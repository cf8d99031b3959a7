"""POST /v1/auth/otp/setup: start TOTP enrolment (secret and recovery codes, shown once)."""

from ledgerline.auth import otp, users
from ledgerline.http import Endpoint, json_response

api = Endpoint(__name__)


@api
def otp_setup():
    request = api.request
    principal = request.require_principal()

    def work(cur):
        me = users.get_user(cur, principal.id)
        return otp.setup(cur, principal.id, me["email"], request.actor)

    return json_response(api.write(work), headers={"Cache-Control": "no-store"})


handler = api.handler
