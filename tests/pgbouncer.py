"""PgBouncer in transaction pooling mode: the local stand-in for RDS Proxy's limits.

Like RDS Proxy, it refuses startup options (``unsupported startup parameter: options``)
and hands each transaction whatever server connection is free, so session state set in
one transaction is not there in the next. The e2e tier runs through it once more
(``make test``; ``LEDGERLINE_TEST_PGBOUNCER`` names the binary) and shows locally what
would be refused or pinned behind the proxy.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

ENV = "LEDGERLINE_TEST_PGBOUNCER"


def binary() -> str | None:
    """The pgbouncer executable, when installed (Debian puts it in /usr/sbin)."""
    found = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    return found if os.access(found, os.X_OK) else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server(url: str) -> tuple[str, int, str, str, str | None]:
    """host (or socket directory), port, database, user, password of a libpq URL."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    host = query.get("host") or parts.hostname or "/tmp"  # libpq's default socket directory
    return (
        host,
        parts.port or int(query.get("port", 5432)),
        parts.path.lstrip("/"),
        unquote(parts.username or ""),
        unquote(parts.password) if parts.password else None,
    )


@contextlib.contextmanager
def running(app_url: str, executable: str) -> Iterator[str]:
    """Run PgBouncer in front of ``app_url``'s server; yield the URL clients use instead."""
    host, port, database, user, password = _server(app_url)
    listen = _free_port()
    work = Path(tempfile.mkdtemp(prefix="ledgerline-pgbouncer-"))
    server = f"host={host} port={port} dbname={database} user={user}" + (f" password={password}" if password else "")
    (work / "users.txt").write_text(f'"{user}" ""\n')
    (work / "pgbouncer.ini").write_text(
        f"""[databases]
{database} = {server}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen}
unix_socket_dir =
auth_type = trust
auth_file = {work}/users.txt
pool_mode = transaction
max_client_conn = 500
default_pool_size = 20
logfile = {work}/pgbouncer.log
pidfile = {work}/pgbouncer.pid
"""
    )
    command = [executable, str(work / "pgbouncer.ini")]
    if os.geteuid() == 0:
        # PgBouncer will not run as root; the embedded server's socket directory is
        # reachable by its owner only, so run as that owner (else as nobody).
        owner = pwd.getpwuid(Path(host).stat().st_uid).pw_name if host.startswith("/") else "nobody"
        command[1:1] = ["-u", owner]
        uid = pwd.getpwnam(owner).pw_uid
        for path in (work, *work.iterdir()):
            os.chown(path, uid, -1)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        _wait_listening(listen, process, work / "pgbouncer.log")
        yield f"postgresql://{user}@127.0.0.1:{listen}/{database}"
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited: {log.read_text() if log.exists() else 'no log'}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"pgbouncer is not listening on {port} after {timeout:.0f} s")
