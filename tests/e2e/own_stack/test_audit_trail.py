"""The audit trail on the whole local stack (`make run`): after a scenario the trail ships
and verifies, still verifies after the stack is stopped and started again (the local
bucket and KMS keys persist under .data/), and an edit in the database then fails it,
naming the record."""

from __future__ import annotations

import time
import uuid

import psycopg2
import pytest
import requests

from tests.e2e.own_stack.stack import LocalStack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _scenario(api: str) -> None:
    """Registrations and logins: audited actions through the HTTP API."""
    for _ in range(3):
        email = f"trail-{uuid.uuid4().hex[:10]}@example.com"
        password = "correct horse battery staple 9"
        r = requests.post(
            f"{api}/v1/auth/register",
            json={"email": email, "password": password, "full_name": "Trail Test"},
            timeout=30,
        )
        assert r.status_code == 202, r.text  # and the login below is refused: not verified (audited)
        requests.post(f"{api}/v1/auth/login", json={"email": email, "password": password}, timeout=30)
        requests.post(f"{api}/v1/auth/login", json={"email": email, "password": "wrong password 123"}, timeout=30)


def _ship_everything(stack: LocalStack) -> None:
    # The stack's own audit-ship job may be shipping too: both take the shipper's lock.
    deadline = time.monotonic() + 120
    while True:
        shipped = stack.cli("audit", "ship")
        assert shipped.returncode == 0, shipped.stderr
        conn = psycopg2.connect(stack.owner_url)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT (SELECT count(*) FROM audit_log) - (SELECT count(*) FROM audit_chain c"
                    " JOIN audit_ship_batches b ON b.first_seq = c.batch WHERE b.shipped_at IS NOT NULL)"
                )
                left = cur.fetchone()[0]
        finally:
            conn.close()
        if left == 0 or time.monotonic() > deadline:
            return
        time.sleep(1)


def test_the_trail_verifies_after_a_scenario_and_after_a_restart_and_an_edit_then_fails():
    stack = LocalStack("audit-trail-test")
    try:
        stack.start()
        _scenario(stack.api)
        _ship_everything(stack)
        first = stack.cli("audit", "verify")
        assert first.returncode == 0, first.stdout + first.stderr
        assert first.stdout.startswith("verified ")
        verified = int(first.stdout.split()[1])
        assert verified >= 9
        stack.stop()

        stack.start()  # `make run` again: the same bucket, the same audit key
        again = stack.cli("audit", "verify")
        assert again.returncode == 0, again.stdout + again.stderr
        assert int(again.stdout.split()[1]) >= verified

        conn = psycopg2.connect(stack.owner_url)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT seq, audit_id FROM audit_chain ORDER BY seq OFFSET 2 LIMIT 1")
                seq, audit_id = cur.fetchone()
                cur.execute("SET session_replication_role = replica")
                cur.execute("UPDATE audit_log SET resource_id = 'tampered' WHERE id = %s", (audit_id,))
        finally:
            conn.close()
        failed = stack.cli("audit", "verify")
        assert failed.returncode == 1
        assert failed.stdout.strip() == (
            f"audit verify failed: record seq {seq} (audit id {audit_id}): edited in the database since it was shipped"
        )
        stack.stop()
    finally:
        stack.close()
