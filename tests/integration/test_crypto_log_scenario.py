"""A full identity scenario over HTTP, then a key rotation: the logs hold no sensitive
plaintext (grepped), the database holds none either, and everything still works after.

Runs the real local gateway and handlers; every log line of the process goes through the
service logger's handler, which the test points at a buffer at DEBUG level.
"""

from __future__ import annotations

import io
import logging
import time
import uuid

import pyotp
import pytest
import requests

from ledgerline.crypto import blind, fields
from tests.registration import poster, register_and_verify


@pytest.fixture
def captured_logs(aws_endpoint, database_url):
    from ledgerline.observability import logger

    fields.reset()
    blind.configure(None)
    buffer = io.StringIO()
    handler = logger.logger_handler
    previous_stream = handler.setStream(buffer)
    previous_level = logger.log_level
    logger.setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        logger.setLevel(previous_level)
        handler.setStream(previous_stream)
        fields.reset()


@pytest.fixture
def gateway(captured_logs):
    from ledgerline.local.gateway import LocalGateway

    gw = LocalGateway(port=0).start()
    yield gw.url
    gw.stop()


def test_logs_and_tables_of_a_full_scenario_hold_no_sensitive_plaintext(gateway, captured_logs, owner_conn):
    http = requests.Session()
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    password = "Tr0ub4dor&3-horse-battery"
    phone = "+2348031234567"

    # Sign up with a phone number, log in, enrol TOTP, log in with it.
    register_and_verify(
        poster(gateway), {"email": email, "password": password, "full_name": "Ada Obi", "phone": "+234 803 123 4567"}
    )
    with owner_conn.cursor() as cur:
        cur.execute("SELECT id::text FROM users WHERE email = %s", (email,))
        (user_id,) = cur.fetchone()
    assert (
        http.post(f"{gateway}/v1/auth/login", json={"email": email, "password": "wrong-" + password}).status_code == 401
    )
    r = http.post(f"{gateway}/v1/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    tokens = r.json()
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    r = http.get(f"{gateway}/v1/me", headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["phone"] == "****4567"  # responses show the masked form only
    r = http.post(f"{gateway}/v1/auth/otp/setup", headers=auth)
    assert r.status_code == 200, r.text
    enrolment = r.json()
    totp = pyotp.TOTP(enrolment["secret"])
    r = http.post(f"{gateway}/v1/auth/otp/verify", headers=auth, json={"otp": totp.at(time.time() - 30)})
    assert r.status_code == 200, r.text
    r = http.post(f"{gateway}/v1/auth/login", json={"email": email, "password": password, "otp": totp.now()})
    assert r.status_code == 200, r.text
    # A request that fails validation, carrying sensitive values in the body.
    r = http.post(
        f"{gateway}/v1/auth/register",
        json={"email": "not-an-email", "password": password, "full_name": "X", "phone": phone, "pin": "4321"},
    )
    assert r.status_code in (400, 422)

    # The raw rows: neither the phone number nor the TOTP secret is readable.
    with owner_conn.cursor() as cur:
        cur.execute("SELECT row_to_json(u)::text FROM users u WHERE id = %s", (user_id,))
        (user_row,) = cur.fetchone()
        cur.execute(
            "SELECT row_to_json(o)::text, secret_encrypted FROM otp_credentials o WHERE user_id = %s", (user_id,)
        )
        otp_row, secret_encrypted = cur.fetchone()
    assert secret_encrypted
    for plain in (phone, phone[1:], "8031234567", enrolment["secret"], password):
        assert plain not in user_row + otp_row
        assert plain.encode().hex() not in user_row + otp_row

    # Rotate every registered column; 2FA login and the phone still work afterwards.
    from ledgerline.crypto import rotation
    from ledgerline.db import transaction

    report = rotation.rotate(batch_size=50, settle_seconds=0)
    assert report.status == "completed"
    assert report.columns["users.phone_ciphertext"].done
    assert report.columns["otp_credentials.secret"].done
    # A code is used once: the next step's code (inside the accepted window) proves the
    # re-encrypted TOTP secret still opens.
    next_code = totp.at(time.time() + 30)
    r = http.post(f"{gateway}/v1/auth/login", json={"email": email, "password": password, "otp": next_code})
    assert r.status_code == 200, r.text
    from ledgerline.auth import users

    assert transaction(lambda cur: users.phone_of(cur, uuid.UUID(user_id))) == phone

    logs = captured_logs.getvalue()
    assert "/v1/auth/login" in logs, "the scenario's requests were not logged: the grep would prove nothing"
    sensitive = [
        password,
        phone,
        phone[1:],
        "803 123 4567",
        "8031234567",
        enrolment["secret"],
        *enrolment["recovery_codes"],
        tokens["access_token"],
        tokens["refresh_token"],
        "4321",
    ]
    for value in sensitive:
        assert value not in logs, f"{value[:12]!r}… reached the logs"
