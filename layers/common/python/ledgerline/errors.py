"""Domain errors: each carries its HTTP status and a stable machine code (see docs/api.md).

Domain code raises these; the HTTP layer turns any of them into one problem+json
response in one place. Messages say what to do, never what went wrong inside.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PROBLEM_JSON = "application/problem+json"  # the media type of every error response (RFC 9457)


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str


class DomainError(Exception):
    status = 400
    code = "bad_request"
    title = "Bad request"

    def __init__(self, detail: str, *, errors: list[FieldError] | None = None, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}

    def problem(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"https://docs.ledgerline.dev/problems/{self.code.replace('_', '-')}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if self.errors:
            body["errors"] = [{"field": e.field, "message": e.message} for e in self.errors]
        return body


class ValidationFailed(DomainError):
    status = 422
    code = "validation_error"
    title = "Request is not valid"


class BadRequest(DomainError):
    status = 400
    code = "bad_request"
    title = "Bad request"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"
    title = "Authentication required"


class OtpRequired(DomainError):
    status = 401
    code = "otp_required"
    title = "A one-time password is required"


class SessionIdle(Unauthorized):
    """A session unused longer than the idle limit (PCI DSS 8.2.8): log in again."""

    code = "session_idle"
    title = "Session ended after inactivity"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
    title = "Not allowed"


class NotFound(DomainError):
    status = 404
    code = "not_found"
    title = "Not found"


class MethodNotAllowed(DomainError):
    status = 405
    code = "method_not_allowed"
    title = "Method not allowed"


class Conflict(DomainError):
    status = 409
    code = "conflict"
    title = "Conflict"


class InsufficientFunds(DomainError):
    status = 409
    code = "insufficient_funds"
    title = "Insufficient funds"


class InvalidStateTransition(DomainError):
    status = 409
    code = "invalid_state_transition"
    title = "Invalid state transition"


class IdempotencyKeyRequired(DomainError):
    status = 400
    code = "idempotency_key_required"
    title = "Idempotency-Key required"


class IdempotencyKeyInvalid(DomainError):
    status = 400
    code = "idempotency_key_invalid"
    title = "Idempotency-Key invalid"


class IdempotencyKeyReused(DomainError):
    status = 422
    code = "idempotency_key_reused"
    title = "Idempotency-Key reused"


class IdempotencyKeyInProgress(DomainError):
    status = 409
    code = "idempotency_key_in_progress"
    title = "Request with this key in progress"


class PayloadTooLarge(DomainError):
    status = 413
    code = "payload_too_large"
    title = "Payload too large"


class UnsupportedMediaType(DomainError):
    status = 415
    code = "unsupported_media_type"
    title = "Unsupported media type"


class EmailNotVerified(DomainError):
    status = 403
    code = "email_not_verified"
    title = "E-mail address not verified"


class AccountLocked(DomainError):
    status = 423
    code = "account_locked"
    title = "Account locked"


class InternalError(DomainError):
    status = 500
    code = "internal_error"
    title = "Internal error"


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int):
        super().__init__(detail, headers={"Retry-After": str(max(1, int(retry_after)))})
        self.retry_after = retry_after
