"""Identity's values render the API's JSON exactly (keys, order, instants), and keep the
secrets they carry once out of ``repr``."""

from datetime import UTC, datetime
from uuid import UUID

from ledgerline import jsonutil
from ledgerline.auth.model import (
    ApiKey,
    NewApiKey,
    OtpEnrolment,
    Session,
    StartedSession,
    TokenPair,
    User,
)

ID = UUID("0190b7a4-1c2d-7e3f-8a4b-5c6d7e8f9a0b")
AT = datetime(2025, 1, 2, 3, 4, 5, 6000, tzinfo=UTC)
ROW = {
    "id": ID,
    "email": "ada@example.test",
    "full_name": "Ada",
    "role": "user",
    "status": "active",
    "phone_last4": "4567",
    "created_at": AT,
    "updated_at": AT,
}


def test_a_user_renders_the_profile_shape_with_the_phone_masked():
    assert jsonutil.dumps(User.from_row(ROW).to_json()) == (
        '{"id":"0190b7a4-1c2d-7e3f-8a4b-5c6d7e8f9a0b","email":"ada@example.test","full_name":"Ada",'
        '"role":"user","status":"active","phone":"****4567","created_at":"2025-01-02T03:04:05.006000Z"}'
    )


def test_otp_enabled_is_shown_only_when_it_was_read():
    without_phone = {**ROW, "phone_last4": None}

    assert "otp_enabled" not in User.from_row(without_phone).to_json()
    profile = User.from_row({**without_phone, "otp_enabled": 0}).to_json()
    assert profile["phone"] is None
    assert list(profile)[-1] == "otp_enabled" and profile["otp_enabled"] is False


def test_token_pairs_render_in_oauth_order_and_hide_their_tokens():
    pair = TokenPair(access_token="eyJ.secret.sig", refresh_token="rt1_secret", expires_in=900)
    started = StartedSession(session_id=ID, scope=None, tokens=pair)

    assert jsonutil.dumps(pair.to_json()) == (
        '{"access_token":"eyJ.secret.sig","refresh_token":"rt1_secret","token_type":"Bearer","expires_in":900}'
    )
    assert list(started.to_json()) == [
        "access_token", "refresh_token", "token_type", "expires_in", "session_id", "scope",
    ]  # fmt: skip
    assert started.access_token == "eyJ.secret.sig"
    assert "secret" not in repr(pair) and "secret" not in repr(started)


def test_a_session_renders_the_devices_list_shape():
    session = Session(id=ID, device="pytest", ip="192.0.2.1", country=None, city=None, created_at=AT,
                      last_seen_at=None, current=True)  # fmt: skip

    assert jsonutil.dumps(session.to_json()) == (
        '{"id":"0190b7a4-1c2d-7e3f-8a4b-5c6d7e8f9a0b","device":"pytest","ip":"192.0.2.1","country":null,'
        '"city":null,"created_at":"2025-01-02T03:04:05.006000Z","last_seen_at":null,"current":true}'
    )


def test_an_api_key_shows_its_secret_only_when_new_and_never_in_repr():
    fields = {"id": ID, "name": "shop", "prefix": "llk_0a1b2c3d", "scopes": ("accounts:read",), "created_at": AT,
              "last_used_at": None, "revoked_at": None}  # fmt: skip
    listed = ApiKey(**fields)
    new = NewApiKey(**fields, key="llk_0a1b2c3d_topsecret")

    assert jsonutil.dumps(listed.to_json()) == (
        '{"id":"0190b7a4-1c2d-7e3f-8a4b-5c6d7e8f9a0b","name":"shop","prefix":"llk_0a1b2c3d",'
        '"scopes":["accounts:read"],"created_at":"2025-01-02T03:04:05.006000Z","last_used_at":null,"revoked_at":null}'
    )
    assert new.to_json() == {**listed.to_json(), "key": "llk_0a1b2c3d_topsecret"}
    assert list(new.to_json())[-1] == "key"
    assert "topsecret" not in repr(new)


def test_an_otp_enrolment_renders_its_shape_and_hides_its_secrets():
    enrolment = OtpEnrolment(secret="JBSWY3DP", otpauth_uri="otpauth://totp/x?secret=JBSWY3DP",
                             recovery_codes=("AAAA-BBBB-CCCC-DDDD",))  # fmt: skip

    assert jsonutil.dumps(enrolment.to_json()) == (
        '{"secret":"JBSWY3DP","otpauth_uri":"otpauth://totp/x?secret=JBSWY3DP","recovery_codes":["AAAA-BBBB-CCCC-DDDD"]}'
    )
    assert "JBSWY3DP" not in repr(enrolment) and "AAAA" not in repr(enrolment)
