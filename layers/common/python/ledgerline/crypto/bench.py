"""What field encryption costs: microseconds per field with the data-key cache on and off.

``measure()`` is called by the benchmarks (``make bench``). With the cache on, a data key
is made once and reused, so a field costs one AES-GCM operation; with it off, every field
also pays the key provider (a KMS round trip in AWS, an AES key wrap locally).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ledgerline.crypto.blind import BlindIndexer
from ledgerline.crypto.fields import DEFAULT_POLICY, NO_CACHE, CachePolicy, FieldCipher
from ledgerline.crypto.keys import KeyProvider, WrappingKeyProvider

SAMPLE = "0123456789"  # a NUBAN-sized account number


def _per_call_us(n: int, fn: Callable[[int], Any]) -> float:
    started = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - started) / n * 1e6


def _measure_policy(provider: KeyProvider, policy: CachePolicy, count: int, label: str) -> dict[str, Any]:
    writer = FieldCipher(provider, policy)
    writer.encrypt(SAMPLE, table="bench", column="value", row_id="warmup")
    blobs: list[bytes] = []

    def encrypt(i: int) -> None:
        blobs.append(writer.encrypt(SAMPLE, table="bench", column="value", row_id=str(i)))

    # A fresh cipher reads what another process wrote: its read cache starts empty.
    reader = FieldCipher(provider, policy)

    def decrypt(i: int) -> None:
        reader.decrypt(blobs[i], table="bench", column="value", row_id=str(i))

    out = {f"encrypt_us_{label}": round(_per_call_us(count, encrypt), 2)}
    out[f"decrypt_us_{label}"] = round(_per_call_us(count, decrypt), 2)
    out[f"provider_calls_{label}"] = writer.stats.generated - 1 + reader.stats.unwrapped
    out["envelope_bytes"] = len(blobs[0])
    return out


def measure(n: int = 2000, *, provider: KeyProvider | None = None, uncached_n: int | None = None) -> dict[str, Any]:
    """µs per field for encrypt/decrypt with the cache on and off, and per blind index.

    ``provider`` defaults to an in-memory wrapping key (the local stack's cost); pass a
    ``KmsKeyProvider`` to include KMS round trips in the uncached figures.
    """
    provider = provider or WrappingKeyProvider.random()
    uncached_n = uncached_n or max(1, n // 10)
    out: dict[str, Any] = {"provider": type(provider).__name__, "n": n, "uncached_n": uncached_n}

    for label, policy, count in (("cached", DEFAULT_POLICY, n), ("uncached", NO_CACHE, uncached_n)):
        out.update(_measure_policy(provider, policy, count, label))

    indexer = BlindIndexer(b"\x01" * 32)
    out["blind_index_us"] = round(_per_call_us(n, lambda i: indexer.index(SAMPLE, kind="bank_account")), 2)
    return out
