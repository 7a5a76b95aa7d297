"""Running one submitted query: validate again, execute on the query engine, store the rows.
No Dagster here; the asset in ``assets.py`` calls :func:`run_query`.

Rows are turned into JSON objects set-based, in DuckDB over the engine's Arrow result (an
in-memory connection of its own, whichever engine ran the query): ``row_number`` follows the
result's order, ``row`` is ``to_json`` of the row. The rows are then written with the
warehouse's bulk load (COPY on PostgreSQL) in the same transaction that marks the query
FINISHED.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from metrics_assets.queries import store
from metrics_assets.queries.validation import QueryRejected, validate
from metrics_assets.resources.query_engine import QueryEngine, QueryFailed
from metrics_assets.resources.warehouse import Warehouse, to_arrow
from metrics_assets.settings import ConfigurationError


@dataclass
class RunOutcome:
    query_id: str
    status: str
    row_count: int = 0
    bytes_scanned: int = 0
    error: str | None = None
    columns: list[dict[str, str]] = field(default_factory=list)
    preview: list[dict[str, Any]] = field(default_factory=list)
    engine: str | None = None


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        base = name or "_col"
        candidate, n = base, 1
        while candidate.lower() in seen:
            n += 1
            candidate = f"{base}_{n}"
        seen[candidate.lower()] = 1
        out.append(candidate)
    return out


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def result_rows(query_id: str, table: pa.Table) -> tuple[pa.Table, list[dict[str, str]]]:
    """The engine's result as ``historical_query_results`` rows, plus its columns and types."""
    names = _unique_names(list(table.column_names))
    table = table.rename_columns(names)
    numbered = table.append_column("__row_number", pa.array(range(1, table.num_rows + 1), pa.int64()))
    conn = duckdb.connect()
    try:
        conn.execute("SET TimeZone = 'UTC'")
        conn.register("result_in", numbered)
        described = conn.execute("DESCRIBE SELECT * EXCLUDE (__row_number) FROM result_in").fetchall()
        columns = [{"name": r[0], "type": r[1]} for r in described]
        pack = ", ".join(f"{_q(n)} := {_q(n)}" for n in names)
        literal = "'" + query_id.replace("'", "''") + "'"
        rows = to_arrow(
            conn.sql(
                f"SELECT {literal}::VARCHAR AS query_id, __row_number AS row_number, "
                f"to_json(struct_pack({pack}))::VARCHAR AS row FROM result_in ORDER BY __row_number"
            )
        )
    finally:
        conn.close()
    return rows, columns


def run_query(
    warehouse: Warehouse, engine: QueryEngine, query_id: str, run_id: str | None = None, log=None
) -> RunOutcome:
    """Run one query to FINISHED or FAILED. A query already EXPIRED is left alone; an unknown
    id raises :class:`store.UnknownQuery`. Rerunning a FINISHED query replaces its rows."""
    status = store.get(warehouse, query_id)
    if status.status == store.EXPIRED:
        return RunOutcome(query_id, store.EXPIRED, error="expired before it ran")
    store.mark_running(warehouse, query_id, run_id)
    try:
        sql = validate(status.sql).sql  # the stored SQL was valid at submit; check again
    except QueryRejected as error:
        store.store_failure(warehouse, query_id, f"rejected: {error}", status.retention_minutes)
        return RunOutcome(query_id, store.FAILED, error=f"rejected: {error}")
    try:
        result = engine.execute(sql)
        if log:
            log.info(f"query {query_id}: {result.table.num_rows:,} rows from {result.engine}; storing")
        rows, columns = result_rows(query_id, result.table)
    except ConfigurationError:
        raise  # a broken setting fails the run, naming what to fix
    except Exception as error:  # noqa: BLE001 - the engine's error (QueryFailed) or an unreadable result: FAILED, never stuck RUNNING
        message = str(error) if isinstance(error, QueryFailed) else f"{type(error).__name__}: {error}"
        store.store_failure(warehouse, query_id, message, status.retention_minutes)
        if log:
            log.warning(f"query {query_id} failed: {message}")
        return RunOutcome(query_id, store.FAILED, error=message)
    store.store_result(warehouse, query_id, rows, columns, result.bytes_scanned, status.retention_minutes)
    preview = [json.loads(v) for v in rows.column("row").slice(0, 5).to_pylist()]
    return RunOutcome(
        query_id, store.FINISHED, row_count=rows.num_rows, bytes_scanned=int(result.bytes_scanned),
        columns=columns, preview=preview, engine=result.engine,
    )
