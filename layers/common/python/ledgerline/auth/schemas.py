"""Request bodies of the identity routes (validated by the Endpoint, 422 on mismatch)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class RegisterBody(_Body):
    email: str = Field(max_length=254)
    password: str = Field(max_length=1024)
    full_name: str = Field(max_length=200)
    phone: str | None = Field(default=None, max_length=32)


class LoginBody(_Body):
    email: str = Field(max_length=254)
    password: str = Field(max_length=1024)
    otp: str | None = Field(default=None, max_length=32)


class RefreshBody(_Body):
    refresh_token: str = Field(max_length=200)


class OtpBody(_Body):
    otp: str = Field(max_length=32)


class ResetRequestBody(_Body):
    email: str = Field(max_length=254)


class ResetConfirmBody(_Body):
    token: str = Field(max_length=200)
    new_password: str = Field(max_length=1024)


class VerifyEmailBody(_Body):
    token: str = Field(max_length=200)


class UserUpdateBody(_Body):
    role: Literal["user", "merchant", "admin", "auditor"] | None = None
    status: Literal["active", "suspended"] | None = None


class ApiKeyBody(_Body):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] = Field(min_length=1, max_length=20)
