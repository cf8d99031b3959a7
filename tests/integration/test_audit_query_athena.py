"""``ledgerline audit query`` in AWS: the ready-made query's own text goes to Athena in
the audit workgroup, against the audit database, with its parameters as SQL literals,
and the rows come back without Athena's header row. moto's Athena answers canned rows:
this checks the call's shape and the reading of the answer, not Athena's SQL."""

from __future__ import annotations

import json
import urllib.request

import pytest

from ledgerline import cli, config
from ledgerline.audit_sql import named
from ledgerline.aws import athena, clients

pytestmark = pytest.mark.usefixtures("aws_endpoint")

COLUMNS = ("actor_ip", "failures", "accounts", "first_seen", "last_seen")
ROWS = [
    ("203.0.113.7", "3", "2", "2026-11-02T08:00:00.000000Z", "2026-11-02T08:05:00.000000Z"),
    (None, "1", "0", "2026-11-03T09:00:00.000000Z", "2026-11-03T09:00:00.000000Z"),
]


@pytest.fixture
def in_aws():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LEDGERLINE_ENV", "aws")
        config.settings.cache_clear()
        yield
    config.settings.cache_clear()


@pytest.fixture
def workgroup(aws_endpoint):
    """The audit workgroup, as the CDK app creates it (moto refuses a query in a missing one)."""
    client = clients.client("athena")
    names = {w["Name"] for w in client.list_work_groups()["WorkGroups"]}
    if athena.workgroup() not in names:
        client.create_work_group(Name=athena.workgroup(), Configuration={"EnforceWorkGroupConfiguration": True})
    return athena.workgroup()


def canned(endpoint, columns, rows):
    """The rows moto's Athena answers to the next query, with Athena's header row first."""
    data = [{"Data": [{"VarCharValue": c} for c in columns]}]
    data += [{"Data": [{} if v is None else {"VarCharValue": v} for v in row]} for row in rows]
    body = {
        "account_id": "123456789012",
        "region": config.settings().aws_region,
        "results": [{"rows": data, "column_info": [{"Name": c, "Type": "varchar"} for c in columns]}],
    }
    request = urllib.request.Request(  # noqa: S310 - the local moto server's http URL
        f"{endpoint}/moto-api/static/athena/query-results",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310
        pass


def test_a_named_query_runs_its_own_text_in_the_audit_workgroup(in_aws, workgroup, aws_endpoint, capsys):
    canned(aws_endpoint, COLUMNS, ROWS)
    argv = [
        "audit",
        "query",
        "--named",
        "failed-logins-by-ip",
        "--param",
        "from=2026-11-01",
        "--param",
        "to=2026-11-30",
    ]

    assert cli.main([*argv, "--format", "json"]) == 0

    assert json.loads(capsys.readouterr().out) == [dict(zip(COLUMNS, row, strict=True)) for row in ROWS]
    client = clients.client("athena")
    latest = client.list_query_executions(WorkGroup=workgroup)["QueryExecutionIds"][-1]
    execution = client.get_query_execution(QueryExecutionId=latest)["QueryExecution"]
    assert execution["Query"] == named.get("failed-logins-by-ip").sql  # the file, byte for byte
    assert execution["WorkGroup"] == "ledgerline-audit"
    assert execution["QueryExecutionContext"]["Database"] == "ledgerline_audit"
    assert execution["ExecutionParameters"] == ["'2026-11-01'", "'2026-11-30'"]


def test_ad_hoc_sql_goes_as_written_and_a_quote_in_a_parameter_stays_a_literal(in_aws, workgroup, aws_endpoint):
    canned(aws_endpoint, ("n",), [("0",)])
    sql = "SELECT count(*) AS n FROM ledgerline_audit.audit_events WHERE resource_id = ?"

    answer = athena.query(sql, ["x' OR '1'='1"])

    assert (answer.columns, answer.rows) == (("n",), [("0",)])
    client = clients.client("athena")
    latest = client.list_query_executions(WorkGroup=workgroup)["QueryExecutionIds"][-1]
    execution = client.get_query_execution(QueryExecutionId=latest)["QueryExecution"]
    assert execution["Query"] == sql
    assert execution["ExecutionParameters"] == ["'x'' OR ''1''=''1'"]


def test_a_query_outside_the_audit_workgroup_is_refused(in_aws, aws_endpoint, monkeypatch):
    # Another copy's prefix names a workgroup that does not exist here: Athena's error surfaces.
    monkeypatch.setenv("LEDGERLINE_RESOURCE_PREFIX", "nowhere")
    config.settings.cache_clear()
    with pytest.raises(clients.client("athena").exceptions.ClientError):
        athena.query("SELECT 1", [])
