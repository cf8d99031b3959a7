"""The audit chain and its shipper: commit-safe order, gap-free seqs, the canonical record
computed alike by PostgreSQL and Python, batches shipped once to deterministic keys with a
signed checkpoint, a crash midway re-shipping the same bytes, two shippers never forking."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ledgerline import audit
from ledgerline.audit_trail import canonical, checkpoint, shipper, verify
from ledgerline.aws import audit_bucket, clients
from ledgerline.db import transaction
from ledgerline.db.connection import connect

pytestmark = pytest.mark.timeout(180)


@dataclass
class Trail:
    url: str  # the owner URL of this test's own database
    bucket: str  # this test's own Object Lock bucket

    def owner(self):
        return connect(self.url, autocommit=True)

    def app(self):
        from ledgerline.db.connection import app_url

        return connect(app_url())

    def verify(self) -> verify.Outcome:
        return verify.verify(connect=self.app)


@pytest.fixture
def trail(aws_endpoint, database_url):
    """A database and an Object Lock bucket of this test's own: the tampering tests spoil
    both for good."""
    from ledgerline import config
    from ledgerline.db import connection, testing
    from ledgerline.local import aws

    url = testing.create_test_database(database_url)
    bucket = f"ll-audit-{uuid.uuid4().hex[:16]}"
    aws._audit_bucket(clients.client("s3"), bucket, config.settings().aws_region)
    saved = {name: os.environ.get(name) for name in ("DATABASE_URL", "LEDGERLINE_AUDIT_BUCKET")}
    os.environ["DATABASE_URL"] = url
    os.environ["LEDGERLINE_AUDIT_BUCKET"] = bucket

    def repoint():
        config.settings.cache_clear()
        connection.reset_urls()
        connection.discard_connection()

    repoint()
    try:
        yield Trail(url, bucket)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        repoint()
        testing.drop_database(url)


def record(n: int = 1, **kw) -> list[uuid.UUID]:
    actor = audit.Actor(id=uuid.uuid4(), type="user", ip="10.1.2.3", user_agent="pytest", request_id="req")
    return transaction(
        lambda cur: [
            audit.record(
                cur, actor, "transfer.created", "transfer", uuid.uuid4(), after={"amount": "1.00", "i": i}, **kw
            )
            for i in range(n)
        ]
    )


def ship_all(expected_total: int, **kw) -> shipper.ShipReport:
    """Ship until ``expected_total`` rows are chained: another test's open transaction on
    the same server holds the commit-safe horizon back for a moment."""
    total = shipper.ShipReport()
    deadline = time.monotonic() + 60
    while True:
        report = shipper.ship(**kw)
        total.batches += report.batches
        total.records += report.records
        total.reshipped += report.reshipped
        total.keys += report.keys
        if chained() >= expected_total or time.monotonic() > deadline:
            return total
        time.sleep(0.2)


def chained() -> int:
    return transaction(lambda cur: _one(cur, "SELECT count(*) AS n FROM audit_chain"), read_only=True)


def _one(cur, sql, args=()):
    cur.execute(sql, args)
    return next(iter(cur.fetchone().values()))


def audit_rows() -> int:
    return transaction(lambda cur: _one(cur, "SELECT count(*) AS n FROM audit_log"), read_only=True)


def objects(bucket: str) -> dict[str, list]:
    found: dict[str, list] = {}
    for v in audit_bucket.versions("audit/", bucket=bucket):
        found.setdefault(v.key, []).append(v)
    return found


# --------------------------------------------------------------- the canonical record

AWKWARD = [
    {"b": 1, "a": 2, "aa": 3, "B": 4, "é": 5, "z": 6, "": 7},
    {"nested": {"zeta": [1, {"y": None, "x": True}], "alpha": {"k": False}}, "list": [[], {}, [[]]]},
    {"amounts": [Decimal("1.50"), Decimal("100.0000"), 0, -0, Decimal("-0.00"), Decimal("1E+2"), Decimal("1e-7")]},
    {"big": 123456789012345678901234567890, "neg": Decimal("-12.3400"), "exp": Decimal("2.5E3")},
    {"text": 'quote " backslash \\ slash / tab \t newline \n cr \r bell \x07 del \x7f'},
    {"unicode": "naïve Łódź 日本語 emoji 😀 rtl עברית \u2028 \u00a0", "😀": "key", "Ω": "omega", "ω": "small"},
    [1, "two", None, {"three": 3}],
    "just a string",
    Decimal("12.340"),
    None,
]


@pytest.mark.parametrize("value", AWKWARD, ids=range(len(AWKWARD)))
def test_python_and_postgresql_render_the_same_canonical_json(database_url, value):
    text = json.dumps(value, default=str) if not isinstance(value, Decimal) else str(value)
    conn = connect(database_url, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT audit_chain_canonical_json(%s::jsonb), %s::jsonb::text", (text, text))
            in_sql, as_jsonb = cur.fetchone()
    finally:
        conn.close()
    in_python = canonical.canonical_json(canonical.loads(as_jsonb)) if value is not None else None
    if value is None:
        assert in_sql == "null"
        return
    assert in_python == in_sql
    # and it is what it says: sorted keys, no whitespace, numbers as written by numeric
    assert canonical.loads(in_sql) == canonical.loads(as_jsonb)


def test_numbers_keep_their_scale_and_lose_exponents_and_negative_zero(database_url):
    conn = connect(database_url, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("""SELECT audit_chain_canonical_json('[1.50, 1E2, -0, -0.00, 2.5e3, 1e-7, 10]'::jsonb)""")
            in_sql = cur.fetchone()[0]
    finally:
        conn.close()
    assert in_sql == "[1.50,100,0,0.00,2500,0.0000001,10]"
    assert canonical.canonical_json(canonical.loads("[1.50, 1E2, -0, -0.00, 2.5e3, 1e-7, 10]")) == in_sql


def test_keys_are_sorted_by_code_point_not_as_jsonb_orders_them(database_url):
    conn = connect(database_url, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(
                """SELECT audit_chain_canonical_json('{"legs": 1, "amount": 2, "b": 3, "Z": 4, "é": 5}'::jsonb)"""
            )
            assert cur.fetchone()[0] == '{"Z":4,"amount":2,"b":3,"legs":1,"é":5}'
    finally:
        conn.close()


def test_the_record_hash_is_the_same_in_postgresql_and_python(trail):
    actor = audit.Actor(id=uuid.uuid4(), type="user", ip="2001:db8::1", user_agent='Mözilla "5"\n', request_id="r")
    awkward = {"ünï": "ç😀", "n": Decimal("10.50"), "nested": {"b": [1, None], "a": {}}, "tab": "\t"}
    audit_id = transaction(
        lambda cur: audit.record(cur, actor, "admin.config.changed", "setting", "x/ü", before=None, after=awkward)
    )
    conn = trail.owner()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT id, occurred_at, category, action, actor_id, actor_type, host(actor_ip) AS actor_ip, user_agent,"
                " resource_type, resource_id, payload_before::text, payload_after::text, metadata::text,"
                " encode(content_hash, 'hex') FROM audit_log WHERE id = %s",
                (audit_id,),
            )
            r = cur.fetchone()
    finally:
        conn.close()
    row = dict(
        zip(
            ("id", "occurred_at", "category", "action", "actor_id", "actor_type", "actor_ip", "user_agent",
             "resource_type", "resource_id", "payload_before", "payload_after", "metadata"),
            r[:13],
            strict=True,
        )
    )  # fmt: skip
    for key in canonical.JSON_KEYS:
        row[key] = None if row[key] is None else canonical.loads(row[key])
    assert row["occurred_at"].tzinfo is not None
    in_python = canonical.record(row)
    # the trigger's content_hash (new rows) is the canonical record's hash
    assert r[13] == hashlib.sha256(in_python).hexdigest()
    # and the shipped line carries exactly these bytes after its chain fields
    ship_all(audit_rows())
    line = _lines(trail.bucket)[-1]
    assert canonical.split_line(line)[4] == in_python
    assert json.loads(line)["payload_after"] == canonical.canonical_json(
        canonical.loads(json.dumps(awkward, default=str))
    )


def test_the_record_renders_time_in_utc_with_six_digits():
    instant = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert canonical.render_time(instant) == "2026-01-02T03:04:05.000000Z"


# ------------------------------------------------------------------------ shipping


def _lines(bucket: str) -> list[bytes]:
    out = []
    for key, versions in sorted(objects(bucket).items()):
        if key.startswith(checkpoint.CHECKPOINTS):
            continue
        data = audit_bucket.get(key, versions[0].version_id, bucket=bucket)
        out.extend(line for line in data.split(b"\n") if line)
    return sorted(out, key=lambda raw: canonical.split_line(raw)[0])


def test_shipped_lines_are_the_glue_tables_columns_with_gap_free_linked_seqs(trail):
    record(7)
    report = ship_all(audit_rows())
    assert report.records == audit_rows() == chained()

    lines = _lines(trail.bucket)
    from infra.constants import AUDIT_COLUMNS

    prev = canonical.GENESIS
    for n, raw in enumerate(lines, start=1):
        row = json.loads(raw)
        assert list(row) == ["seq", "prev_hash", "chain_hash", "content_hash", *canonical.RECORD_KEYS]
        assert set(row) == {name for name, _type in AUDIT_COLUMNS}
        for name, kind in AUDIT_COLUMNS:
            assert row[name] is None or isinstance(row[name], int if kind == "bigint" else str), name
        assert row["seq"] == n
        assert row["prev_hash"] == prev
        if row["payload_after"] is not None:
            json.loads(row["payload_after"])  # a JSON string, as the Glue table reads it
        prev = row["chain_hash"]

    keys = sorted(objects(trail.bucket))
    day = datetime.now(UTC).date().isoformat()
    assert f"audit/dt={day}/000000000001-{len(lines):012d}.jsonl" in keys
    assert f"audit/checkpoints/000000000001-{len(lines):012d}.json" in keys
    assert trail.verify().message() == f"verified {len(lines)} records"


def test_every_put_carries_a_sha256_checksum_and_is_locked_in_compliance_mode(trail):
    record(2)
    ship_all(audit_rows())
    s3 = clients.client("s3")
    for key, versions in objects(trail.bucket).items():
        head = s3.head_object(Bucket=trail.bucket, Key=key, VersionId=versions[0].version_id, ChecksumMode="ENABLED")
        data = audit_bucket.get(key, versions[0].version_id, bucket=trail.bucket)
        import base64

        assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
        assert head["ObjectLockMode"] == "COMPLIANCE"


def test_deleting_a_shipped_object_version_is_refused(trail):
    record(1)
    ship_all(audit_rows())
    s3 = clients.client("s3")
    key, versions = next(iter(objects(trail.bucket).items()))
    with pytest.raises(s3.exceptions.ClientError, match="AccessDenied"):
        s3.delete_object(Bucket=trail.bucket, Key=key, VersionId=versions[0].version_id)
    assert audit_bucket.get(key, versions[0].version_id, bucket=trail.bucket)


def test_a_transaction_that_commits_after_a_later_numbered_one_is_shipped_in_order_once(trail):
    record(1)
    ship_all(audit_rows())
    late = trail.app()
    try:
        with late.cursor() as cur:  # a transaction that writes first (lower xid), commits last
            cur.execute(
                "INSERT INTO audit_log (category, action, actor_type, resource_type, resource_id, content_hash)"
                " VALUES ('admin', 'admin.config.changed', 'system', 'setting', 'late', '') RETURNING xid"
            )
            late_xid = cur.fetchone()[0]
        early = record(1)[0]  # a later xid, committed now
        before = chained()
        shipper.ship()
        assert chained() == before  # nothing at or after the open transaction's xid
        late.commit()
    finally:
        late.close()
    ship_all(before + 2)
    rows = transaction(
        lambda cur: (
            cur.execute(
                "SELECT c.seq, a.resource_id, a.id, a.xid::text AS xid FROM audit_chain c JOIN audit_log a ON a.id = c.audit_id"
                " ORDER BY c.seq"
            ),
            cur.fetchall(),
        )[1],
        read_only=True,
    )
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
    tail = rows[-2:]
    assert tail[0]["resource_id"] == "late" and tail[0]["xid"] == str(late_xid)
    assert tail[1]["id"] == early
    assert len({r["id"] for r in rows}) == len(rows)  # each row once
    assert trail.verify().ok


def test_a_crash_between_chaining_and_shipping_reships_the_same_batch_to_the_same_keys(trail):
    record(5)
    total = audit_rows()

    class Crash(Exception):
        pass

    def crash():
        raise Crash

    with pytest.raises(Crash):
        shipper.ship(after_chain=crash)
    assert chained() == total  # chained, not shipped
    assert objects(trail.bucket) == {}
    record(3)  # new rows wait behind the unshipped batch

    report = ship_all(audit_rows())
    assert report.reshipped == 1
    assert chained() == audit_rows()
    assert trail.verify().ok

    # a crash after the puts, before marking shipped: the same keys get identical versions
    record(2)
    first_puts = {}

    def crash_after_puts():
        raise Crash

    original = shipper.store.mark_shipped
    try:
        shipper.store.mark_shipped = lambda *a, **k: crash_after_puts()  # type: ignore[assignment]
        with pytest.raises(Crash):
            shipper.ship()
    finally:
        shipper.store.mark_shipped = original  # type: ignore[assignment]
    first_puts = {k: v for k, v in objects(trail.bucket).items()}
    again = ship_all(audit_rows())
    assert again.reshipped == 1
    for key, versions in objects(trail.bucket).items():
        contents = {audit_bucket.get(key, v.version_id, bucket=trail.bucket) for v in versions}
        assert len(contents) == 1, key  # re-shipped versions are byte-identical
    assert any(len(v) == 2 for v in objects(trail.bucket).values())
    assert set(first_puts) <= set(objects(trail.bucket))
    assert trail.verify().message() == f"verified {audit_rows()} records"


def test_two_shippers_at_once_never_fork_the_chain(trail):
    record(40)
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def run():
        try:
            barrier.wait()
            for _ in range(3):
                shipper.ship(batch_size=7)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    ship_all(audit_rows())
    rows = transaction(
        lambda cur: (cur.execute("SELECT seq, audit_id, batch FROM audit_chain ORDER BY seq"), cur.fetchall())[1],
        read_only=True,
    )
    assert [r["seq"] for r in rows] == list(range(1, audit_rows() + 1))
    assert len({r["audit_id"] for r in rows}) == len(rows)
    for key, versions in objects(trail.bucket).items():
        assert len(versions) == 1, f"{key} was put twice"
    assert trail.verify().ok


def test_the_chain_is_append_only_for_the_owner_too(trail):
    record(1)
    ship_all(audit_rows())
    import psycopg2

    conn = trail.owner()
    try:
        with conn.cursor() as cur:
            cur.execute("SET ROLE ledgerline_owner")
            for statement in (
                "UPDATE audit_chain SET seq = seq + 100",
                "DELETE FROM audit_chain",
                "TRUNCATE audit_chain",
            ):
                with pytest.raises(psycopg2.errors.InsufficientPrivilege, match="append-only"):
                    cur.execute(statement)
    finally:
        conn.close()
    app = trail.app()
    try:
        with app.cursor() as cur, pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cur.execute(
                "INSERT INTO audit_chain (seq, audit_id, audit_xid, occurred_at, batch, content_hash, prev_hash, chain_hash)"
                " VALUES (99, gen_random_uuid(), '1', now(), 99, sha256(''), sha256(''), sha256(''))"
            )
    finally:
        app.close()


def test_the_audit_ship_job_is_scheduled_with_its_grants():
    from ledgerline.jobs import SCHEDULES

    row = next(s for s in SCHEDULES if s.name == "audit-ship")
    assert not row.planned
    assert row.handler == "functions.audit.ship"
    assert set(row.grants) == {"s3:audit-write", "kms:audit-checkpoint"}


def test_the_job_handler_ships(trail):
    from functions.audit import ship

    record(3)
    deadline = time.monotonic() + 60
    shipped = 0
    while chained() < audit_rows() and time.monotonic() < deadline:
        shipped += ship.handler({"id": "tick"}, None)["records"]
    assert shipped == audit_rows()
