"""Running one submitted query: validate again, execute on the query engine within bounds
(``execution.py``: hardened session, timeout, cancel, row cap), store the rows. No Dagster
here; the asset in ``assets.py`` calls :func:`run_query`.

Non-finite floats (NaN, Infinity) have no JSON form: they are stored as ``null``, and the
column's type says so (``DOUBLE (NaN and Infinity as null)``), the same for REST and CLI.

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

import pyarrow as pa

from metrics_assets.queries import execution, store
from metrics_assets.queries.validation import QueryRejected, validate
from metrics_assets.resources.duckdb_session import open_session
from metrics_assets.resources.query_engine import QueryEngine, QueryFailed
from metrics_assets.resources.sqltext import ident, literal
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
    duration_s: float = 0.0


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


NON_FINITE_NOTE = " (NaN and Infinity as null)"


def _finite(expr: str, dtype) -> tuple[str, bool]:
    """``expr`` with every non-finite float in it (at any depth) made NULL, and whether the
    type holds floats at all."""
    kind = dtype.id
    if kind in ("float", "double"):
        return f"CASE WHEN isfinite({expr}) THEN {expr} END", True
    if kind == "struct":
        parts, any_float = [], False
        for name, child in dtype.children:
            inner, has = _finite(f"({expr}).{ident(name)}", child)
            parts.append(f"{ident(name)} := {inner}")
            any_float |= has
        if any_float:
            return f"CASE WHEN {expr} IS NOT NULL THEN struct_pack({', '.join(parts)}) END", True
        return expr, False
    if kind == "list":
        inner, has = _finite("__v", dtype.child)
        return (f"list_transform({expr}, lambda __v: {inner})", True) if has else (expr, False)
    return expr, False


def result_rows(query_id: str, table: pa.Table) -> tuple[pa.Table, list[dict[str, str]]]:
    """The engine's result as ``historical_query_results`` rows, plus its columns and types."""
    names = _unique_names(list(table.column_names))
    table = table.rename_columns(names)
    numbered = table.append_column("__row_number", pa.array(range(1, table.num_rows + 1), pa.int64()))
    conn = open_session()
    try:
        conn.register("result_in", numbered)
        relation = conn.sql("SELECT * EXCLUDE (__row_number) FROM result_in")
        columns, values = [], []
        for name, dtype in zip(relation.columns, relation.types, strict=True):
            expr, has_float = _finite(ident(name), dtype)
            columns.append({"name": name, "type": str(dtype) + (NON_FINITE_NOTE if has_float else "")})
            values.append(expr)
        pack = ", ".join(f"{ident(n)} := {v}" for n, v in zip(names, values, strict=True))
        rows = to_arrow(
            conn.sql(
                f"SELECT {literal(query_id)}::VARCHAR AS query_id, __row_number AS row_number, "
                f"to_json(struct_pack({pack}))::VARCHAR AS row FROM result_in ORDER BY __row_number"
            )
        )
    finally:
        conn.close()
    return rows, columns


def run_query(
    warehouse: Warehouse, engine: QueryEngine, query_id: str, run_id: str | None = None, log=None
) -> RunOutcome:
    """Run one query to FINISHED, FAILED or CANCELLED. A query already EXPIRED or CANCELLED is
    left alone; an unknown id raises :class:`store.UnknownQuery`. Rerunning a FINISHED query
    replaces its rows."""
    status = store.get(warehouse, query_id)
    if status.status in (store.EXPIRED, store.CANCELLED):
        return RunOutcome(query_id, status.status, error=f"{status.status.lower()} before it ran")
    if not store.mark_running(warehouse, query_id, run_id):
        now = store.get(warehouse, query_id)
        return RunOutcome(query_id, now.status, error=f"{now.status.lower()} before it ran")

    def fail(message: str) -> RunOutcome:
        store.store_failure(warehouse, query_id, message, status.retention_minutes, run_id)
        if log:
            log.warning(f"query {query_id} failed: {message}")
        final = store.get(warehouse, query_id)
        return RunOutcome(query_id, final.status, error=final.error or message)

    try:
        sql = validate(status.sql).sql  # the stored SQL was valid at submit; check again
    except QueryRejected as error:
        return fail(f"rejected: {error}")
    try:
        result = execution.execute(engine, sql, cancelled=lambda: store.is_cancelled(warehouse, query_id))
        if log:
            log.info(
                f"query {query_id}: {result.table.num_rows:,} rows from {result.engine} in {result.elapsed_s:.2f} s; storing"
            )
        rows, columns = result_rows(query_id, result.table)
    except ConfigurationError:
        raise  # a broken setting fails the run, naming what to fix
    except execution.QueryStopped as stopped:
        if stopped.reason == "cancelled":
            if log:
                log.info(f"query {query_id} cancelled; the engine query was interrupted")
            return RunOutcome(query_id, store.CANCELLED, error=str(stopped))
        return fail(str(stopped))
    except Exception as error:
        return fail(str(error) if isinstance(error, QueryFailed) else f"{type(error).__name__}: {error}")
    if not store.store_result(
        warehouse, query_id, rows, columns, result.bytes_scanned, status.retention_minutes, run_id
    ):
        final = store.get(warehouse, query_id)
        return RunOutcome(query_id, final.status, error=final.error)
    preview = [json.loads(v) for v in rows.column("row").slice(0, 5).to_pylist()]
    return RunOutcome(
        query_id,
        store.FINISHED,
        row_count=rows.num_rows,
        bytes_scanned=int(result.bytes_scanned),
        columns=columns,
        preview=preview,
        engine=result.engine,
        duration_s=result.elapsed_s,
    )


def count_by_status(outcomes: list[RunOutcome]) -> dict[str, int]:
    """How many of ``outcomes`` ended in each status."""
    by_status: dict[str, int] = {}
    for o in outcomes:
        by_status[o.status] = by_status.get(o.status, 0) + 1
    return by_status


def preview_md(outcomes: list[RunOutcome]) -> str:
    """The materialization's preview: the outcomes (20 at most), then the first rows of the
    first query that has any."""
    lines = ["| query_id | status | rows | bytes scanned | error |", "|---|---|---:|---:|---|"]
    for o in outcomes[:20]:
        error = (o.error or "").replace("|", "\\|").replace("\n", " ")[:120]
        lines.append(f"| {o.query_id} | {o.status} | {o.row_count:,} | {o.bytes_scanned:,} | {error} |")
    first = next((o for o in outcomes if o.preview), None)
    if first:
        names = [c["name"] for c in first.columns]
        lines += [
            "",
            f"First rows of {first.query_id}:",
            "",
            "| " + " | ".join(names) + " |",
            "|" + "---|" * len(names),
        ]
        for row in first.preview:
            lines.append("| " + " | ".join(str(row.get(n)).replace("|", "\\|")[:60] for n in names) + " |")
    return "\n".join(lines)
