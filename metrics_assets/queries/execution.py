"""Running one validated ad hoc query on the engine, with bounds. No Dagster here.

:func:`execute` runs the query in a worker thread and watches it from the caller's:

* past ``timeout_s`` it interrupts the engine query (DuckDB ``interrupt()``, Athena
  ``StopQueryExecution``) and raises :class:`QueryStopped` (``timeout``);
* when ``cancelled()`` says so (it is polled every ``poll_s``), the same, ``cancelled``;
* rows are read as a stream of Arrow batches: past ``max_rows`` rows, or ``max_bytes`` of
  Arrow memory, reading stops and the query fails (``too_many_rows`` / ``too_large``), so a
  huge result never exhausts the worker's memory. On Athena the query runs as an UNLOAD to
  Parquet and the batches are read from the files its manifest lists (one file in memory at a
  time; :func:`metrics_assets.resources.query_engine.read_unload`), not from 1,000-row pages.

Locally the query runs in a fresh hardened DuckDB session
(:func:`metrics_assets.resources.duckdb_session.hardened_session`): it can read only the lake
tables' folders, through views without the forbidden columns, within
``METRICS_QUERY_MEMORY_LIMIT`` / ``METRICS_QUERY_THREADS`` and a capped spill folder. On Athena
it runs in the ad hoc work group (``METRICS_QUERY_ATHENA_WORK_GROUP``), whose bytes-scanned
cutoff bounds the cost.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from metrics_assets import settings
from metrics_assets.queries import config
from metrics_assets.queries.validation import normalised
from metrics_assets.resources.duckdb_session import SessionLimits, hardened_session
from metrics_assets.resources.lake import LakeCatalog
from metrics_assets.resources.query_engine import (
    AthenaQueryEngine,
    DuckDBQueryEngine,
    QueryEngine,
    QueryFailed,
    plan_unload,
    read_unload,
    render,
    table_names,
    unloaded_table,
)

BATCH_ROWS = 50_000


class QueryStopped(RuntimeError):
    """The query was stopped: ``reason`` is ``timeout``, ``cancelled``, ``too_many_rows`` or
    ``too_large``; the message says why, for the query's ``error``."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass
class Execution:
    table: pa.Table
    bytes_scanned: int
    engine: str
    elapsed_s: float
    extra: dict[str, Any] = field(default_factory=dict)


def hidden(name: str) -> bool:
    """Columns and struct fields the user session never shows (the forbidden columns)."""
    flat = normalised(name)
    return any(normalised(c) in flat for c in config.FORBIDDEN_COLUMNS)


def session_for(object_store_dir: str | Path, catalog: LakeCatalog) -> Any:
    """The hardened DuckDB session of ad hoc queries over the local lake: the catalog's
    ``ad_hoc`` tables, nothing else."""
    root = Path(object_store_dir)
    tables = {name: catalog[name] for name in catalog.ad_hoc_names()}
    folders = [t.local_dir(root) for t in tables.values()]
    limits = SessionLimits(
        memory_limit=config.memory_limit(),
        threads=config.threads(),
        temp_directory=str(settings.metrics_home() / "duckdb_tmp" / "queries"),
        max_temp_directory_size=config.max_temp_size(),
    )
    views = {name: t.duckdb_view(t.local_dir(root)) for name, t in tables.items()}
    functions = {f.name: f for t in tables.values() for f in t.duckdb_functions}
    return hardened_session(folders, limits, views=views, hide=hidden, functions=functions.values())


class _Reader:
    """Collects Arrow batches up to the bounds; runs in the worker thread."""

    def __init__(self, max_rows: int, max_bytes: int):
        self.max_rows, self.max_bytes = max_rows, max_bytes
        self.batches: list[pa.RecordBatch] = []
        self.schema: pa.Schema | None = None
        self.rows = self.bytes = 0
        self.error: BaseException | None = None
        self.stopped: QueryStopped | None = None

    def take(self, batch: pa.RecordBatch) -> bool:
        """Keep ``batch``; False when a bound is crossed (reading must stop)."""
        self.rows += batch.num_rows
        self.bytes += batch.nbytes
        if self.rows > self.max_rows:
            self.stopped = QueryStopped(
                "too_many_rows",
                f"the result has more than {self.max_rows:,} rows (METRICS_QUERY_MAX_ROWS): "
                "aggregate, filter or add a LIMIT",
            )
            return False
        if self.bytes > self.max_bytes:
            self.stopped = QueryStopped(
                "too_large",
                f"the result is larger than {self.max_bytes:,} bytes in memory (METRICS_QUERY_MAX_RESULT_BYTES): "
                "select fewer or smaller columns",
            )
            return False
        self.batches.append(batch)
        return True

    def table(self) -> pa.Table:
        if self.schema is None:
            return pa.table({})
        return pa.Table.from_batches(self.batches, schema=self.schema)


def _watch(
    worker: threading.Thread,
    stop: Callable[[], None],
    *,
    timeout_s: float,
    cancelled: Callable[[], bool] | None,
    poll_s: float,
    deadline: float | None = None,
) -> QueryStopped | None:
    """Wait for ``worker``; interrupt it (``stop``) on timeout (``timeout_s`` from now, or at
    ``deadline`` on the monotonic clock when given) or cancel. Returns why it was stopped, or
    None when it ended by itself."""
    if deadline is None:
        deadline = time.monotonic() + timeout_s
    reason: QueryStopped | None = None
    while worker.is_alive():
        worker.join(min(poll_s, max(0.0, deadline - time.monotonic())))
        if not worker.is_alive():
            break
        if time.monotonic() >= deadline:
            reason = QueryStopped(
                "timeout",
                f"the query ran longer than {timeout_s:g} s (METRICS_QUERY_TIMEOUT_S) and was stopped",
            )
        elif cancelled is not None and cancelled():
            reason = QueryStopped("cancelled", "the query was cancelled")
        if reason is not None:
            stop()
            worker.join(5)
            return reason
    return None


def _execute_duckdb(
    engine: DuckDBQueryEngine, sql: str, *, timeout_s, max_rows, max_bytes, cancelled, poll_s
) -> Execution:
    """Run on a new hardened session; run again, within what is left of the timeout, when a lake
    table reads its files differently after the error (a file found not to be UTF-8)."""
    started = time.perf_counter()
    deadline = time.monotonic() + timeout_s  # one timeout for all the runs
    for attempt in range(engine.MAX_REREADS + 1):
        try:
            execution = _execute_duckdb_once(
                engine,
                sql,
                timeout_s=timeout_s,
                max_rows=max_rows,
                max_bytes=max_bytes,
                cancelled=cancelled,
                poll_s=poll_s,
                deadline=deadline,
            )
        except QueryFailed as failed:
            cause = failed.__cause__
            if attempt < engine.MAX_REREADS and isinstance(cause, Exception) and engine.lake.reread_after(cause):
                continue
            raise
        execution.elapsed_s = time.perf_counter() - started
        return execution
    raise AssertionError("unreachable: the last attempt returns or raises")


def _execute_duckdb_once(
    engine: DuckDBQueryEngine, sql: str, *, timeout_s, max_rows, max_bytes, cancelled, poll_s, deadline
) -> Execution:
    started = time.perf_counter()
    duck_sql = render(sql, None, "duckdb")
    conn = session_for(engine.object_store_dir, engine.lake)
    reader = _Reader(max_rows, max_bytes)

    def work() -> None:
        try:
            stream = conn.sql(duck_sql).to_arrow_reader(BATCH_ROWS)
            reader.schema = stream.schema
            for batch in stream:
                if not reader.take(batch):
                    break
        except BaseException as error:
            reader.error = error

    worker = threading.Thread(target=work, name="metrics-query", daemon=True)
    worker.start()
    try:
        stopped = _watch(
            worker, conn.interrupt, timeout_s=timeout_s, cancelled=cancelled, poll_s=poll_s, deadline=deadline
        )
        if stopped is not None:
            raise stopped
        if reader.stopped is not None:
            raise reader.stopped
        if reader.error is not None:
            import duckdb

            if isinstance(reader.error, duckdb.Error):
                raise QueryFailed(str(reader.error), state="FAILED") from reader.error
            raise reader.error
        table = reader.table()
    finally:
        if not worker.is_alive():
            conn.close()
    scanned = engine.lake.local_bytes(table_names(sql), Path(engine.object_store_dir))
    return Execution(table, scanned, "duckdb", time.perf_counter() - started)


def _execute_athena(
    engine: AthenaQueryEngine, sql: str, *, timeout_s, max_rows, max_bytes, cancelled, poll_s
) -> Execution:
    started = time.perf_counter()
    plan = plan_unload(render(sql, None, "athena"), engine.output_location)
    if plan is None:  # validation lets only a SELECT through, and a SELECT always has an UNLOAD
        raise RuntimeError("an ad hoc query must be a SELECT (a query) to run on Athena; got another statement")
    work_group = config.athena_work_group()
    reader = _Reader(max_rows, max_bytes)
    halted = threading.Event()  # set on timeout/cancel: stop reading the UNLOAD files
    with engine.connect() as conn:
        cursor = conn.cursor()

        def work() -> None:
            try:
                engine.run(conn, plan.statement, work_group=work_group, cursor=cursor)
                for batch in read_unload(
                    conn.s3_client, cursor.output_location, cursor.query_id, plan, stop=halted.is_set
                ):
                    if not reader.take(batch):
                        break
                reader.schema = unloaded_table(reader.batches, plan).schema
            except BaseException as error:
                reader.error = error

        def stop() -> None:
            halted.set()
            if getattr(cursor, "query_id", None):
                cursor.cancel()  # StopQueryExecution

        worker = threading.Thread(target=work, name="metrics-query-athena", daemon=True)
        worker.start()
        stopped = _watch(worker, stop, timeout_s=timeout_s, cancelled=cancelled, poll_s=poll_s)
        if stopped is not None:
            raise stopped
        if reader.stopped is not None:
            raise reader.stopped
        if reader.error is not None:
            raise reader.error
        return Execution(
            unloaded_table(reader.batches, plan),
            int(cursor.data_scanned_in_bytes or 0),
            "athena",
            time.perf_counter() - started,
            extra={"athena_query_id": cursor.query_id, "work_group": work_group, "unload_location": plan.location},
        )


def execute(
    engine: QueryEngine,
    sql: str,
    *,
    timeout_s: float | None = None,
    max_rows: int | None = None,
    max_bytes: int | None = None,
    cancelled: Callable[[], bool] | None = None,
    poll_s: float = 0.25,
) -> Execution:
    """Run validated Trino ``sql`` on ``engine`` within the bounds (settings by default).
    Raises :class:`QueryStopped` or the engine's :class:`QueryFailed`."""
    kwargs = {
        "timeout_s": timeout_s if timeout_s is not None else config.timeout_s(),
        "max_rows": max_rows if max_rows is not None else config.max_rows(),
        "max_bytes": max_bytes if max_bytes is not None else config.max_result_bytes(),
        "cancelled": cancelled,
        "poll_s": poll_s,
    }
    if isinstance(engine, DuckDBQueryEngine):
        return _execute_duckdb(engine, sql, **kwargs)
    if isinstance(engine, AthenaQueryEngine):
        return _execute_athena(engine, sql, **kwargs)
    raise settings.ConfigurationError(f"no ad hoc query support for engine {type(engine).__name__}")
