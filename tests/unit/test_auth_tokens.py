"""Access tokens signed and verified with an in-memory keyring (no KMS, no database)."""

import json
import time
import uuid

import jwt
import pytest

from ledgerline import errors
from ledgerline.auth import keys, tokens


@pytest.fixture
def ring():
    ring = keys.LocalKeyring.generate(2)
    previous = keys.use_keyring(ring)
    yield ring
    keys.use_keyring(previous)


def test_an_issued_token_carries_every_required_claim_and_verifies(ring):
    user = uuid.uuid4()
    token, expires_in = tokens.issue_access_token(user, "merchant", session_id=uuid.uuid4())

    claims = tokens.verify_access_token(token)
    header = jwt.get_unverified_header(token)

    assert expires_in == 900
    assert header == {"alg": "RS256", "typ": "at+jwt", "kid": ring.signing_key().kid}
    assert claims["sub"] == str(user) and claims["role"] == "merchant" and claims["typ"] == "access"
    assert claims["exp"] - claims["iat"] == 900 and claims["nbf"] == claims["iat"]
    assert set(claims) >= {"iss", "aud", "iat", "nbf", "exp", "jti", "sid", "amr"}


def test_the_kid_is_the_rfc7638_thumbprint_of_the_public_key(ring):
    # RFC 7638 section 3.1's example key and thumbprint.
    jwk = {
        "kty": "RSA",
        "e": "AQAB",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCi"
        "FV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb"
        "9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls"
        "1jF44-csFCur-kEgU8awapJzKnqDKgw",
    }

    assert keys.thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_tokens_signed_by_a_previous_key_still_verify(ring):
    old = ring.public_keys()[1]
    signing_input = ".".join(
        keys.b64url(json.dumps(part).encode())
        for part in (
            {"alg": "RS256", "typ": "at+jwt", "kid": old.kid},
            _claims(),
        )
    )
    token = signing_input + "." + keys.b64url(ring.sign(old, signing_input.encode()))

    assert tokens.verify_access_token(token)["sub"]
    assert {k["kid"] for k in keys.jwks()["keys"]} == {k.kid for k in ring.public_keys()}


def _claims(**over):
    from ledgerline.config import settings

    now = int(time.time())
    claims = {
        "iss": settings().jwt_issuer, "aud": settings().jwt_audience, "sub": str(uuid.uuid4()), "role": "user",
        "iat": now, "nbf": now, "exp": now + 900, "jti": str(uuid.uuid4()), "typ": "access",
    }  # fmt: skip
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not None}


def _signed(ring, claims, header=None):
    key = ring.signing_key()
    head = {"alg": "RS256", "typ": "at+jwt", "kid": key.kid, **(header or {})}
    return jwt.encode(claims, ring.private_key(0), algorithm="RS256", headers=head)


@pytest.mark.parametrize(
    "claims",
    [
        # Times are offsets from when the test runs, not from collection: the suite runs
        # longer than ten minutes, and a "not yet valid" fixed at collection had become valid.
        {"exp": -60, "iat": -900},
        {"nbf": 600},
        {"aud": "someone-else"},
        {"iss": "https://evil.example"},
        {"typ": "refresh"},
        {"jti": None},
        {"sub": "not-a-uuid"},
        {"exp": 86400},  # longer-lived than anything we issue
    ],
    ids=["expired", "not-yet-valid", "wrong-aud", "wrong-iss", "wrong-typ", "no-jti", "bad-sub", "too-long"],
)
def test_a_properly_signed_token_with_a_bad_claim_is_refused(ring, claims):
    now = int(time.time())
    token = _signed(ring, _claims(**{k: now + v if k in ("exp", "iat", "nbf") else v for k, v in claims.items()}))

    with pytest.raises(errors.Unauthorized):
        tokens.verify_access_token(token)


def test_the_control_token_of_those_cases_is_accepted(ring):
    assert tokens.verify_access_token(_signed(ring, _claims()))["typ"] == "access"


def test_a_header_typ_other_than_at_jwt_is_refused(ring):
    with pytest.raises(errors.Unauthorized):
        tokens.verify_access_token(_signed(ring, _claims(), {"typ": "JWT"}))


def test_expiry_is_checked_at_the_edge_with_a_fixed_clock(ring):
    token, _ = tokens.issue_access_token(uuid.uuid4(), "user", now=1_000_000)

    assert tokens.verify_access_token(token, now=1_000_000 + 899)
    with pytest.raises(errors.Unauthorized, match="expired"):
        tokens.verify_access_token(token, now=1_000_000 + 900 + tokens.LEEWAY_SECONDS)
    with pytest.raises(errors.Unauthorized, match="not valid yet"):
        tokens.verify_access_token(token, now=1_000_000 - 60)


@pytest.mark.parametrize("garbage", ["", "a.b", "a.b.c", "x" * 9000, "....", "eyJ.eyJ.sig"])
def test_garbage_is_refused_without_an_exception_of_another_kind(ring, garbage):
    with pytest.raises(errors.Unauthorized):
        tokens.verify_access_token(garbage)


class FakeKms:
    """A KMS stand-in over local keys: GetPublicKey and Sign, as boto3 answers them."""

    def __init__(self, ring, alias_target=0):
        self.ring = ring
        self.alias_target = alias_target
        self.calls = []

    def get_public_key(self, KeyId):
        from cryptography.hazmat.primitives import serialization

        self.calls.append(("get_public_key", KeyId))
        index = self.alias_target if KeyId == "alias/jwt" else int(KeyId.rsplit("-", 1)[1])
        der = self.ring.public_keys()[index].key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return {"KeyId": f"arn:key-{index}", "PublicKey": der, "SigningAlgorithms": ["RSASSA_PKCS1_V1_5_SHA_256"]}

    def sign(self, KeyId, Message, MessageType, SigningAlgorithm):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        assert MessageType == "RAW" and SigningAlgorithm == "RSASSA_PKCS1_V1_5_SHA_256"
        index = int(KeyId.rsplit("-", 1)[1])
        signature = self.ring.private_key(index).sign(Message, padding.PKCS1v15(), hashes.SHA256())
        return {"Signature": signature}


def test_rotation_keeps_the_old_key_verifiable_until_it_is_dropped_from_the_list():
    local = keys.LocalKeyring.generate(2)
    kms = FakeKms(local, alias_target=0)
    config = {"ids": ("alias/jwt", [])}
    ring = keys.KmsKeyring(lambda: config["ids"], client=lambda: kms)
    previous = keys.use_keyring(ring)
    try:
        old_token, _ = tokens.issue_access_token(uuid.uuid4(), "user")
        # Rotate: the old key joins the previous list, the alias moves to the new key.
        config["ids"] = ("alias/jwt", ["arn:key-0"])
        kms.alias_target = 1
        ring._resolved.clear()  # past RESOLVE_TTL
        new_token, _ = tokens.issue_access_token(uuid.uuid4(), "user")

        assert jwt.get_unverified_header(new_token)["kid"] != jwt.get_unverified_header(old_token)["kid"]
        assert tokens.verify_access_token(old_token) and tokens.verify_access_token(new_token)
        assert len(keys.jwks()["keys"]) == 2

        config["ids"] = ("alias/jwt", [])  # the old key is retired
        with pytest.raises(errors.Unauthorized):
            tokens.verify_access_token(old_token)
        assert tokens.verify_access_token(new_token)
    finally:
        keys.use_keyring(previous)


def test_unknown_kids_cannot_make_the_verifier_hammer_kms():
    local = keys.LocalKeyring.generate(1)
    kms = FakeKms(local)
    ring = keys.KmsKeyring(lambda: ("alias/jwt", []), client=lambda: kms)

    assert ring.verification_key("nope-1") is None
    calls = len(kms.calls)
    for i in range(20):
        assert ring.verification_key(f"nope-{i}") is None

    assert len(kms.calls) == calls
