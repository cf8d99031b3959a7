"""The audit table's reads: Athena queries in the audit workgroup (AWS), and the audit
bucket's current objects (the local DuckDB reads copies of them).

Names mirror ``infra.constants.Names`` (``workgroup``, ``glue_database``), which the layer
cannot import; a unit test holds them equal.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledgerline.aws import clients
from ledgerline.config import settings

_DONE = ("SUCCEEDED", "FAILED", "CANCELLED")


class AthenaQueryFailed(RuntimeError):
    """Athena refused or failed the query (its reason), or it ran past the wait."""


def workgroup() -> str:
    return f"{settings().resource_prefix}-audit"


def database() -> str:
    return f"{settings().resource_prefix}_audit".replace("-", "_")


def literal(value: str) -> str:
    """An execution parameter: Athena takes each as a SQL literal, so text is quoted."""
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class Rows:
    columns: tuple[str, ...]
    rows: list[tuple[str | None, ...]]  # Athena answers every value as text


def query(
    sql: str,
    parameters: list[str],
    *,
    timeout_seconds: float = 600.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Rows:
    """Run one statement in the audit workgroup (its result location, encryption and scan
    cutoff are the workgroup's, enforced) and wait for its rows."""
    athena = clients.client("athena")
    request: dict[str, Any] = {
        "QueryString": sql,
        "WorkGroup": workgroup(),
        "QueryExecutionContext": {"Catalog": "AwsDataCatalog", "Database": database()},
    }
    if parameters:  # Athena refuses an empty list
        request["ExecutionParameters"] = [literal(p) for p in parameters]
    execution_id = athena.start_query_execution(**request)["QueryExecutionId"]
    _wait(athena, execution_id, timeout_seconds, sleep)
    return _results(athena, execution_id)


def _wait(athena: Any, execution_id: str, timeout_seconds: float, sleep: Callable[[float], None]) -> None:
    deadline = time.monotonic() + timeout_seconds
    pause = 0.2
    while True:
        status = athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]["Status"]
        state = status["State"]
        if state == "SUCCEEDED":
            return
        if state in _DONE:
            raise AthenaQueryFailed(f"Athena query {execution_id} {state}: {status.get('StateChangeReason', '')}")
        if time.monotonic() > deadline:
            athena.stop_query_execution(QueryExecutionId=execution_id)
            raise AthenaQueryFailed(f"Athena query {execution_id} still {state} after {timeout_seconds:.0f}s; stopped")
        sleep(pause)
        pause = min(pause * 2, 5.0)


def _results(athena: Any, execution_id: str) -> Rows:
    columns: tuple[str, ...] = ()
    rows: list[tuple[str | None, ...]] = []
    first = True
    for page in athena.get_paginator("get_query_results").paginate(QueryExecutionId=execution_id):
        if first:
            columns = tuple(c["Name"] for c in page["ResultSet"]["ResultSetMetadata"]["ColumnInfo"])
        values = [tuple(d.get("VarCharValue") for d in r["Data"]) for r in page["ResultSet"]["Rows"]]
        # A SELECT's first row is its header (column labels), not data.
        if first and values and values[0] == columns:
            values = values[1:]
        rows.extend(values)
        first = False
    return Rows(columns, rows)


# --------------------------------------------------------------------------- the objects


def current_objects(bucket: str, prefix: str) -> Iterator[tuple[str, str]]:
    """(key, version tag) of each object's current version under ``prefix``: what Athena
    reads (a versioned bucket's older versions and delete markers are not in the table)."""
    s3 = clients.client("s3")
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for version in page.get("Versions", []):
            if version.get("IsLatest"):
                yield version["Key"], f"{version.get('VersionId', 'null')}:{version['ETag']}"


def download(bucket: str, key: str, version_tag: str, path: Path) -> None:
    """Write one object version (as ``current_objects`` tagged it) to ``path``."""
    version_id = version_tag.split(":", 1)[0]
    kwargs = {"Bucket": bucket, "Key": key}
    if version_id != "null":
        kwargs["VersionId"] = version_id
    body = clients.client("s3").get_object(**kwargs)["Body"]
    with open(path, "wb") as out:
        for chunk in iter(lambda: body.read(1 << 20), b""):
            out.write(chunk)
