"""Identity's values, and their JSON shapes in the API (docs/api.md).

Like the ledger's (``ledgerline.ledger.model``): frozen dataclasses with typed fields,
``to_json()`` giving the API's shape, and pages returned as ``(items, next_cursor)``.
Secrets a result carries once (tokens, an API key, a TOTP secret, recovery codes) are
kept out of ``repr`` so a logged or failed-assertion value does not show them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID


@dataclass(frozen=True)
class User:
    """A user as the API shows one: never the password hash, the phone masked."""

    id: UUID
    email: str
    full_name: str
    role: str
    status: str
    phone_last4: str | None
    created_at: datetime
    otp_enabled: bool | None = None  # known when read with the profile (``users.get_user``)

    @property
    def phone(self) -> str | None:
        return f"****{self.phone_last4}" if self.phone_last4 else None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> User:
        return cls(
            id=row["id"],
            email=row["email"],
            full_name=row["full_name"],
            role=row["role"],
            status=row["status"],
            phone_last4=row.get("phone_last4"),
            created_at=row["created_at"],
            otp_enabled=bool(row["otp_enabled"]) if "otp_enabled" in row else None,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "email": self.email,
            "full_name": self.full_name,
            "role": self.role,
            "status": self.status,
            "phone": self.phone,
            "created_at": self.created_at,
        }
        if self.otp_enabled is not None:
            out["otp_enabled"] = self.otp_enabled
        return out


@dataclass(frozen=True)
class TokenPair:
    """An access token and the refresh token that renews it (login, refresh)."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: int  # seconds the access token lives
    token_type: str = "Bearer"  # noqa: S105 - the OAuth 2.0 token type, not a secret

    def to_json(self) -> dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
        }


@dataclass(frozen=True)
class StartedSession:
    """A session just opened for a proven login, and its first token pair."""

    session_id: UUID
    scope: str | None  # ``second_factor.SCOPE_OTP_ENROLMENT`` or None (full access)
    tokens: TokenPair

    @property
    def access_token(self) -> str:
        return self.tokens.access_token

    def to_json(self) -> dict[str, Any]:
        return {**self.tokens.to_json(), "session_id": self.session_id, "scope": self.scope}


@dataclass(frozen=True)
class Session:
    """One of the caller's open sessions (a device), as ``GET /v1/me/sessions`` lists it."""

    id: UUID
    device: str | None
    ip: str | None
    country: str | None
    city: str | None
    created_at: datetime
    last_seen_at: datetime | None
    current: bool  # the session of the access token that asked

    @classmethod
    def from_row(cls, row: dict[str, Any], *, current: bool) -> Session:
        return cls(
            id=row["id"],
            device=row["device"],
            ip=row["ip"],
            country=row["country"],
            city=row["city"],
            created_at=row["created_at"],
            last_seen_at=row["last_seen_at"],
            current=current,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "device": self.device,
            "ip": self.ip,
            "country": self.country,
            "city": self.city,
            "created_at": self.created_at,
            "last_seen_at": self.last_seen_at,
            "current": self.current,
        }


@dataclass(frozen=True)
class ApiKey:
    """An API key as lists show it: its public prefix, never the secret."""

    id: UUID
    name: str
    prefix: str  # ``llk_<8 hex>``
    scopes: tuple[str, ...]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "scopes": list(self.scopes),
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
            "revoked_at": self.revoked_at,
        }


@dataclass(frozen=True)
class NewApiKey(ApiKey):
    """A key just created: the only time its secret (``key``) is shown."""

    key: str = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "key": self.key}


@dataclass(frozen=True)
class OtpEnrolment:
    """A TOTP enrolment just started: the secret and recovery codes, shown once."""

    secret: str = field(repr=False)
    otpauth_uri: str = field(repr=False)
    recovery_codes: tuple[str, ...] = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"secret": self.secret, "otpauth_uri": self.otpauth_uri, "recovery_codes": list(self.recovery_codes)}
