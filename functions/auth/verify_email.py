"""POST /v1/auth/verify-email: prove the address with the token a registration mailed."""

from ledgerline import errors
from ledgerline.auth import failures, verification
from ledgerline.auth.schemas import VerifyEmailBody
from ledgerline.http import Endpoint, Response

api = Endpoint(__name__)


@api
def verify_email(body: VerifyEmailBody) -> Response:
    request = api.request
    # Guessing verification tokens is guessing credentials: counted per IP like them.
    failures.counted(
        request.ip,
        lambda: verification.verify(body.token, request.actor, run=api.write),
        refusals=(errors.BadRequest,),
    )
    return Response(status_code=204)


handler = api.handler
