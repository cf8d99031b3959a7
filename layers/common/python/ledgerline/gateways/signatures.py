"""Webhook signatures of each provider: one implementation, used by the adapters to verify
and by the local fake gateway to sign (../shared/GATEWAYS.md §1.6, §2.6, §3.6).

Every comparison is constant-time (``hmac.compare_digest``), and every signature is taken
over the raw body bytes as received: a re-serialised body would not hash the same.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping

from ledgerline.gateways.base import SignatureInvalid

PAYSTACK_HEADER = "x-paystack-signature"
STRIPE_HEADER = "Stripe-Signature"
FLUTTERWAVE_HASH_HEADER = "verif-hash"  # v3: the dashboard's secret hash, sent unchanged
FLUTTERWAVE_SIGNATURE_HEADER = "flutterwave-signature"  # base64 HMAC-SHA256 of the body
STRIPE_TOLERANCE_SECONDS = 300

# Flutterwave's two schemes, by the names settings use (LEDGERLINE_FLUTTERWAVE_WEBHOOK_SCHEMES).
FLUTTERWAVE_SCHEMES = ("verif-hash", "signature")


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value, whatever the case of its name (API Gateway lower-cases them)."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


# --------------------------------------------------------------------------- Paystack


def paystack_signature(body: bytes, secret_key: str) -> str:
    """Lowercase hex HMAC-SHA512 of the body, keyed with the secret API key."""
    return hmac.new(secret_key.encode(), body, hashlib.sha512).hexdigest()


def verify_paystack(headers: Mapping[str, str], body: bytes, secret_key: str) -> None:
    sent = header(headers, PAYSTACK_HEADER)
    if not sent:
        raise SignatureInvalid(f"missing {PAYSTACK_HEADER}")
    if not _equal(sent.strip().lower(), paystack_signature(body, secret_key)):
        raise SignatureInvalid(f"{PAYSTACK_HEADER} does not match the body")


# --------------------------------------------------------------------------- Stripe


def stripe_v1(body: bytes, secret: str, timestamp: int) -> str:
    """Hex HMAC-SHA256 of ``"{t}.{body}"``, keyed with the whole ``whsec_...`` string."""
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def stripe_signature(body: bytes, secrets: Iterable[str], timestamp: int) -> str:
    """``t=...,v1=...[,v1=...]``: one ``v1`` per secret (two while a secret is rolled)."""
    return ",".join([f"t={timestamp}", *(f"v1={stripe_v1(body, s, timestamp)}" for s in secrets)])


def verify_stripe(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Iterable[str],
    *,
    now: float | None = None,
    tolerance: int = STRIPE_TOLERANCE_SECONDS,
) -> None:
    """Accept when any ``v1`` matches any of our ``secrets`` and ``t`` is within
    ``tolerance`` of ``now``, on either side: the SDK refuses only stale timestamps, but a
    far-future one would stretch the replay window just as well."""
    sent = header(headers, STRIPE_HEADER)
    if not sent:
        raise SignatureInvalid(f"missing {STRIPE_HEADER}")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in sent.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureInvalid(f"{STRIPE_HEADER} has a malformed timestamp") from None
        elif key == "v1":
            candidates.append(value.strip().lower())  # v0 and unknown schemes are ignored
    if timestamp is None or not candidates:
        raise SignatureInvalid(f"{STRIPE_HEADER} needs t= and at least one v1=")
    now = time.time() if now is None else now
    if timestamp < now - tolerance:
        raise SignatureInvalid(f"{STRIPE_HEADER} timestamp is older than {tolerance}s")
    if timestamp > now + tolerance:
        raise SignatureInvalid(f"{STRIPE_HEADER} timestamp is more than {tolerance}s in the future")
    expected = [stripe_v1(body, s, timestamp) for s in secrets if s]
    # Every pair is compared (no early exit), so timing says nothing about which matched.
    matched = False
    for sig in candidates:
        for want in expected:
            matched |= _equal(sig, want)
    if not matched:
        raise SignatureInvalid(f"no v1 in {STRIPE_HEADER} matches the body")


# --------------------------------------------------------------------------- Flutterwave


def flutterwave_signature(body: bytes, secret_hash: str) -> str:
    """base64 HMAC-SHA256 of the body keyed with the secret hash (``flutterwave-signature``)."""
    return base64.b64encode(hmac.new(secret_hash.encode(), body, hashlib.sha256).digest()).decode()


def verify_flutterwave(
    headers: Mapping[str, str], body: bytes, secret_hash: str, schemes: Iterable[str] = FLUTTERWAVE_SCHEMES
) -> str:
    """Accept either scheme the settings allow; return the one that matched (worth logging:
    which one a dashboard sends is not settled). ``verif-hash`` proves only that the sender
    knows the secret, not that the body is intact: the caller re-queries the transaction."""
    allowed = set(schemes)
    unknown = allowed - set(FLUTTERWAVE_SCHEMES)
    if unknown:
        raise ValueError(f"unknown Flutterwave webhook scheme(s) {sorted(unknown)}; use {FLUTTERWAVE_SCHEMES}")
    present = False
    signature = header(headers, FLUTTERWAVE_SIGNATURE_HEADER)
    if "signature" in allowed and signature:
        present = True
        if _equal(signature.strip(), flutterwave_signature(body, secret_hash)):
            return "signature"
    static = header(headers, FLUTTERWAVE_HASH_HEADER)
    if "verif-hash" in allowed and static:
        present = True
        if _equal(static, secret_hash):
            return "verif-hash"
    if not present:
        names = [FLUTTERWAVE_SIGNATURE_HEADER if s == "signature" else FLUTTERWAVE_HASH_HEADER for s in sorted(allowed)]
        raise SignatureInvalid(f"missing {' or '.join(names)}")
    raise SignatureInvalid("the Flutterwave webhook signature does not match")


# --------------------------------------------------------------------------- signing


def webhook_headers(
    provider: str,
    body: bytes,
    keys: Mapping[str, str],
    *,
    now: float | None = None,
    flutterwave_scheme: str = "signature",
    extra_stripe_secrets: Iterable[str] = (),
) -> dict[str, str]:
    """The headers a provider sends with ``body``, signed with the keys of the gateways
    secret (what the fake gateway sends and the tests replay)."""
    out = {"Content-Type": "application/json"}
    if provider == "paystack":
        out[PAYSTACK_HEADER] = paystack_signature(body, keys["paystack_secret_key"])
    elif provider == "stripe":
        t = int(time.time() if now is None else now)
        out[STRIPE_HEADER] = stripe_signature(body, [keys["stripe_webhook_secret"], *extra_stripe_secrets], t)
    elif provider == "flutterwave":
        if flutterwave_scheme in ("signature", "both"):
            out[FLUTTERWAVE_SIGNATURE_HEADER] = flutterwave_signature(body, keys["flutterwave_secret_hash"])
        if flutterwave_scheme in ("verif-hash", "both"):
            out[FLUTTERWAVE_HASH_HEADER] = keys["flutterwave_secret_hash"]
        if flutterwave_scheme not in ("signature", "verif-hash", "both"):
            raise ValueError(f"unknown Flutterwave signing scheme {flutterwave_scheme!r}")
    else:
        raise ValueError(f"unknown provider {provider!r}")
    return out
