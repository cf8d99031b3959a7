"""The audit table on DuckDB, under Athena's name, over the local copy of the objects.

The view reads the objects as the Glue table does: JSON lines, the table's columns and
types (other keys ignored, missing ones NULL, malformed JSON an error, as with
``ignore.malformed.json = false``), ``dt`` from the path. Macros give DuckDB the Trino
functions the queries use under their Athena names. Once the view exists the connection
may read nothing but the copy, and its settings are locked: a query cannot reach other
files, as an Athena query cannot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ledgerline.audit_sql import schema
from ledgerline.audit_sql.cache import table_root
from ledgerline.audit_sql.named import QueryError

_TYPES = {"string": "VARCHAR", "bigint": "BIGINT", "int": "INTEGER", "double": "DOUBLE", "boolean": "BOOLEAN"}

# Trino's json_extract_scalar: a scalar's text, NULL for an object or array; its paths
# write a key with any character as ["key"], DuckDB's as ."key".
MACROS = (
    """CREATE MACRO json_extract_scalar(j, p) AS (
         CASE WHEN json_type(j, replace(replace(p, '["', '."'), '"]', '"')) IN ('OBJECT', 'ARRAY') THEN NULL
              ELSE json_extract_string(j, replace(replace(p, '["', '."'), '"]', '"')) END)""",
    "CREATE MACRO from_iso8601_timestamp(s) AS CAST(s AS TIMESTAMPTZ)",
)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def view_sql(prefix: str, cache: Path) -> str:
    database, table = _ident(schema.database(prefix)), _ident(schema.TABLE)
    root = table_root(cache.resolve())
    if not any(root.glob("dt=*/*")):
        # read_json refuses a glob that matches nothing; an empty trail is an empty table.
        columns = ", ".join(f"CAST(NULL AS {_TYPES[t]}) AS {_ident(n)}" for n, t in schema.COLUMNS)
        return f"CREATE VIEW {database}.{table} AS SELECT {columns}, CAST(NULL AS VARCHAR) AS dt WHERE false"
    columns = ", ".join(f"{_quote(n)}: {_quote(_TYPES[t])}" for n, t in schema.COLUMNS)
    return (
        f"CREATE VIEW {database}.{table} AS SELECT * FROM read_json({_quote(str(root / 'dt=*' / '*'))}, "
        f"format = 'newline_delimited', columns = {{{columns}}}, "
        f"hive_partitioning = true, hive_types = {{'dt': 'VARCHAR'}}, hive_types_autocast = false)"
    )


def connect(prefix: str, cache: Path) -> Any:
    import duckdb  # the local extra: never in the Lambda layer

    con = duckdb.connect(":memory:")
    con.execute(f"CREATE SCHEMA {_ident(schema.database(prefix))}")
    for macro in MACROS:
        con.execute(macro)
    con.execute(view_sql(prefix, cache))
    con.execute(f"SET allowed_directories = [{_quote(str(cache.resolve()) + '/')}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def query(con: Any, sql: str, parameters: list[str]) -> tuple[tuple[str, ...], list[tuple[str | None, ...]]]:
    """One statement (Athena runs no more), its rows as text as Athena answers them."""
    import duckdb

    statements = duckdb.extract_statements(sql)
    if len(statements) != 1:
        raise QueryError(f"one SQL statement at a time, as in Athena (got {len(statements)})")
    try:
        cursor = con.execute(sql, parameters)
    except duckdb.Error as exc:
        raise QueryError(str(exc)) from None
    columns = tuple(d[0] for d in cursor.description or ())
    rows = [tuple(None if v is None else str(v) for v in row) for row in cursor.fetchall()]
    return columns, rows
