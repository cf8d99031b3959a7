"""Scenario: where a login comes from. The offline geo lookup's cost per call (the shipped
iptocc data) against the address check alone (what a private or loopback address costs),
and the first lookup of a process (the module and its data loading), measured in a fresh
interpreter as a cold Lambda would pay it."""

from __future__ import annotations

import random
import statistics
import subprocess
import sys
import time

from bench.harness import Figure
from ledgerline import geo
from ledgerline.auth import origin
from ledgerline.geo import backends

_FIRST_LOOKUP = """
import time
import logging, ledgerline.config, ledgerline.auth.origin  # every handler has these already
t = time.perf_counter()
from ledgerline import geo
place = geo.lookup("41.58.0.1")
print((time.perf_counter() - t) * 1000, place.country)
"""


def _addresses(n: int) -> list[str]:
    rng = random.Random(18)  # noqa: S311 - sample addresses, not a secret
    out = []
    while len(out) < n:
        address = f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        if origin.is_public(address):
            out.append(address)
    return out


def _per_call_us(fn, addresses: list[str], rounds: int) -> float:
    runs = []
    for _ in range(rounds):
        started = time.perf_counter()
        for address in addresses:
            fn(address)
        runs.append((time.perf_counter() - started) / len(addresses) * 1e6)
    return statistics.median(runs)


def run(quick: bool) -> list[Figure]:
    n, rounds = (2_000, 3) if quick else (20_000, 5)
    addresses = _addresses(n)
    backends.reset()
    geo.lookup(addresses[0])  # load the backend once: its cost is the cold figure below
    placed = sum(geo.lookup(a).known for a in addresses)
    check_only = _per_call_us(origin.is_public, addresses, rounds)
    lookup = _per_call_us(geo.lookup, addresses, rounds)
    private = _per_call_us(geo.lookup, ["10.0.0.1", "127.0.0.1", "192.168.1.20", "::1"] * (n // 4), rounds)
    colds = []
    for _ in range(1 if quick else 3):
        out = subprocess.run([sys.executable, "-c", _FIRST_LOOKUP], capture_output=True, text=True, check=True)
        colds.append(float(out.stdout.split()[0]))
    extra = {"backend": backends.current().name, "addresses": n, "placed_share": round(placed / n, 3)}
    return [
        Figure(
            "geo lookup", "lookup, public address", lookup, "µs/call",
            baseline=check_only, baseline_name="address check alone", extra=extra,
        ),
        Figure("geo lookup", "lookup, private or loopback address", private, "µs/call", extra=extra),
        Figure("geo lookup", "first lookup in a warm-imported process (geo, backend, data)", statistics.median(colds), "ms",
               extra={**extra, "runs": colds}),
    ]  # fmt: skip
