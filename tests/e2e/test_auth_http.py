"""Identity over HTTP through the local gateway: the token attack matrix, revocation,
suspension, refresh-token reuse, 2FA for admins, lockout and 429s."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid

import pyotp
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ledgerline.auth import keys, throttle
from ledgerline.config import settings
from tests.registration import register_and_verify

PASSWORD = "correct horse battery staple 9"


def b64(data: bytes) -> str:
    return keys.b64url(data)


def segment(value) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def claims_for(user_id, **over):
    """Claims of a real session of the user (every access token names its session)."""
    from ledgerline.auth import sessions
    from ledgerline.db import transaction

    session_id, _ = transaction(lambda cur: sessions.create_session(cur, user_id, sessions.Client(), amr=["pwd"]))
    now = int(time.time())
    claims = {
        "iss": settings().jwt_issuer, "aud": settings().jwt_audience, "sub": str(user_id), "role": "user",
        "iat": now, "nbf": now, "exp": now + 600, "jti": str(uuid.uuid4()), "typ": "access",
        "sid": str(session_id), "amr": ["pwd"],
    }  # fmt: skip
    claims.update(over)
    return claims


def kms_signed(claims, header=None) -> str:
    """A token signed by the real (KMS stand-in) key, with whatever claims and header."""
    ring = keys.keyring()
    key = ring.signing_key()
    head = {"alg": "RS256", "typ": "at+jwt", "kid": key.kid, **(header or {})}
    signing_input = f"{segment(head)}.{segment(claims)}"
    return f"{signing_input}.{b64(ring.sign(key, signing_input.encode()))}"


def locally_signed(claims, header=None) -> str:
    """Signed by an attacker's own RSA key (RS256, correct in form)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    local = keys.LocalKeyring([private])
    key = local.signing_key()
    head = {"alg": "RS256", "typ": "at+jwt", "kid": key.kid, **(header or {})}
    signing_input = f"{segment(head)}.{segment(claims)}"
    return f"{signing_input}.{b64(local.sign(key, signing_input.encode()))}"


def hs256_with_public_key(claims) -> str:
    key = keys.keyring().signing_key()
    pem = key.key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = f"{segment({'alg': 'HS256', 'typ': 'at+jwt', 'kid': key.kid})}.{segment(claims)}"
    return f"{signing_input}.{b64(hmac.new(pem, signing_input.encode(), hashlib.sha256).digest())}"


def alg_none(claims) -> str:
    return f"{segment({'alg': 'none', 'typ': 'at+jwt'})}.{segment(claims)}."


def tampered(user_id) -> str:
    header, _, signature = kms_signed(claims_for(user_id)).split(".")
    return f"{header}.{segment(claims_for(user_id, role='admin'))}.{signature}"


def login(client, email, password=PASSWORD, otp=None):
    body = {"email": email, "password": password}
    if otp:
        body["otp"] = otp
    return client.post("/v1/auth/login", json=body)


# -- the forged-token matrix ----------------------------------------------------------------


ATTACKS = {
    "alg-none": lambda uid: alg_none(claims_for(uid)),
    "hs256-signed-with-the-public-key": lambda uid: hs256_with_public_key(claims_for(uid)),
    "expired": lambda uid: kms_signed(claims_for(uid, iat=int(time.time()) - 1000, exp=int(time.time()) - 100)),
    "not-yet-valid": lambda uid: kms_signed(claims_for(uid, nbf=int(time.time()) + 300)),
    "wrong-audience": lambda uid: kms_signed(claims_for(uid, aud="another-api")),
    "wrong-issuer": lambda uid: kms_signed(claims_for(uid, iss="https://issuer.example")),
    "wrong-typ-claim": lambda uid: kms_signed(claims_for(uid, typ="refresh")),
    "wrong-typ-header": lambda uid: kms_signed(claims_for(uid), {"typ": "JWT"}),
    "tampered-payload": tampered,
    "unknown-kid": lambda uid: locally_signed(claims_for(uid)),
    "unknown-kid-with-jku": lambda uid: locally_signed(claims_for(uid), {"jku": "http://127.0.0.1:9/jwks.json"}),
    "real-kid-wrong-key": lambda uid: locally_signed(claims_for(uid), {"kid": keys.keyring().signing_key().kid}),
    "x5u-header": lambda uid: locally_signed(claims_for(uid), {"x5u": "http://127.0.0.1:9/cert.pem"}),
    "no-signature": lambda uid: kms_signed(claims_for(uid)).rsplit(".", 1)[0] + ".",
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_forged_or_invalid_token_is_refused_with_401(client, make_user, attack):
    user = make_user()

    response = client.get("/v1/me", token=ATTACKS[attack](user["id"]))

    assert response.status_code == 401, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "unauthorized"


def test_the_control_token_built_like_the_attacks_is_accepted(client, make_user):
    user = make_user()

    response = client.get("/v1/me", token=kms_signed(claims_for(user["id"])))

    assert response.status_code == 200 and response.json()["id"] == str(user["id"])


def test_no_token_and_a_malformed_header_are_401(client):
    assert client.get("/v1/me").status_code == 401
    assert client.get("/v1/me", headers={"Authorization": "Basic dXNlcjpwYXNz"}).status_code == 401


def test_the_jwks_publishes_the_signing_key_and_verifies_issued_tokens(client, make_user):
    import jwt

    user = make_user()
    jwks = client.get("/.well-known/jwks.json").json()
    token = user["token"]
    kid = jwt.get_unverified_header(token)["kid"]
    [jwk] = [k for k in jwks["keys"] if k["kid"] == kid]

    public = jwt.PyJWK(jwk).key
    assert jwk["alg"] == "RS256" and jwk["use"] == "sig" and jwk["kty"] == "RSA"
    assert jwt.decode(token, public, algorithms=["RS256"], audience=settings().jwt_audience)["sub"] == str(user["id"])
    discovery = client.get("/.well-known/openid-configuration").json()
    assert discovery["jwks_uri"].endswith("/.well-known/jwks.json")


# -- revocation, suspension, roles -----------------------------------------------------------------


def test_register_login_refresh_and_logout_over_http(client):
    email = f"Ada-{uuid.uuid4().hex[:8]}@Example.test"
    body = {"email": email, "password": PASSWORD, "full_name": "Ada L", "phone": "+2348031234567"}
    register_and_verify(client.post, body)

    tokens_ = login(client, email.lower()).json()
    me = client.get("/v1/me", token=tokens_["access_token"]).json()
    assert me["email"] == email.lower() and me["role"] == "user"
    assert me["phone"] == "****4567" and me["otp_enabled"] is False

    rotated = client.post("/v1/auth/refresh", json={"refresh_token": tokens_["refresh_token"]})
    assert rotated.status_code == 200 and rotated.headers["Cache-Control"] == "no-store"
    access = rotated.json()["access_token"]

    assert client.post("/v1/auth/logout", token=access).status_code == 204
    assert client.get("/v1/me", token=access).status_code == 401  # revoked jti
    refused = client.post("/v1/auth/refresh", json={"refresh_token": rotated.json()["refresh_token"]})
    assert refused.status_code == 401  # the family went with it


def test_a_revoked_jti_is_refused(client, make_user):
    user = make_user()
    assert client.post("/v1/auth/logout", token=user["token"]).status_code == 204

    assert client.get("/v1/me", token=user["token"]).status_code == 401


def test_refresh_token_reuse_revokes_the_family(client, make_user, owner_conn):
    user = make_user()
    first = login(client, user["email"]).json()
    second = client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()
    with owner_conn.cursor() as cur:  # later than an honest double-send could be
        cur.execute(
            "UPDATE refresh_tokens SET rotated_at = rotated_at - interval '1 minute' WHERE rotated_at IS NOT NULL"
        )

    reuse = client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})

    assert reuse.status_code == 401 and "already used" in reuse.json()["detail"]
    assert client.post("/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}).status_code == 401
    assert client.get("/v1/me", token=second["access_token"]).status_code == 401


def admin_session(client, make_user):
    """An administrator with 2FA enrolled and a full (OTP-proven) token."""
    admin = make_user("admin")
    setup = client.post("/v1/auth/otp/setup", token=admin["token"]).json()
    totp = pyotp.TOTP(setup["secret"])
    assert client.post("/v1/auth/otp/verify", token=admin["token"], json={"otp": totp.now()}).status_code == 200
    # The enrolment spent this step's code; log in with a recovery code instead of waiting.
    response = login(client, admin["email"], otp=setup["recovery_codes"][0])
    assert response.status_code == 200, response.text
    return {**admin, "token": response.json()["access_token"], "totp": totp}


def test_admins_must_use_2fa_and_until_they_enrol_reach_only_enrolment(client, make_user):
    admin = make_user("admin")
    pending = login(client, admin["email"]).json()["access_token"]

    assert client.get("/v1/admin/users", token=pending).status_code == 403
    assert client.get("/v1/me", token=pending).status_code == 200
    setup = client.post("/v1/auth/otp/setup", token=pending).json()
    wrong = client.post("/v1/auth/otp/verify", token=pending, json={"otp": "12345x"})
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "otp"
    client.post("/v1/auth/otp/verify", token=pending, json={"otp": pyotp.TOTP(setup["secret"]).now()})

    missing = login(client, admin["email"])
    assert missing.status_code == 401 and missing.json()["code"] == "otp_required"
    full = login(client, admin["email"], otp=setup["recovery_codes"][1]).json()["access_token"]
    assert client.get("/v1/admin/users", token=full).status_code == 200


def test_a_suspended_users_token_stops_working_at_once(client, make_user):
    admin = admin_session(client, make_user)
    user = make_user()
    assert client.get("/v1/me", token=user["token"]).status_code == 200

    suspended = client.patch(f"/v1/admin/users/{user['id']}", token=admin["token"], json={"status": "suspended"})

    assert suspended.status_code == 200 and suspended.json()["status"] == "suspended"
    assert client.get("/v1/me", token=user["token"]).status_code == 401
    assert login(client, user["email"]).status_code == 403


def test_non_admins_get_403_on_admin_routes_and_roles_come_from_the_database(client, make_user):
    admin = admin_session(client, make_user)
    user = make_user()
    merchant = make_user("merchant")

    for caller in (user, merchant):
        assert client.get("/v1/admin/users", token=caller["token"]).status_code == 403
        assert (
            client.patch(f"/v1/admin/users/{user['id']}", token=caller["token"], json={"role": "admin"}).status_code
            == 403
        )
    # A token claiming admin for a plain user is not enough: the database says "user".
    assert client.get("/v1/admin/users", token=kms_signed(claims_for(user["id"], role="admin"))).status_code == 403
    promoted = client.patch(f"/v1/admin/users/{user['id']}", token=admin["token"], json={"role": "auditor"})
    assert promoted.json()["role"] == "auditor"
    again = login(client, user["email"]).json()["access_token"]
    assert client.get("/v1/me", token=again).json()["role"] == "auditor"


def test_admin_user_list_is_paginated(client, make_user):
    admin = admin_session(client, make_user)
    for _ in range(3):
        make_user()

    first = client.get("/v1/admin/users?limit=2", token=admin["token"]).json()
    second = client.get(f"/v1/admin/users?limit=2&cursor={first['next_cursor']}", token=admin["token"]).json()

    assert len(first["items"]) == 2 and first["next_cursor"]
    assert not {u["id"] for u in first["items"]} & {u["id"] for u in second["items"]}
    assert client.get("/v1/admin/users?limit=500", token=admin["token"]).status_code == 422


# -- lockout and rate limits -----------------------------------------------------------------------


def test_lockout_after_ten_failures_is_423_even_with_the_right_password(client, make_user, owner_conn):
    user = make_user()
    for attempt in range(throttle.LOCK_AFTER):
        response = login(client, user["email"], password=f"wrong password {attempt}")
        assert response.status_code == 401, (attempt, response.text)
        with owner_conn.cursor() as cur:  # the progressive delay passes
            cur.execute(
                "UPDATE login_throttle SET last_failed_at = last_failed_at - interval '2 minutes' WHERE subject = %s",
                (throttle.login_subject(user["email"]),),
            )

    locked = login(client, user["email"])

    assert locked.status_code == 423 and locked.json()["code"] == "account_locked"
    assert int(locked.headers["Retry-After"]) == throttle.LOCK_SECONDS


def test_a_quick_retry_after_repeated_failures_is_429_with_retry_after(client, make_user, owner_conn):
    user = make_user()
    for attempt in range(throttle.FREE_FAILURES):
        assert login(client, user["email"], password=f"wrong password {attempt}").status_code == 401
    with owner_conn.cursor() as cur:  # three more failures, the last one just now: an 8 s delay runs
        cur.execute(
            "UPDATE login_throttle SET failures = failures + 3, last_failed_at = now() WHERE subject = %s",
            (throttle.login_subject(user["email"]),),
        )

    response = login(client, user["email"])  # the right password, but too soon

    assert response.status_code == 429 and response.json()["code"] == "rate_limited"
    assert 1 <= int(response.headers["Retry-After"]) <= throttle.delay_after(throttle.FREE_FAILURES + 3)


@pytest.fixture
def default_limits(monkeypatch, owner_conn):
    """The seed's limits (the suite runs with them off), with fresh counters."""
    from ledgerline import config

    monkeypatch.setenv("LEDGERLINE_RATE_LIMITS", config.DEFAULT_RATE_LIMITS)
    monkeypatch.setenv("LEDGERLINE_VELOCITY", config.DEFAULT_VELOCITY)
    config.settings.cache_clear()
    with owner_conn.cursor() as cur:
        cur.execute("DELETE FROM rate_limit_buckets")
    yield
    monkeypatch.undo()
    config.settings.cache_clear()
    with owner_conn.cursor() as cur:
        cur.execute("DELETE FROM rate_limit_buckets")


def test_the_sixth_login_in_a_minute_from_one_ip_is_429_with_retry_after(client, default_limits):
    statuses = []
    for i in range(6):
        response = login(client, f"nobody-{i}-{uuid.uuid4().hex[:6]}@example.test")
        statuses.append(response.status_code)

    assert statuses == [401] * 5 + [429]
    # Sliding windows: the 5 weigh fully for the minute, then fade; one more in 60 + 60/5 s.
    assert 1 <= int(response.headers["Retry-After"]) <= 60 + 60 // 5
    assert response.json()["code"] == "rate_limited"


def test_the_fourth_otp_attempt_in_a_minute_is_429(client, make_user, default_limits):
    user = make_user()
    statuses = [client.post("/v1/auth/otp/setup", token=user["token"]).status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]
