"""`make run` (ledgerline dev up): the whole stack comes up, and Ctrl-C leaves nothing behind."""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest
import requests

from tests.e2e.own_stack.stack import LocalStack

pytestmark = pytest.mark.slow


def _processes_using(data_dir: Path, *ports: int) -> list[str]:
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(data_dir) in cmdline or any(f"--port {port}" in cmdline for port in ports):
            found.append(f"{proc.info['pid']}: {cmdline[:120]}")
    return found


@pytest.mark.parametrize("api_workers", [1, 2], ids=["in-process gateway", "2 gateway processes"])
def test_dev_up_serves_health_and_ctrl_c_stops_postgres_and_moto(api_workers):
    stack = LocalStack("devup-test", api_workers=api_workers)
    try:
        stack.start()
        assert stack.health is not None and stack.health.json()["database"] == "ok"
        fake = requests.get(f"{stack.fake}/_fake/health", timeout=5)
        assert fake.json() == {"status": "ok"}
        running = _processes_using(stack.data_dir, stack.moto_port, stack.api_port)
        assert len(running) >= 2 + (api_workers if api_workers > 1 else 0), running

        assert stack.stop(timeout=60) == 0, stack.output()
        time.sleep(0.5)
        assert _processes_using(stack.data_dir, stack.moto_port, stack.api_port) == []
    finally:
        stack.close()
