"""``ledgerline audit query`` on the local stack: DuckDB over the audit bucket's objects,
under Athena's table name, answers the ready-made queries as PostgreSQL answers them
over the same audit rows.

The ready-made queries read what the real shipper (``ledgerline.audit_trail.shipper``)
put in a bucket of the test's own, from a database of the test's own. Tests of the table
itself (days, versions, malformed lines) write objects by hand with ``put``, in the Glue
table's format: one JSON object per line with the table's columns.
"""

from __future__ import annotations

import json
import time
import uuid
from decimal import Decimal

import psycopg2
import pytest

from ledgerline import audit, cli, config, errors, ledger
from ledgerline.audit_sql import cache, named, run
from ledgerline.audit_sql.named import QueryError
from ledgerline.audit_trail import shipper
from ledgerline.auth import sessions, users
from ledgerline.aws import clients
from ledgerline.db import transaction
from ledgerline.ledger.testing import TEST_ADMIN, new_wallet, user_actor

pytestmark = pytest.mark.usefixtures("database_url", "aws_endpoint")

PASSWORD = "correct horse battery staple 9"
TODAY_SQL = "(now() AT TIME ZONE 'UTC')::date::text"


@pytest.fixture
def trail(tmp_path):
    """A fresh Object Lock bucket as the audit bucket and a fresh cache folder."""
    bucket = f"audit-query-{uuid.uuid4().hex[:12]}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LEDGERLINE_AUDIT_BUCKET", bucket)
        mp.setenv("LEDGERLINE_DATA_DIR", str(tmp_path))
        config.settings.cache_clear()
        clients.client("s3").create_bucket(
            Bucket=bucket,
            ObjectLockEnabledForBucket=True,
            CreateBucketConfiguration={"LocationConstraint": config.settings().aws_region},
        )
        yield bucket
    config.settings.cache_clear()


def put(bucket, key, lines):
    body = "".join(json.dumps(line, separators=(",", ":"), sort_keys=True) + "\n" for line in lines)
    clients.client("s3").put_object(Bucket=bucket, Key=key, Body=body.encode(), ChecksumAlgorithm="SHA256")


@pytest.fixture
def shipped_trail(trail, database_url):
    """``trail`` with a database of the test's own, so that the shipper's chain holds this
    test's rows only, and an owner connection to it."""
    from ledgerline.db import connection, testing

    url = testing.create_test_database(database_url)

    def repoint():
        config.settings.cache_clear()
        connection.reset_urls()
        connection.discard_connection()

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DATABASE_URL", url)
        repoint()
        owner = psycopg2.connect(url)
        owner.autocommit = True
        try:
            yield owner
        finally:
            owner.close()
    repoint()
    testing.drop_database(url)


def ship(bucket, owner_conn):
    """Run the shipper until every audit row is chained and shipped; returns the shipped
    ids in seq order (the shipper's own numbering)."""
    deadline = time.monotonic() + 60
    while True:
        shipper.ship()
        rows = pg(owner_conn, "SELECT a.id::text, c.seq FROM audit_log a LEFT JOIN audit_chain c ON c.audit_id = a.id")
        if all(seq is not None for _, seq in rows) or time.monotonic() > deadline:
            break
        time.sleep(0.2)  # another connection's open transaction holds the commit-safe horizon back
    assert all(seq is not None for _, seq in rows), "the shipper left rows behind"
    keys = [v["Key"] for v in clients.client("s3").list_objects_v2(Bucket=bucket, Prefix="audit/dt=")["Contents"]]
    assert keys, "the shipper put no table object"
    return [audit_id for audit_id, _ in sorted(rows, key=lambda r: int(r[1]))]


def pg(owner_conn, sql, params=()):
    with owner_conn.cursor() as cur:
        cur.execute(sql, params)
        return [tuple(None if v is None else str(v) for v in row) for row in cur.fetchall()]


def _json(text):
    """Payloads compared as JSON values: the shipper writes their canonical (compact) text."""
    return None if text is None else json.loads(text)


def today(owner_conn):
    return pg(owner_conn, f"SELECT {TODAY_SQL}")[0][0]


def named_query(name, **params):
    return run.run_named(named.get(name), params)


def seq_of(shipped):
    return {audit_id: str(n) for n, audit_id in enumerate(shipped, start=1)}


# --------------------------------------------------------------------------- the ready-made queries


def _user(role="user"):
    email = f"auditq-{uuid.uuid4().hex[:10]}@example.test"
    user = transaction(
        lambda cur: users.create_user(cur, email=email, password=PASSWORD, full_name="Q", role=role, actor=TEST_ADMIN)
    )
    return user, email


def _fail_login(email, ip):
    client = sessions.Client(ip=ip, user_agent="auditq", request_id=f"req-{uuid.uuid4().hex[:6]}")
    with pytest.raises(errors.DomainError):
        sessions.login(email, "not the password", None, client)


def test_failed_logins_by_ip_count_what_postgresql_counts(trail, shipped_trail):
    owner_conn = shipped_trail
    (_, ada), (_, bayo) = _user(), _user()
    for email, ip in [(ada, "203.0.113.7"), (bayo, "203.0.113.7"), (ada, "203.0.113.7"), (ada, "198.51.100.2")]:
        _fail_login(email, ip)
    _fail_login(f"nobody-{uuid.uuid4().hex[:6]}@example.test", "198.51.100.2")  # an unknown account
    shipped = ship(trail, owner_conn)
    day = today(owner_conn)

    result = named_query("failed-logins-by-ip", **{"from": day, "to": day})

    expected = pg(
        owner_conn,
        """SELECT host(actor_ip), count(*), count(DISTINCT resource_id),
                  to_char(min(occurred_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                  to_char(max(occurred_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
             FROM audit_log WHERE action IN ('auth.login_failed', 'auth.otp_failed') AND id = ANY(%s::uuid[])
            GROUP BY 1 ORDER BY 2 DESC, 1""",
        (shipped,),
    )
    assert result.engine == "duckdb"
    assert result.columns == ("actor_ip", "failures", "accounts", "first_seen", "last_seen")
    assert result.rows == expected
    by_ip = {r[0]: r for r in result.rows}
    assert int(by_ip["203.0.113.7"][1]) >= 3 and int(by_ip["198.51.100.2"][1]) >= 2


def test_money_movements_by_account_are_every_entry_exact_to_the_last_digit(trail, shipped_trail):
    owner_conn = shipped_trail
    # A balance a double cannot hold: read as a JSON number by DuckDB it would come back rounded.
    big = Decimal("98765432109876.54")  # a double's nearest is ...876.55
    src, dst = new_wallet("NGN", big), new_wallet("NGN")
    actor = user_actor(src.owner_id)
    transaction(
        lambda cur: ledger.transfer(
            cur, from_account_id=src.id, to_account_id=dst.id, amount=Decimal("0.01"), currency="NGN", actor=actor
        )
    )
    shipped = ship(trail, owner_conn)
    day = today(owner_conn)
    seqs = seq_of(shipped)

    result = named_query("money-movements-by-account", account_id=str(src.id), **{"from": day, "to": day})

    # PostgreSQL finds the same entries with its own JSON path: any object holding the account and an entry_type.
    expected = sorted(
        (
            (seqs[r[0]], *r[1:])
            for r in pg(
                owner_conn,
                """SELECT a.id::text, to_char(a.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                          a.action, a.resource_type, a.resource_id, e->>'entry_type', e->>'currency',
                          (e->>'amount')::numeric(19,4), (e->>'balance_after')::numeric(19,4), a.actor_type,
                          a.actor_id::text
                     FROM audit_log a,
                          jsonb_path_query(a.payload_after, 'strict $.** ? (@.account_id == $a && exists(@.entry_type))',
                                           jsonb_build_object('a', %(a)s::text)) e
                    WHERE a.id = ANY(%(ids)s::uuid[]) AND a.category = 'financial'""",
                {"a": str(src.id), "ids": shipped},
            )
        ),
        key=lambda r: (int(r[0]), Decimal(r[7])),
    )
    assert result.rows == expected
    assert [(r[2], r[7], r[8]) for r in result.rows] == [
        ("ledger.adjustment.posted", "98765432109876.5400", "98765432109876.5400"),
        ("transfer.completed", "-0.0100", "98765432109876.5300"),
    ]


def test_actions_by_actor_resource_history_and_admin_actions_match_postgresql(trail, shipped_trail):
    owner_conn = shipped_trail
    admin_id = _user("admin")[0].id
    admin = audit.Actor(id=admin_id, type="admin", ip="192.0.2.9", user_agent="auditq", request_id="req-admin-1")
    wallet = new_wallet("NGN")
    transaction(
        lambda cur: ledger.adjust(
            cur, account_id=wallet.id, amount=Decimal("250.00"), currency="NGN", direction="credit",
            reason="goodwill credit", actor=admin,
        )
    )  # fmt: skip
    transaction(
        lambda cur: audit.record(cur, admin, "config.limits.changed", "setting", "velocity",
                                 before={"limit": "20/60s"}, after={"limit": "10/60s"})
    )  # fmt: skip
    shipped = ship(trail, owner_conn)
    day = today(owner_conn)
    ts = """to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""

    by_actor = named_query("actions-by-actor", actor_id=str(admin_id), **{"from": day, "to": day})
    assert by_actor.rows == [
        r
        for r in pg(
            owner_conn,
            f"""SELECT c.seq, {ts}, action, resource_type, resource_id, host(actor_ip), metadata->>'request_id'
                  FROM audit_log JOIN (SELECT audit_id, seq FROM audit_chain) c ON c.audit_id = audit_log.id WHERE actor_id = %s AND id = ANY(%s::uuid[]) ORDER BY c.seq""",
            (admin_id, shipped),
        )
    ]
    assert [r[2] for r in by_actor.rows] == ["ledger.adjustment.posted", "config.limits.changed"]
    assert {r[6] for r in by_actor.rows} == {"req-admin-1"}

    history = named_query("resource-history", resource_type="setting", resource_id="velocity")
    assert [(*r[:5], *map(_json, r[5:])) for r in history.rows] == [
        (*r[:5], *map(_json, r[5:]))
        for r in pg(
            owner_conn,
            f"""SELECT c.seq, {ts}, action, actor_type, actor_id::text, payload_before::text, payload_after::text
                  FROM audit_log JOIN (SELECT audit_id, seq FROM audit_chain) c ON c.audit_id = audit_log.id
                 WHERE resource_type = 'setting' AND resource_id = 'velocity' AND id = ANY(%s::uuid[])
                 ORDER BY c.seq""",
            (shipped,),
        )
    ]
    assert json.loads(history.rows[-1][6]) == {"limit": "10/60s"}

    admin_actions = named_query("admin-actions", **{"from": day, "to": day})
    assert admin_actions.rows == [
        r
        for r in pg(
            owner_conn,
            f"""SELECT c.seq, {ts}, actor_id::text, actor_type, action, resource_type, resource_id, host(actor_ip)
                  FROM audit_log JOIN (SELECT audit_id, seq FROM audit_chain) c ON c.audit_id = audit_log.id WHERE (actor_type = 'admin' OR category = 'admin') AND id = ANY(%s::uuid[])
                 ORDER BY c.seq""",
            (shipped,),
        )
    ]
    assert {"config.limits.changed", "ledger.adjustment.posted"} <= {r[4] for r in admin_actions.rows}


def _row(seq, occurred_at, **values):
    row = dict.fromkeys(n for n, _ in named.schema.COLUMNS)
    row.update(
        id=str(uuid.uuid4()),
        seq=seq,
        occurred_at=occurred_at,
        actor_type="anonymous",
        category="auth",
        resource_type="user",
        content_hash="00" * 32,
        prev_hash="00" * 32,
        chain_hash="00" * 32,
    )
    row.update(values)
    return row


def test_the_dt_range_reads_only_those_days(trail):
    failed = {"action": "auth.login_failed", "metadata": '{"reason":"bad_credentials"}'}
    put(
        trail, "audit/dt=2024-05-01/1.jsonl", [_row(1, "2024-05-01T08:00:00.000000Z", actor_ip="192.0.2.200", **failed)]
    )
    put(
        trail,
        "audit/dt=2024-05-02/2.jsonl",
        [
            _row(2, "2024-05-02T08:00:00.000000Z", actor_ip="192.0.2.201", **failed),
            _row(3, "2024-05-02T09:00:00.000000Z", actor_ip="192.0.2.201", **failed),
        ],
    )

    first = named_query("failed-logins-by-ip", **{"from": "2024-05-01", "to": "2024-05-01"})
    assert [r[:3] for r in first.rows] == [("192.0.2.200", "1", "0")]
    both = named_query("failed-logins-by-ip", **{"from": "2024-05-01", "to": "2024-05-31"})
    assert [r[:2] for r in both.rows] == [("192.0.2.201", "2"), ("192.0.2.200", "1")]
    dts = run.run("SELECT dt, count(*) AS n FROM ledgerline_audit.audit_events GROUP BY dt ORDER BY dt").rows
    assert dts == [("2024-05-01", "1"), ("2024-05-02", "2")]


# --------------------------------------------------------------------------- the table and its copy


def test_the_copy_is_incremental_and_follows_new_versions_and_deletions(trail):
    line = {"id": "a", "seq": 1, "action": "auth.logout"}
    put(trail, "audit/dt=2026-01-01/1.jsonl", [line])
    put(trail, "audit/dt=2026-01-02/2.jsonl", [{**line, "seq": 2}])
    put(trail, "audit/checkpoints/000000000002.json", [{"head": "x"}])  # not a table row
    folder = run.cache_dir(trail)

    assert cache.sync(trail, folder) == cache.Synced(objects=2, fetched=2, removed=0)
    assert cache.sync(trail, folder) == cache.Synced(objects=2, fetched=0, removed=0)
    put(trail, "audit/dt=2026-01-02/2.jsonl", [{**line, "seq": 2, "action": "auth.login_succeeded"}])  # a new version
    assert cache.sync(trail, folder) == cache.Synced(objects=2, fetched=1, removed=0)
    clients.client("s3").delete_object(Bucket=trail, Key="audit/dt=2026-01-01/1.jsonl")  # a delete marker
    (folder / "audit/dt=2026-01-02/forged.jsonl").write_text(json.dumps({**line, "seq": 99}) + "\n")

    rows = run.run("SELECT seq, action, dt FROM ledgerline_audit.audit_events ORDER BY seq").rows
    assert rows == [("2", "auth.login_succeeded", "2026-01-02")]


def test_the_table_is_empty_before_anything_is_shipped_and_has_the_glue_columns_and_dt(trail):
    result = run.run("SELECT * FROM ledgerline_audit.audit_events")
    assert result.rows == []
    assert result.columns == (*(n for n, _ in named.schema.COLUMNS), "dt")


def test_a_malformed_line_fails_the_query_as_athena_does(trail):
    clients.client("s3").put_object(Bucket=trail, Key="audit/dt=2026-01-01/bad.jsonl", Body=b'{"seq": 1,\n')
    with pytest.raises(QueryError):
        run.run("SELECT count(*) FROM ledgerline_audit.audit_events")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM read_text('/etc/hostname')",
        "COPY (SELECT 1) TO '/tmp/audit-query-escape.csv'",
        "SELECT 1; SELECT 2",
        "SET enable_external_access = true",
    ],
)
def test_a_query_reads_the_trail_and_nothing_else(trail, sql):
    with pytest.raises(QueryError):
        run.run(sql)


def test_another_resource_prefix_has_its_own_database_name(trail, monkeypatch):
    monkeypatch.setenv("LEDGERLINE_RESOURCE_PREFIX", "acme-dev")
    config.settings.cache_clear()
    try:
        put(trail, "audit/dt=2026-01-01/1.jsonl", [{"seq": 1, "action": "admin.config.changed", "category": "admin"}])
        assert run.run("SELECT action FROM acme_dev_audit.audit_events").rows == [("admin.config.changed",)]
        assert named_query("admin-actions", **{"from": "2026-01-01", "to": "2026-01-01"}).rows[0][4] == (
            "admin.config.changed"
        )
        with pytest.raises(QueryError):
            run.run("SELECT * FROM ledgerline_audit.audit_events")
    finally:
        monkeypatch.delenv("LEDGERLINE_RESOURCE_PREFIX")
        config.settings.cache_clear()


# --------------------------------------------------------------------------- the command


def test_the_command_prints_a_named_query_as_json_or_csv_and_refuses_bad_parameters(trail, shipped_trail, capsys):
    owner_conn = shipped_trail
    _, email = _user()
    _fail_login(email, "203.0.113.99")
    ship(trail, owner_conn)
    day = today(owner_conn)
    argv = ["audit", "query", "--named", "failed-logins-by-ip", "--param", f"from={day}", "--param", f"to={day}"]

    assert cli.main([*argv, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"actor_ip": "203.0.113.99"}.items() <= next(r for r in rows if r["actor_ip"] == "203.0.113.99").items()

    assert cli.main([*argv, "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("actor_ip,failures,accounts,first_seen,last_seen\n")

    assert (
        cli.main(["audit", "query", "SELECT count(*) AS n FROM ledgerline_audit.audit_events", "--format", "table"])
        == 0
    )
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "n" and out.rstrip().endswith("(1 row)")

    assert (
        cli.main(
            ["audit", "query", "--named", "failed-logins-by-ip", "--param", "from=yesterday", "--param", f"to={day}"]
        )
        == 2
    )
    assert "from: 'yesterday' is not a date" in capsys.readouterr().err
    assert cli.main(["audit", "query", "--named", "no-such-query"]) == 2
    assert "no ready-made query 'no-such-query'" in capsys.readouterr().err
