"""`ledgerline dev up` (what `make run` starts) in a process of its own, for the tests of
this folder: its own data directory, ports, PostgreSQL and AWS stand-in, started,
stopped with Ctrl-C (SIGINT) and started again on the same data directory."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from functools import cached_property
from typing import Any

import boto3
import requests

from ledgerline.config import PROJECT_ROOT

# What points this test run's own processes at its database, its PgBouncer, its AWS
# stand-in or its audit bucket: inherited, the stack's connections would reach the test
# run's instead of the stack's own (085df44: the stack wrote to the test database).
_NOT_INHERITED = ("DATABASE_URL", "LEDGERLINE_APP_DATABASE_URL", "LEDGERLINE_AUDIT_BUCKET")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def environment() -> dict[str, str]:
    """This process's environment without what belongs to the test run (see above)."""
    return {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED and not k.startswith("AWS_")}


class LocalStack:
    """``with LocalStack("name") as stack:`` a running stack; ``stop()`` and ``start()``
    again restart it on the same data directory and ports. ``close()`` removes the data."""

    def __init__(self, name: str, *, api_workers: int = 1) -> None:
        # Under the project, not /tmp: the embedded server runs as its own system user and
        # must be able to reach the directory.
        self.data_dir = PROJECT_ROOT / ".data" / f"{name}-{os.getpid()}"
        self.log_file = self.data_dir.with_name(self.data_dir.name + ".log")
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.data_dir.parent.mkdir(exist_ok=True)  # a fresh clone has no .data yet: the log file goes beside
        self.api_port, self.moto_port, self.fake_port = free_port(), free_port(), free_port()
        self.env = environment()
        self.env.update(
            LEDGERLINE_ENV="local",
            LEDGERLINE_DATA_DIR=str(self.data_dir),
            LEDGERLINE_API_PORT=str(self.api_port),
            LEDGERLINE_MOTO_PORT=str(self.moto_port),
            LEDGERLINE_FAKE_GATEWAY_PORT=str(self.fake_port),
            LEDGERLINE_API_WORKERS=str(api_workers),
        )
        self.api = f"http://127.0.0.1:{self.api_port}"
        self.fake = f"http://127.0.0.1:{self.fake_port}"
        self.moto = f"http://127.0.0.1:{self.moto_port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.health: requests.Response | None = None  # the first answer of the last start

    def start(self, timeout: float = 180) -> LocalStack:
        """Start and wait for the API's first answer, which must be a 200."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.__dict__.pop("owner_url", None)  # asked again of this run
        # Its output goes to a file: a pipe nobody reads would block a chatty stack.
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ledgerline.cli", "dev", "up"], env=self.env, stdout=log, stderr=log
            )
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, f"dev up exited with {self.proc.returncode}: {self.output()}"
            assert time.monotonic() < deadline, f"no answer in {timeout:.0f} s: {self.output()}"
            try:
                self.health = requests.get(f"{self.api}/v1/health", timeout=2)
                break
            except (requests.ConnectionError, requests.Timeout):  # not listening, or too busy yet
                time.sleep(0.3)
        assert self.health.status_code == 200, self.health.text
        return self

    def stop(self, timeout: float = 90) -> int:
        """Ctrl-C, as an operator stops `make run`; the exit status (killed: not 0)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return -signal.SIGKILL
        return self.proc.returncode

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.log_file.unlink(missing_ok=True)

    def __enter__(self) -> LocalStack:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            self.close()

    def output(self) -> str:
        try:
            return self.log_file.read_bytes()[-4000:].decode(errors="replace")
        except OSError:
            return "(no output)"

    def cli(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """``ledgerline <args>`` against this stack, as its operator runs it."""
        return subprocess.run(
            [sys.executable, "-m", "ledgerline.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    @cached_property
    def owner_url(self) -> str:
        """The stack's database as its owner (the same across restarts: same data directory)."""
        made = self.cli("db", "url")
        assert made.returncode == 0, made.stderr
        return made.stdout.strip()

    def aws(self, service: str) -> Any:
        """A boto3 client of the stack's own AWS stand-in."""
        return boto3.client(
            service,
            endpoint_url=self.moto,
            region_name="eu-west-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
