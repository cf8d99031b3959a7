"""The ready-made audit queries and the DuckDB stand-in for Athena, without AWS: the
files are well-formed, bind their parameters, run on DuckDB; the table matches the Glue
table of the CDK app; the macros behave as Trino's functions of the same name."""

from __future__ import annotations

import io
import json
import tomllib
from pathlib import Path

import pytest

from infra import constants as c
from ledgerline.audit_sql import duck, named, output, schema
from ledgerline.audit_sql.named import QueryError
from ledgerline.config import PROJECT_ROOT

DAY = "2026-12-01"
ACCOUNT = "6f1c1c1e-2a5b-4a0e-9d8e-2d7d1b0c9a11"
ARGS = {"actor_id": ACCOUNT, "account_id": ACCOUNT, "from": DAY, "to": DAY, "resource_type": "user", "resource_id": "x"}


def test_the_table_is_the_glue_table_of_the_cdk_app():
    names = c.Names("ledgerline")
    assert schema.qualified_table("ledgerline") == f"{names.glue_database()}.{names.glue_table()}"
    assert schema.database("acme-dev") == c.Names("acme-dev").glue_database()
    assert schema.OBJECT_PREFIX == c.AUDIT_PREFIX + "dt="


def test_athena_names_are_the_cdk_apps(monkeypatch):
    from ledgerline import config
    from ledgerline.aws import athena

    monkeypatch.setenv("LEDGERLINE_RESOURCE_PREFIX", "acme-dev")
    config.settings.cache_clear()
    try:
        assert athena.workgroup() == c.Names("acme-dev").workgroup()
        assert athena.database() == c.Names("acme-dev").glue_database()
    finally:
        monkeypatch.undo()
        config.settings.cache_clear()


def test_the_five_ready_made_queries_exist():
    assert set(named.all_queries()) == {
        "actions-by-actor", "resource-history", "failed-logins-by-ip", "money-movements-by-account", "admin-actions",
    }  # fmt: skip


@pytest.mark.parametrize("name", sorted(named.all_queries()))
def test_a_ready_made_query_names_the_table_says_what_it_answers_and_runs_on_duckdb(name, tmp_path):
    query = named.get(name)
    assert named.DEFAULT_TABLE in query.sql
    assert query.summary and query.summary[0].isupper()
    assert named.placeholders(query.sql) == len(query.params)
    bound = query.bind({p.name: ARGS[p.name] for p in query.params})

    con = duck.connect("ledgerline", tmp_path)
    columns, rows = duck.query(con, query.sql, bound)
    assert columns and rows == []


def test_placeholders_outside_literals_identifiers_and_comments_only():
    sql = """-- a ? in a comment
    SELECT '?', 'it''s ?', "odd?name", regexp_extract(x, '(?:a)?', 0) /* ? */ FROM t WHERE a = ? AND b = ?"""
    assert named.placeholders(sql) == 2


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"from": "2026-13-01", "to": DAY}, "from: '2026-13-01' is not a date"),
        ({"from": "1 Dec 2026", "to": DAY}, "is not a date"),
        ({"from": DAY}, "needs --param to=..."),
        ({"from": DAY, "to": DAY, "actor": "x"}, "not actor"),
    ],
)
def test_bad_parameters_are_refused_before_anything_runs(values, message):
    with pytest.raises(QueryError, match=message):
        named.get("failed-logins-by-ip").bind(values)


def test_an_id_parameter_must_be_an_id():
    with pytest.raises(QueryError, match="not an id"):
        named.get("money-movements-by-account").bind({"account_id": '") OR 1=1', "from": DAY, "to": DAY})


def test_another_prefix_gets_its_database_swapped_in():
    text = named.get("admin-actions").text_for("acme-dev")
    assert "acme_dev_audit.audit_events" in text and named.DEFAULT_TABLE not in text


def _line(**values):
    row = dict.fromkeys(n for n, _ in schema.COLUMNS)
    row.update(values)
    return json.dumps(row)


@pytest.fixture
def one_row(tmp_path):
    folder = tmp_path / "audit" / "dt=2026-12-01"
    folder.mkdir(parents=True)
    payload = '{"a":{"k-1":"v","n":null,"o":{"x":1},"l":[1,2]},"m":12345678901234.5678}'
    (folder / "1.jsonl").write_text(_line(seq=7, payload_after=payload, extra="ignored") + "\n")
    return duck.connect("ledgerline", tmp_path)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ('$.a["k-1"]', "v"),  # Trino's bracket form for keys that are not identifiers
        ("$.a.n", None),  # JSON null
        ("$.a.o", None),  # not a scalar
        ("$.a.l", None),
        ("$.a.l[1]", "2"),
        ("$.missing", None),
    ],
)
def test_json_extract_scalar_behaves_as_trinos(one_row, path, expected):
    assert duck.query(one_row, "SELECT json_extract_scalar(payload_after, ?) FROM ledgerline_audit.audit_events",
                      [path])[1] == [(expected,)]  # fmt: skip


def test_the_view_has_the_table_columns_then_dt_and_ignores_other_keys(one_row):
    columns, rows = duck.query(one_row, "SELECT * FROM ledgerline_audit.audit_events", [])
    assert columns == (*(n for n, _ in schema.COLUMNS), "dt")
    assert rows[0][columns.index("seq")] == "7" and rows[0][-1] == "2026-12-01"
    assert duck.query(one_row, "SELECT typeof(seq), typeof(dt) FROM ledgerline_audit.audit_events", [])[1] == [
        ("BIGINT", "VARCHAR")
    ]


def test_from_iso8601_timestamp_reads_the_shipped_timestamps(one_row):
    sql = (
        "SELECT from_iso8601_timestamp('2026-12-01T10:00:00.123456Z') < from_iso8601_timestamp('2026-12-01T10:00:01Z')"
    )
    assert duck.query(one_row, sql, [])[1] == [("True",)]


def test_output_formats():
    columns, rows = ("a", "payload"), [("1", "x" * 100), (None, "short")]
    out = io.StringIO()
    output.table(columns, rows, out)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["a", "payload"] and lines[-1] == "(2 rows)"
    assert lines[2].endswith("…") and len(lines[2].split()[1]) == output.CELL_MAX
    out = io.StringIO()
    output.csv_rows(columns, rows, out)
    assert out.getvalue() == f"a,payload\n1,{'x' * 100}\n,short\n"
    out = io.StringIO()
    output.json_rows(columns, rows, out)
    assert json.loads(out.getvalue()) == [{"a": "1", "payload": "x" * 100}, {"a": None, "payload": "short"}]


def test_duckdb_is_a_laptop_dependency_never_the_lambda_layers():
    project = tomllib.loads(Path(PROJECT_ROOT, "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if d.startswith("duckdb")]
    assert [d for d in project["optional-dependencies"]["local"] if d.startswith("duckdb")]
