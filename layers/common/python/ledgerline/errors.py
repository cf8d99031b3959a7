"""Domain errors: each carries its HTTP status and a stable machine code (see API.md).

Domain code raises these; the HTTP layer turns any of them into one problem+json
response in one place. Messages say what to do, never what went wrong inside.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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


def _error(name: str, status: int, code: str, title: str) -> type[DomainError]:
    return type(name, (DomainError,), {"status": status, "code": code, "title": title})


ValidationFailed = _error("ValidationFailed", 422, "validation_error", "Request is not valid")
BadRequest = _error("BadRequest", 400, "bad_request", "Bad request")
Unauthorized = _error("Unauthorized", 401, "unauthorized", "Authentication required")
OtpRequired = _error("OtpRequired", 401, "otp_required", "A one-time password is required")
Forbidden = _error("Forbidden", 403, "forbidden", "Not allowed")
NotFound = _error("NotFound", 404, "not_found", "Not found")
MethodNotAllowed = _error("MethodNotAllowed", 405, "method_not_allowed", "Method not allowed")
Conflict = _error("Conflict", 409, "conflict", "Conflict")
InsufficientFunds = _error("InsufficientFunds", 409, "insufficient_funds", "Insufficient funds")
InvalidStateTransition = _error("InvalidStateTransition", 409, "invalid_state_transition", "Invalid state transition")
IdempotencyKeyRequired = _error("IdempotencyKeyRequired", 400, "idempotency_key_required", "Idempotency-Key required")
IdempotencyKeyInvalid = _error("IdempotencyKeyInvalid", 400, "idempotency_key_invalid", "Idempotency-Key invalid")
IdempotencyKeyReused = _error("IdempotencyKeyReused", 422, "idempotency_key_reused", "Idempotency-Key reused")
IdempotencyKeyInProgress = _error(
    "IdempotencyKeyInProgress", 409, "idempotency_key_in_progress", "Request with this key in progress"
)
PayloadTooLarge = _error("PayloadTooLarge", 413, "payload_too_large", "Payload too large")
AccountLocked = _error("AccountLocked", 423, "account_locked", "Account locked")
InternalError = _error("InternalError", 500, "internal_error", "Internal error")


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int):
        super().__init__(detail, headers={"Retry-After": str(max(1, int(retry_after)))})
        self.retry_after = retry_after
