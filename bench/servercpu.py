"""Server CPU per operation, read from /proc: what one transfer costs the database
server, against one pgbench TPC-B-like transaction on the same server.

Each side runs serially on one connection; the CPU time of the server process behind
that connection (``/proc/<pid>/schedstat``: nanoseconds on a CPU, not clock ticks) is
read before and after, and divided by the operations completed in between. Only that
backend is charged: the embedded server may be shared with other work (tests, another
session), which the figure must not absorb. The server's own background processes
(WAL writer, checkpointer, background writer, autovacuum) are read over the same window
and reported apart (``aux_us``), since they serve every database of the server.

Needs the server on this machine (the embedded one, or a local DATABASE_URL); otherwise
the figure is skipped with the reason.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import database

_AUX = "SELECT pid FROM pg_stat_activity WHERE backend_type <> 'client backend'"


def cpu_ns(pid: int) -> int | None:
    """Nanoseconds process ``pid`` has spent on a CPU, or None once it is gone."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def unreadable(pid: int) -> str | None:
    """Why the CPU of server process ``pid`` cannot be read here, or None."""
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return f"server process {pid} is not visible in /proc (server on another machine or namespace)"
    if not comm.startswith("postgres"):
        return f"pid {pid} here is {comm!r}, not the server's process (server on another machine)"
    if cpu_ns(pid) is None:
        return f"/proc/{pid}/schedstat is unreadable (kernel without schedstats?)"
    return None


class Aux:
    """The server's background processes, read together."""

    def __init__(self, admin_url: str) -> None:
        conn = database.connection.connect(admin_url, autocommit=True, application_name="bench-cpu")
        try:
            with conn.cursor() as cur:
                cur.execute(_AUX)
                self.pids = [pid for (pid,) in cur.fetchall()]
        finally:
            conn.close()
        self.start = self._read()

    def _read(self) -> dict[int, int]:
        return {pid: ns for pid in self.pids if (ns := cpu_ns(pid)) is not None}

    def used_ns(self) -> int:
        end = self._read()
        return sum(end[pid] - self.start[pid] for pid in end if pid in self.start)


def serial(
    pid: int, admin_url: str, operation: Callable[[], None], seconds: float, warmup: float = 0.3
) -> dict[str, Any]:
    """CPU of backend ``pid`` per call of ``operation`` (which runs on that backend's
    connection), over the calls made in ``seconds`` after ``warmup`` seconds of calls."""
    _repeat(operation, warmup)
    aux = Aux(admin_url)
    before = cpu_ns(pid)
    started = time.perf_counter()
    count = _repeat(operation, seconds)
    elapsed = time.perf_counter() - started
    after = cpu_ns(pid)
    if before is None or after is None:
        raise RuntimeError(f"server process {pid} vanished during the measurement")
    return _result(after - before, aux.used_ns(), count, elapsed)


def _repeat(operation: Callable[[], None], seconds: float) -> int:
    count = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        operation()
        count += 1
    return count


def pgbench_serial(bench_url: str, admin_url: str, seconds: float, warmup: float = 0.3) -> dict[str, Any]:
    """CPU of pgbench's backend per TPC-B-like transaction, one client. pgbench opens its
    own connection: its backend is found by a unique application_name, read after the
    warm-up, then polled until it exits; the transactions counted are those pgbench's
    log says completed between the first and the last reading."""
    app = f"bench-cpu-{secrets.token_hex(4)}"
    name = database.connection.database_name(bench_url)
    with tempfile.TemporaryDirectory(prefix="bench-cpu-") as tmp:
        prefix = str(Path(tmp) / "log")
        cmd = [
            database.pg_bin("pgbench"), "-b", "tpcb-like", "-c", "1", "-j", "1", "-T", str(round(seconds + warmup)),
            "-n", "-l", f"--log-prefix={prefix}", *database.libpq_args(bench_url),
        ]  # fmt: skip
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PGAPPNAME": app}
        )
        try:
            # pgbench first opens a short connection of its own (to read the scale): the
            # backend that runs the transactions is the one still there a moment later.
            gone: set[int] = set()
            while True:
                pid = _find_backend(admin_url, name, app, proc, gone)
                time.sleep(0.05)
                if cpu_ns(pid) is not None:
                    break
                gone.add(pid)
            time.sleep(warmup)
            aux = Aux(admin_url)
            t0, first = time.time(), cpu_ns(pid)
            t1, last = t0, first
            while (ns := cpu_ns(pid)) is not None:
                t1, last = time.time(), ns
                time.sleep(0.002)
            aux_ns = aux.used_ns()
            _, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if proc.returncode != 0:
            raise RuntimeError(f"pgbench failed: {err[-2000:]}")
        if first is None or last is None:
            raise RuntimeError("pgbench's backend exited before it could be read")
        done = _completed_between(Path(tmp), t0, t1)
    if done < 100:
        raise RuntimeError(f"only {done} pgbench transactions in the measured window")
    return _result(last - first, aux_ns, done, t1 - t0)


def _find_backend(admin_url: str, datname: str, app: str, proc: subprocess.Popen[str], gone: set[int]) -> int:
    conn = database.connection.connect(admin_url, autocommit=True, application_name="bench-cpu")
    try:
        with conn.cursor() as cur:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                cur.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = %s AND pid <> ALL(%s)",
                    (datname, app, list(gone) or [0]),
                )
                row = cur.fetchone()
                if row:
                    return int(row[0])
                if proc.poll() is not None:
                    raise RuntimeError(f"pgbench ended before its backend was found: {proc.stderr.read()[-2000:]}")  # type: ignore[union-attr]
                time.sleep(0.002)
    finally:
        conn.close()
    raise RuntimeError("pgbench's backend did not show up in pg_stat_activity")


def _completed_between(folder: Path, t0: float, t1: float) -> int:
    """Transactions whose completion time (log fields 5 and 6: epoch seconds and µs) is
    within (t0, t1]."""
    done = 0
    for log in folder.glob("log*"):
        for line in log.read_text().splitlines():
            fields = line.split()
            with contextlib.suppress(IndexError, ValueError):
                at = int(fields[4]) + int(fields[5]) / 1e6
                done += t0 < at <= t1
    return done


def _result(backend_ns: int, aux_ns: int, count: int, seconds: float) -> dict[str, Any]:
    return {
        "us": backend_ns / count / 1000,
        "aux_us": aux_ns / count / 1000,
        "count": count,
        "per_second": count / seconds if seconds else None,
    }
