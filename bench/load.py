"""The client shape every throughput figure shares: N spawned processes, each with its
own connection, starting together once all are ready, each running its loop until the
same deadline, and reporting how many requests it completed and their latencies.

A client target is ``target(*args, seconds, start, out)``. It prepares (imports,
connects) and makes one unmeasured request, as a warm Lambda instance would have; then
``start_at, cpu = start.wait()`` returns once every client is ready. It loops until
``start_at + seconds`` and puts ``{"latencies": [seconds, ...], "failures": int,
"cpu_s": cpu_since(cpu)}`` on ``out``: ``cpu_s`` is the process's own CPU time over the
loop, so a run also says what a request costs the client (``client_cpu_us``).
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import time
from collections.abc import Callable
from typing import Any

from bench.harness import percentile

MAX_FAILURE_SHARE = 0.05  # a run where more requests fail measures errors, not transfers
READY_TIMEOUT = 120.0  # seconds for every client to import, connect and warm up
GO_DELAY = 0.05  # between the last client's ready and the common start


class Start:
    """The common start: each client says it is ready, then waits for the go."""

    def __init__(self, ctx: Any) -> None:
        self._ready = ctx.Semaphore(0)
        self._go = ctx.Event()
        self._at = ctx.Value("d", 0.0)

    # In the client.
    def wait(self) -> tuple[float, float]:
        """Block until every client is ready; returns the start time and this process's
        CPU time then (for ``cpu_since``)."""
        self._ready.release()
        self._go.wait()
        start_at = self._at.value
        while time.time() < start_at:
            time.sleep(0.001)
        return start_at, time.process_time()

    # In the parent.
    def go(self, clients: int, procs: list[Any]) -> float:
        deadline = time.monotonic() + READY_TIMEOUT
        ready = 0
        while ready < clients:
            if self._ready.acquire(timeout=1.0):
                ready += 1
                continue
            _check_alive(procs)
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {ready} of {clients} clients were ready after {READY_TIMEOUT:.0f} s")
        self._at.value = time.time() + GO_DELAY
        self._go.set()
        return float(self._at.value)


def run_clients(
    target: Callable[..., None],
    args: tuple[Any, ...],
    clients: int,
    seconds: float,
    *,
    during: Callable[[float], Any] | None = None,
) -> dict[str, Any]:
    """Run ``clients`` processes of ``target`` together for ``seconds``; ``during(start_at)``
    runs in this process while they do (e.g. a sampler) and its result is returned too."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start = Start(ctx)
    procs = [ctx.Process(target=target, args=(*args, seconds, start, out)) for _ in range(clients)]
    for p in procs:
        p.start()
    try:
        start_at = start.go(clients, procs)
        observed = during(start_at) if during is not None else None
        results = _collect(out, procs, deadline=start_at + seconds + 120)
    except BaseException:
        for p in procs:
            if p.is_alive():
                p.terminate()
        raise
    finally:
        for p in procs:
            p.join()
    latencies = [x for r in results for x in r["latencies"]]
    failures = sum(r["failures"] for r in results)
    statuses = _merged([r.get("statuses") or {} for r in results])
    if failures > MAX_FAILURE_SHARE * max(1, len(latencies)):
        raise RuntimeError(f"{failures} of {len(latencies)} requests failed (statuses {statuses}); see the log above")
    cpu = [r.get("cpu_s") for r in results]
    return {
        "tps": len(latencies) / seconds,
        "client_cpu_us": None if None in cpu or not latencies else sum(cpu) / len(latencies) * 1e6,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "failures": failures,
        "failure_statuses": statuses,
        "observed": observed,
    }


def _check_alive(procs: list[Any]) -> None:
    dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
    if dead:
        raise RuntimeError(f"{len(dead)} client process(es) failed (exit codes {dead}); see their traceback above")


def _collect(out: Any, procs: list[Any], deadline: float) -> list[dict[str, Any]]:
    """Every client's report; fails fast when a client died without one."""
    results: list[dict[str, Any]] = []
    while len(results) < len(procs):
        try:
            results.append(out.get(timeout=1.0))
            continue
        except queue.Empty:
            pass
        _check_alive(procs)
        if time.time() > deadline:
            raise RuntimeError("clients did not report in time")
    return results


def _merged(counts: list[dict[Any, int]]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for one in counts:
        for key, n in one.items():
            merged[str(key)] = merged.get(str(key), 0) + n
    return merged


def cpu_since(started: float) -> float:
    return time.process_time() - started


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median throughput (its latencies belong to that run)."""
    return sorted(runs, key=lambda r: r["tps"])[len(runs) // 2]


def latency_extra(run: dict[str, Any]) -> dict[str, Any]:
    extra: dict[str, Any] = {"p50_ms": round(run["p50_ms"], 2), "p99_ms": round(run["p99_ms"], 2)}
    if run.get("failure_statuses"):
        extra["failure_statuses"] = run["failure_statuses"]
    if run.get("client_cpu_us") is not None:
        extra["client_cpu_us"] = round(run["client_cpu_us"], 1)
    return extra
