"""The audit trail on the whole local stack (`make run`): after a scenario the trail ships
and verifies, still verifies after the stack is stopped and started again (the local
bucket and KMS keys persist under .data/), and an edit in the database then fails it,
naming the record."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest
import requests

from ledgerline.config import PROJECT_ROOT
from tests.e2e.conftest import own_stack_environment

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def stack_env():
    data_dir = PROJECT_ROOT / ".data" / f"audit-trail-test-{os.getpid()}"
    shutil.rmtree(data_dir, ignore_errors=True)
    env = own_stack_environment()
    env = {k: v for k, v in env.items() if not k.startswith("AWS_") and k != "LEDGERLINE_AUDIT_BUCKET"}
    env.update(
        LEDGERLINE_ENV="local",
        LEDGERLINE_DATA_DIR=str(data_dir),
        LEDGERLINE_API_PORT=str(_free_port()),
        LEDGERLINE_MOTO_PORT=str(_free_port()),
        LEDGERLINE_FAKE_GATEWAY_PORT=str(_free_port()),
        LEDGERLINE_API_WORKERS="1",
    )
    yield env
    shutil.rmtree(data_dir, ignore_errors=True)


class Stack:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.api = f"http://127.0.0.1:{env['LEDGERLINE_API_PORT']}"
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> Stack:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ledgerline.cli", "dev", "up"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "ledgerline dev up exited"
            try:
                if requests.get(f"{self.api}/v1/health", timeout=2).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        raise AssertionError("the local stack did not answer in 180 s")

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ledgerline.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )


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


def _ship_everything(stack: Stack) -> None:
    # The stack's own audit-ship job may be shipping too: both take the shipper's lock.
    deadline = time.monotonic() + 120
    while True:
        shipped = stack.cli("audit", "ship")
        assert shipped.returncode == 0, shipped.stderr
        import psycopg2

        conn = psycopg2.connect(_owner_url(stack))
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


def _owner_url(stack: Stack) -> str:
    return stack.cli("db", "url").stdout.strip()


def test_the_trail_verifies_after_a_scenario_and_after_a_restart_and_an_edit_then_fails(stack_env):
    with Stack(stack_env) as stack:
        _scenario(stack.api)
        _ship_everything(stack)
        first = stack.cli("audit", "verify")
        assert first.returncode == 0, first.stdout + first.stderr
        assert first.stdout.startswith("verified ")
        verified = int(first.stdout.split()[1])
        assert verified >= 9

    with Stack(stack_env) as stack:  # `make run` again: the same bucket, the same audit key
        again = stack.cli("audit", "verify")
        assert again.returncode == 0, again.stdout + again.stderr
        assert int(again.stdout.split()[1]) >= verified

        import psycopg2

        conn = psycopg2.connect(_owner_url(stack))
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
