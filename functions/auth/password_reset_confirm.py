"""POST /v1/auth/password-reset/confirm: set a new password; every session ends."""

from ledgerline.auth import resets
from ledgerline.auth.schemas import ResetConfirmBody
from ledgerline.http import Endpoint, Response

api = Endpoint(__name__)


@api
def password_reset_confirm(body: ResetConfirmBody):
    resets.confirm_reset(body.token, body.new_password, api.request.actor)
    return Response(status_code=204)


handler = api.handler
