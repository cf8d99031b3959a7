"""Signatures of merchant webhooks: Stripe's scheme, so merchants can verify with code they
know. ``Ledgerline-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "{t}.{raw body}">``,
keyed with the endpoint's whole secret (``whsec_…``) as UTF-8.

The HMAC and the checks (constant-time, any ``v1`` may match, a timestamp within the
tolerance) are the gateways' (``ledgerline.gateways.signatures``): one implementation of
the scheme, whether we verify Stripe or merchants verify us.
"""

from __future__ import annotations

import secrets
import time

from ledgerline.gateways import signatures
from ledgerline.gateways.base import SignatureInvalid

HEADER = "Ledgerline-Signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
TOLERANCE_SECONDS = signatures.STRIPE_TOLERANCE_SECONDS

__all__ = ["HEADER", "SignatureInvalid", "header", "new_secret", "verify"]


def new_secret() -> str:
    """A signing secret: 256 random bits, shown to the merchant once."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The ``Ledgerline-Signature`` value for ``body`` sent now (or at ``timestamp``)."""
    return signatures.stripe_signature(body, [secret], int(time.time() if timestamp is None else timestamp))


def verify(value: str, body: bytes, secret: str, *, now: float | None = None) -> None:
    """What a merchant does with a delivery (and what the tests do): SignatureInvalid
    unless ``value`` signs ``body`` with ``secret`` within the tolerance."""
    signatures.verify_stripe({signatures.STRIPE_HEADER: value}, body, [secret], now=now, tolerance=TOLERANCE_SECONDS)
