"""`make run` (ledgerline dev up): the whole stack comes up, and Ctrl-C leaves nothing behind."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

from ledgerline.config import PROJECT_ROOT
from tests.e2e.conftest import own_stack_environment

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _processes_using(data_dir: Path, *ports: int) -> list[str]:
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(data_dir) in cmdline or any(f"--port {port}" in cmdline for port in ports):
            found.append(f"{proc.info['pid']}: {cmdline[:120]}")
    return found


@pytest.fixture
def data_dir():
    # Under the project, not /tmp: the embedded server runs as its own system user and
    # must be able to reach the directory.
    path = PROJECT_ROOT / ".data" / f"devup-test-{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("api_workers", [1, 2], ids=["in-process gateway", "2 gateway processes"])
def test_dev_up_serves_health_and_ctrl_c_stops_postgres_and_moto(data_dir, api_workers):
    api_port, moto_port = _free_port(), _free_port()
    env = own_stack_environment()
    env.update(
        LEDGERLINE_ENV="local",
        LEDGERLINE_DATA_DIR=str(data_dir),
        LEDGERLINE_API_PORT=str(api_port),
        LEDGERLINE_MOTO_PORT=str(moto_port),
        LEDGERLINE_API_WORKERS=str(api_workers),
        LEDGERLINE_FAKE_GATEWAY_PORT=str(_free_port()),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "ledgerline.cli", "dev", "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        health = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                health = requests.get(f"http://127.0.0.1:{api_port}/v1/health", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.5)
        assert health is not None, proc.stdout.read() if proc.poll() is not None else "no answer in 120 s"
        assert health.status_code == 200
        assert health.json()["database"] == "ok"
        fake = requests.get(f"http://127.0.0.1:{env['LEDGERLINE_FAKE_GATEWAY_PORT']}/_fake/health", timeout=5)
        assert fake.json() == {"status": "ok"}
        running = _processes_using(data_dir, moto_port, api_port)
        assert len(running) >= 2 + (api_workers if api_workers > 1 else 0), running

        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    assert proc.returncode == 0, proc.stdout.read()
    time.sleep(0.5)
    assert _processes_using(data_dir, moto_port, api_port) == []
