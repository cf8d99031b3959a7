"""Scenario 9: field encryption, µs per field with and without the data-key cache."""

from __future__ import annotations

from bench.harness import Figure
from ledgerline.crypto import bench as crypto_bench


def run(quick: bool) -> list[Figure]:
    r = crypto_bench.measure(500 if quick else 5000)
    extra = {"provider": r["provider"], "envelope_bytes": r["envelope_bytes"]}
    uncached = "data-key cache off (a new data key per field)"
    return [
        Figure("field encryption", "encrypt, data-key cache on", r["encrypt_us_cached"], "µs/field", extra=extra),
        Figure("field encryption", "decrypt, data-key cache on", r["decrypt_us_cached"], "µs/field", extra=extra),
        Figure(
            "field encryption", "encrypt, cache off", r["encrypt_us_uncached"], "µs/field",
            baseline=r["encrypt_us_cached"], baseline_name="cache on", extra={**extra, "note": uncached},
        ),
        Figure(
            "field encryption", "decrypt, cache off", r["decrypt_us_uncached"], "µs/field",
            baseline=r["decrypt_us_cached"], baseline_name="cache on", extra={**extra, "note": uncached},
        ),
        Figure("field encryption", "blind index", r["blind_index_us"], "µs/field", extra=extra),
    ]  # fmt: skip
