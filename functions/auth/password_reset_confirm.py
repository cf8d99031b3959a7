"""POST /v1/auth/password-reset/confirm: set a new password; every session ends."""

from ledgerline import errors
from ledgerline.auth import failures, resets
from ledgerline.auth.schemas import ResetConfirmBody
from ledgerline.http import Endpoint, Response

api = Endpoint(__name__)


@api
def password_reset_confirm(body: ResetConfirmBody) -> Response:
    request = api.request
    # Guessing reset tokens is guessing credentials: counted per IP like them.
    failures.counted(
        request.ip,
        lambda: resets.confirm_reset(body.token, body.new_password, request.actor, run=api.write),
        refusals=(errors.BadRequest,),
    )
    return Response(status_code=204)


handler = api.handler
