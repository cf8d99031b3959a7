"""The second-factor rule for privileged roles, decided from the CURRENT role.

Administrators and auditors reach every user's money and data, so a login that did not
prove a second factor (``amr`` without ``otp``) gives them the enrolment routes only.
The rule is applied on every request from the role the database holds now, and at login
and refresh, never remembered from when a token was issued: a user promoted while
signed in gets no more reach than a fresh login would have given.
"""

from __future__ import annotations

from collections.abc import Iterable

PRIVILEGED_ROLES = frozenset({"admin", "auditor"})
SCOPE_OTP_ENROLMENT = "otp_enrolment"  # the ``scope`` of such a login's tokens and session


def enrolment_only(role: str, amr: Iterable[str] | None) -> bool:
    return role in PRIVILEGED_ROLES and "otp" not in (amr or ())


def scope(role: str, amr: Iterable[str] | None) -> str | None:
    """The token scope a login of ``role`` proven by ``amr`` gets (None: full access)."""
    return SCOPE_OTP_ENROLMENT if enrolment_only(role, amr) else None
