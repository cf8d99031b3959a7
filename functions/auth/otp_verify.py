"""POST /v1/auth/otp/verify: confirm TOTP enrolment with a first code."""

from ledgerline import errors
from ledgerline.auth import events, otp
from ledgerline.auth.schemas import OtpBody
from ledgerline.http import Endpoint, Response, json_response

api = Endpoint(__name__)


@api
def otp_verify(body: OtpBody) -> Response:
    request = api.request
    principal = request.require_principal()
    enabled = api.write(lambda cur: otp.verify_enrolment(cur, principal.id, body.otp, request.actor))
    if not enabled:
        events.record_refusal(
            request.actor, events.OTP_FAILED, "user", principal.id, metadata={"during": "enrolment"}, run=api.write
        )
        raise errors.ValidationFailed(
            "the code is not valid; enter the current 6-digit code from the authenticator app",
            errors=[errors.FieldError("otp", "not the current code")],
        )
    return json_response({"otp_enabled": True})


handler = api.handler
