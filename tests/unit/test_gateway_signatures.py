"""Webhook signatures of each provider, as the adapters verify them (GATEWAYS.md §1.6,
§2.6, §3.6). The expected values are computed here from the published recipes with
hashlib/hmac directly, not with the module under test."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from ledgerline.gateways import signatures
from ledgerline.gateways.base import SignatureInvalid
from ledgerline.gateways.flutterwave import Flutterwave
from ledgerline.gateways.paystack import Paystack
from ledgerline.gateways.stripe import Stripe

BODY = json.dumps({"event": "charge.success", "data": {"reference": "r-1", "amount": 500000}}).encode()
TAMPERED = BODY.replace(b"500000", b"900000")
NOW = 1_800_000_000

PAYSTACK_KEY = "sk_test_abc"
STRIPE_SECRET = "whsec_current"
STRIPE_OLD = "whsec_previous"
FLW_HASH = "my-secret-hash"


def paystack(key: str = PAYSTACK_KEY) -> Paystack:
    return Paystack(secret_key=key, base_url="http://unused", timeout=1, retries=0)


def stripe(*secrets: str) -> Stripe:
    return Stripe(
        secret_key="sk_test_x",
        webhook_secrets=secrets or (STRIPE_SECRET,),
        base_url="http://unused",
        timeout=1,
        retries=0,
    )


def flutterwave(schemes=signatures.FLUTTERWAVE_SCHEMES, secret_hash: str = FLW_HASH) -> Flutterwave:
    return Flutterwave(
        secret_key="FLWSECK_TEST-x-X",
        secret_hash=secret_hash,
        base_url="http://unused",
        timeout=1,
        retries=0,
        webhook_schemes=schemes,
    )


def stripe_header(t: int, *secrets: str, body: bytes = BODY) -> str:
    sigs = [hmac.new(s.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest() for s in secrets]
    return ",".join([f"t={t}", *(f"v1={s}" for s in sigs)])


# --------------------------------------------------------------------------- Paystack


def test_paystack_accepts_the_hmac_sha512_of_the_raw_body_keyed_with_the_secret_key():
    sig = hmac.new(PAYSTACK_KEY.encode(), BODY, hashlib.sha512).hexdigest()
    paystack().verify_webhook({"X-Paystack-Signature": sig}, BODY)  # header names: any case


def test_paystack_refuses_a_tampered_body_a_wrong_key_and_a_missing_header():
    sig = hmac.new(PAYSTACK_KEY.encode(), BODY, hashlib.sha512).hexdigest()
    with pytest.raises(SignatureInvalid):
        paystack().verify_webhook({"x-paystack-signature": sig}, TAMPERED)
    with pytest.raises(SignatureInvalid):
        paystack("sk_test_other").verify_webhook({"x-paystack-signature": sig}, BODY)
    with pytest.raises(SignatureInvalid, match="missing"):
        paystack().verify_webhook({}, BODY)


def test_paystack_refuses_a_re_serialised_body():
    # The hash is over the bytes received: the same JSON with other spacing does not verify.
    sig = hmac.new(PAYSTACK_KEY.encode(), BODY, hashlib.sha512).hexdigest()
    reserialised = json.dumps(json.loads(BODY), separators=(",", ":")).encode()
    assert reserialised != BODY
    with pytest.raises(SignatureInvalid):
        paystack().verify_webhook({"x-paystack-signature": sig}, reserialised)


# --------------------------------------------------------------------------- Stripe


def test_stripe_accepts_a_fresh_v1_signature_over_t_dot_body():
    stripe().verify_webhook({"Stripe-Signature": stripe_header(NOW - 10, STRIPE_SECRET)}, BODY, now=NOW)


def test_stripe_refuses_a_tampered_body_a_wrong_secret_and_a_missing_header():
    with pytest.raises(SignatureInvalid):
        stripe().verify_webhook({"stripe-signature": stripe_header(NOW, STRIPE_SECRET)}, TAMPERED, now=NOW)
    with pytest.raises(SignatureInvalid):
        stripe().verify_webhook({"stripe-signature": stripe_header(NOW, "whsec_wrong")}, BODY, now=NOW)
    with pytest.raises(SignatureInvalid, match="missing"):
        stripe().verify_webhook({}, BODY, now=NOW)
    with pytest.raises(SignatureInvalid):  # a v0 only (the dummy scheme) is no signature
        header = stripe_header(NOW, STRIPE_SECRET).replace("v1=", "v0=")
        stripe().verify_webhook({"stripe-signature": header}, BODY, now=NOW)


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [(-300, True), (-301, False), (-3600, False), (300, True), (301, False), (86400, False)],
    ids=["300s old", "301s old: stale", "an hour old", "300s ahead", "301s ahead", "a day ahead: far future"],
)
def test_stripe_timestamp_tolerance_is_300_seconds_either_side(offset, accepted):
    headers = {"Stripe-Signature": stripe_header(NOW + offset, STRIPE_SECRET)}
    if accepted:
        stripe().verify_webhook(headers, BODY, now=NOW)
    else:
        with pytest.raises(SignatureInvalid, match=r"older|future"):
            stripe().verify_webhook(headers, BODY, now=NOW)


def test_stripe_accepts_either_of_two_v1_values_while_a_secret_is_rolled():
    two = {"Stripe-Signature": stripe_header(NOW, STRIPE_OLD, STRIPE_SECRET)}
    stripe(STRIPE_SECRET).verify_webhook(two, BODY, now=NOW)  # we already hold only the new one
    stripe(STRIPE_OLD).verify_webhook(two, BODY, now=NOW)  # we still hold only the old one
    # We hold both (secret and secret_previous) and the sender signs with the old one only.
    stripe(STRIPE_SECRET, STRIPE_OLD).verify_webhook(
        {"Stripe-Signature": stripe_header(NOW, STRIPE_OLD)}, BODY, now=NOW
    )
    with pytest.raises(SignatureInvalid):
        stripe("whsec_neither").verify_webhook(two, BODY, now=NOW)


def test_stripe_refuses_a_malformed_header():
    for bad in ("t=abc,v1=00", f"v1={'0' * 64}", f"t={NOW}", "garbage"):
        with pytest.raises(SignatureInvalid):
            stripe().verify_webhook({"Stripe-Signature": bad}, BODY, now=NOW)


# --------------------------------------------------------------------------- Flutterwave


def flw_hmac(body: bytes = BODY, key: str = FLW_HASH) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def test_flutterwave_accepts_the_verif_hash_and_the_hmac_signature():
    flutterwave().verify_webhook({"verif-hash": FLW_HASH}, BODY)
    flutterwave().verify_webhook({"Flutterwave-Signature": flw_hmac()}, BODY)
    assert signatures.verify_flutterwave({"verif-hash": FLW_HASH}, BODY, FLW_HASH) == "verif-hash"
    assert signatures.verify_flutterwave({"flutterwave-signature": flw_hmac()}, BODY, FLW_HASH) == "signature"


def test_flutterwave_hmac_protects_the_body_and_verif_hash_only_the_secret():
    with pytest.raises(SignatureInvalid):
        flutterwave().verify_webhook({"flutterwave-signature": flw_hmac()}, TAMPERED)
    # verif-hash is the secret itself: it cannot tell a tampered body (the consumer re-queries).
    flutterwave().verify_webhook({"verif-hash": FLW_HASH}, TAMPERED)


def test_flutterwave_refuses_a_wrong_secret_and_missing_headers():
    with pytest.raises(SignatureInvalid):
        flutterwave().verify_webhook({"verif-hash": "not-the-hash"}, BODY)
    with pytest.raises(SignatureInvalid):
        flutterwave().verify_webhook({"flutterwave-signature": flw_hmac(key="other")}, BODY)
    with pytest.raises(SignatureInvalid, match="missing"):
        flutterwave().verify_webhook({}, BODY)


def test_flutterwave_accepts_only_the_configured_scheme():
    only_hmac = flutterwave(schemes=("signature",))
    only_hmac.verify_webhook({"flutterwave-signature": flw_hmac()}, BODY)
    with pytest.raises(SignatureInvalid, match="missing"):
        only_hmac.verify_webhook({"verif-hash": FLW_HASH}, BODY)
    only_hash = flutterwave(schemes=("verif-hash",))
    only_hash.verify_webhook({"verif-hash": FLW_HASH}, BODY)
    with pytest.raises(SignatureInvalid, match="missing"):
        only_hash.verify_webhook({"flutterwave-signature": flw_hmac()}, BODY)
    with pytest.raises(ValueError, match="unknown"):
        signatures.verify_flutterwave({"verif-hash": FLW_HASH}, BODY, FLW_HASH, ("md5",))
    with pytest.raises(ValueError, match="md5"):  # a typo in the settings fails when the adapter is made
        flutterwave(schemes=("md5",))
    with pytest.raises(ValueError):
        flutterwave(schemes=())


# --------------------------------------------------------------------------- signing side


@pytest.mark.parametrize("provider", ["paystack", "stripe", "flutterwave"])
def test_what_the_fake_signs_the_adapter_verifies(provider):
    keys = {
        "paystack_secret_key": PAYSTACK_KEY,
        "stripe_webhook_secret": STRIPE_SECRET,
        "flutterwave_secret_hash": FLW_HASH,
    }
    adapter = {"paystack": paystack(), "stripe": stripe(), "flutterwave": flutterwave()}[provider]
    headers = signatures.webhook_headers(provider, BODY, keys, now=NOW)
    adapter.verify_webhook(headers, BODY, now=NOW)
    with pytest.raises(SignatureInvalid):
        adapter.verify_webhook(headers, TAMPERED, now=NOW)
