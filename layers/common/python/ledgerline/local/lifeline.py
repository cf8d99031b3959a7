"""Child processes of the local stack that die with their parent, whatever kills it.

The parent keeps the write end of a pipe on the child's stdin; the kernel closes it when
the parent exits (even on SIGKILL), and the child exits on EOF. A second watch notices a
changed parent in case another process inherited the pipe. Children run in their own
session, so a terminal's Ctrl-C reaches only the orchestrator, which stops them in order.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path


def spawn(args: list[str], *, log_file: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``python <args> --parent-pid <this pid>`` tied to this process; a fresh log
    per start."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "wb") as log:
        return subprocess.Popen(
            [sys.executable, *args, "--parent-pid", str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def stop(process: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """Close the lifeline (the child exits on EOF), then TERM, then KILL."""
    if process.stdin and not process.stdin.closed:
        with contextlib.suppress(OSError):
            process.stdin.close()
    try:
        process.wait(timeout=timeout / 2)
        return
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        process.wait(timeout=timeout / 2)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def tie_to_parent(parent_pid: int) -> None:
    """In the child: exit as soon as the parent is gone."""
    if os.getppid() != parent_pid:
        os._exit(0)  # the parent died before we got here

    def lifeline() -> None:
        with contextlib.suppress(OSError):
            while sys.stdin.buffer.read(4096):
                pass
        os._exit(0)

    def orphan_watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=lifeline, name="lifeline", daemon=True).start()
    threading.Thread(target=orphan_watch, name="orphan-watch", daemon=True).start()
