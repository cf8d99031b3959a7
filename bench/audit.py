"""Scenario 7: the audit trail — shipped records/s and verified records/s.

Audit rows are written in bulk (``INSERT … SELECT``, through the ``audit_log_hash``
trigger, transfer-like payloads), then:

- Shipped: ``ledgerline.audit_trail.shipper.ship`` chains them and puts them in the local
  Object Lock bucket (moto) in batches of ``BATCH`` with a signed checkpoint each. It must
  keep up with the transfer peak (scenario 1: every transfer writes one audit row).
- Verified: ``ledgerline.audit_trail.verify.verify`` over the whole trail (every object
  version listed and downloaded, every record and link hashed, every checkpoint signature
  checked, the database compared). Goal: ≥ 100,000 records/s. Baseline, same run, same
  records: the two SHA-256 per record alone (the content hash and the link), the floor
  of any verifier that re-hashes every record in Python.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from bench import database
from bench.harness import Figure

BATCH = 5_000


def _write_rows(url: str, n: int) -> None:
    from ledgerline.db.connection import connect

    conn = connect(url, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(
                """
                INSERT INTO audit_log (category, action, actor_id, actor_type, actor_ip, user_agent, resource_type,
                                       resource_id, payload_after, metadata, content_hash)
                SELECT 'financial', 'transfer.created', gen_random_uuid(), 'user', '10.0.0.1',
                       'Mozilla/5.0 (X11; Linux x86_64)', 'transfer', gen_random_uuid()::text,
                       jsonb_build_object('id', gen_random_uuid(), 'amount', '100.00', 'currency', 'NGN',
                                          'status', 'posted', 'from_account', gen_random_uuid(),
                                          'to_account', gen_random_uuid(), 'reference', 'ref-' || g),
                       jsonb_build_object('request_id', 'req-' || g), ''
                  FROM generate_series(1, %s) g
                """,
                (n,),
            )
    finally:
        conn.close()


def _hash_floor(bucket_lines: list[bytes]) -> float:
    """Seconds for the two SHA-256 per record alone."""
    started = time.perf_counter()
    for raw in bucket_lines:
        hashlib.sha256(raw[200:]).hexdigest()
        hashlib.sha256(raw[:140]).hexdigest()
    return time.perf_counter() - started


def _shipped_lines() -> list[bytes]:
    from ledgerline.audit_trail import checkpoint
    from ledgerline.aws import audit_bucket

    lines: list[bytes] = []
    for v in audit_bucket.versions(checkpoint.PREFIX):
        if not v.key.startswith(checkpoint.CHECKPOINTS):
            lines += [x for x in audit_bucket.get(v.key, v.version_id).split(b"\n") if x]
    return lines


def run(quick: bool) -> list[Figure]:
    from ledgerline.audit_trail import shipper, verify
    from ledgerline.db.connection import app_url, connect
    from ledgerline.local import aws

    n = 20_000 if quick else 100_000
    url = database.fresh_database()
    moto = aws.start(port=aws.free_port())
    previous = aws.point_library_at(moto.endpoint_url)
    try:
        aws.bootstrap(moto.endpoint_url)
        _write_rows(url, n)
        started = time.perf_counter()
        report = shipper.ship(batch_size=BATCH, time_budget=3600)
        ship_seconds = time.perf_counter() - started
        runs: list[Any] = []
        for _ in range(1 if quick else 3):
            outcome = verify.verify(connect=lambda: connect(app_url()))
            if not outcome.ok:
                raise RuntimeError(outcome.message())
            runs.append(outcome)
        floor = _hash_floor(_shipped_lines())
    finally:
        aws.restore_environment(previous)
        moto.stop()
    rates = sorted(o.records / o.seconds for o in runs)
    best = runs[[o.records / o.seconds for o in runs].index(rates[len(rates) // 2])]
    return [
        Figure(
            "audit trail",
            f"shipped records/s, batches of {BATCH}",
            report.records / ship_seconds,
            "records/s",
            goal="≥ the transfer peak (scenario 1)",
            extra={"records": report.records, "batches": report.batches},
        ),
        Figure(
            "audit trail",
            "verified records/s (bucket + checkpoints + database)",
            rates[len(rates) // 2],
            "records/s",
            baseline=n / floor,
            baseline_name="two SHA-256 per record alone",
            goal="≥ 100,000 records/s",
            runs=rates,
            extra={
                "records": best.records,
                "bucket_seconds": round(best.bucket_seconds, 3),
                "database_seconds": round(best.database_seconds, 3),
            },
        ),
    ]
