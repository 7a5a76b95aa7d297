"""The query-engine role, Athena's: set-based scans over the lake.

Every lake query is written once, in Athena's Trino SQL, with named placeholders
(``:period_start``). :func:`render` parses it with sqlglot's Trino dialect, binds the
parameters as literals, and writes it out for the engine at hand:

* ``DuckDBQueryEngine`` (local): DuckDB over the local object store. The tables of its lake
  catalog (:mod:`metrics_assets.resources.lake`, given by ``build_resources``) appear as
  views over the files.
* ``AthenaQueryEngine`` (production): Athena through pyathena, in a work group, with results
  in an S3 output location. The states a query goes through (QUEUED, RUNNING, SUCCEEDED,
  FAILED, CANCELLED) are followed and kept in ``QueryResult.extra["states"]``; a failed or
  cancelled query raises :class:`QueryFailed` with its state and Athena's reason. A query
  (a statement that returns rows) runs as ``UNLOAD (...) TO '<output>/unload/<uuid>/' WITH
  (format = 'PARQUET')``: its rows come back as the Parquet files the query's data manifest
  lists, read with pyarrow, never as 1,000-row ``GetQueryResults`` pages (:func:`plan_unload`,
  :func:`read_unload`). Other statements (DDL) run as written.

Both return a :class:`QueryResult`: an Arrow table plus the bytes scanned, which the assets
put in their metadata (with Athena's cost estimate).
"""

from __future__ import annotations

import functools
import io
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pyarrow as pa
import sqlglot
from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr
from sqlglot import exp

from metrics_assets.resources.duckdb_session import open_session
from metrics_assets.resources.lake import LakeCatalog
from metrics_assets.resources.sql_scope import real_tables
from metrics_assets.resources.sqltext import literal
from metrics_assets.resources.warehouse import to_arrow

SOURCE_DIALECT = "trino"
ATHENA_USD_PER_TB = 5.0
ATHENA_MIN_BYTES = 10 * 1024 * 1024  # Athena bills at least 10 MB per query.
BATCH_ROWS = 50_000  # rows per Arrow batch when reading UNLOAD files


class QueryFailed(RuntimeError):
    """The engine rejected or failed the query; the message is the engine's own reason."""

    def __init__(self, message: str, *, query_id: str | None = None, state: str | None = None):
        super().__init__(message)
        self.query_id = query_id
        self.state = state


def parse(sql: str) -> exp.Expr:
    """Parse one statement of Athena (Trino) SQL. Raises sqlglot.ParseError when it is not."""
    return _parsed(sql).copy()


@functools.lru_cache(maxsize=256)
def _parsed(sql: str) -> exp.Expr:
    """The parsed statement, shared: a domain's SQL is parsed once per process, however many
    slices or metrics run it. Never modify it (sqlglot's transform and replace_placeholders
    copy)."""
    statements = [s for s in sqlglot.parse(sql, read=SOURCE_DIALECT) if s is not None]
    if len(statements) != 1:
        raise ValueError(f"expected exactly one SQL statement, got {len(statements)}")
    return statements[0]


def table_names(sql: str) -> frozenset[str]:
    """The real tables an Athena statement reads, each reference resolved by scope as the
    engine resolves it (a CTE named like a table is the CTE where it is visible)."""
    return real_tables(_parsed(sql))


def render(
    sql: str, params: Mapping[str, Any] | None, dialect: str, transform: Callable[[exp.Expr], exp.Expr] | None = None
) -> str:
    """Athena SQL with ``:name`` placeholders -> SQL for ``dialect`` with the values bound.
    ``transform`` (optional) rewrites the parsed Athena tree first, node by node (a domain's
    local reproduction of Athena semantics, e.g. :mod:`metrics_assets.events.parity`)."""
    tree = _parsed(sql)
    if params:
        tree = exp.replace_placeholders(tree, **dict(params))
    missing = [p.name for p in tree.find_all(exp.Placeholder) if p.name]
    if missing:
        raise ValueError(f"no value for SQL parameter(s): {', '.join(sorted(set(missing)))}")
    if transform is not None and dialect != "athena":
        tree = tree.transform(transform)
    return tree.sql(dialect=dialect)


def athena_cost_usd(bytes_scanned: int) -> float:
    """Athena's price: $5 per TB scanned, with a 10 MB minimum per query."""
    return max(bytes_scanned, ATHENA_MIN_BYTES) / 1e12 * ATHENA_USD_PER_TB


# -- Athena results through UNLOAD ---------------------------------------------------------
#: AWS, "UNLOAD" (athena/latest/ug/unload.html): ``UNLOAD (SELECT ...) TO 's3://.../' WITH
#: (property = 'value', ...)``; the TO folder must hold no data, the files are written in
#: parallel ("no global ordering of files"), and a data manifest listing the files is saved in
#: the query result location as ``<QueryID>-manifest.csv`` (querying-finding-output-files.html).
UNLOAD_FORMAT = "PARQUET"
UNLOAD_COMPRESSION = "SNAPPY"
#: The column the engine adds to an ordered query so that its order survives the parallel files.
ORDER_COLUMN = "__metrics_unload_order"


@dataclass
class UnloadPlan:
    """What the engine sends for one row-returning statement, and how to read it back."""

    statement: str  # the UNLOAD statement Athena runs
    location: str  # its TO folder (unique per query, so it is empty as Athena requires)
    columns: list[str]  # the SELECT's output names (the columns of an empty result)
    order_column: str | None = None  # set when the query's ORDER BY must be restored across files


def _order_keys(select: exp.Select) -> list[exp.Ordered] | None:
    """The SELECT's ORDER BY keys as expressions valid inside the SELECT (ordinals and output
    aliases replaced by what they name), or None when one cannot be resolved (``SELECT *``)."""
    projections = select.expressions
    aliases = {p.alias_or_name.lower(): p for p in projections if isinstance(p, exp.Alias)}
    keys = []
    for ordered in select.args["order"].expressions:
        ordered = ordered.copy()
        key = ordered.this
        if isinstance(key, exp.Literal) and not key.is_string:
            position = int(key.name)
            if not 1 <= position <= len(projections) or isinstance(projections[position - 1], exp.Star):
                return None
            target = projections[position - 1]
            ordered.set("this", (target.this if isinstance(target, exp.Alias) else target).copy())
        elif isinstance(key, exp.Column) and not key.table and key.name.lower() in aliases:
            ordered.set("this", aliases[key.name.lower()].this.copy())
        keys.append(ordered)
    return keys


def plan_unload(athena_sql: str, output_location: str) -> UnloadPlan | None:
    """The UNLOAD for a row-returning statement (a query), or None for any other statement (DDL),
    which runs as written. A top-level ORDER BY is kept: Athena sorts within each file only, so
    the SELECT gets ``row_number() OVER (<the same ORDER BY>)`` and the reader sorts by it.
    (Not done, so the order holds within each file only, for ``SELECT DISTINCT``, a set
    operation, or an ordinal naming ``*``.)"""
    tree = parse(athena_sql)
    if not isinstance(tree, exp.Query):
        return None
    order_column = None
    if isinstance(tree, exp.Select) and tree.args.get("order") and not tree.args.get("distinct"):
        keys = _order_keys(tree)
        if keys is not None:
            window = exp.Window(this=exp.RowNumber(), order=exp.Order(expressions=keys))
            tree = tree.copy().select(exp.alias_(window, ORDER_COLUMN, quoted=True), copy=False)
            order_column = ORDER_COLUMN
    location = f"{output_location.rstrip('/')}/unload/{uuid.uuid4()}/"
    statement = (
        f"UNLOAD ({tree.sql(dialect='athena')}) TO {literal(location)} "
        f"WITH (format = {literal(UNLOAD_FORMAT)}, compression = {literal(UNLOAD_COMPRESSION)})"
    )
    # Trino names an unnamed output column _col<position>.
    columns = [
        p.alias_or_name if isinstance(p, (exp.Alias, exp.Column)) else f"_col{i}" for i, p in enumerate(tree.selects)
    ]
    return UnloadPlan(statement, location, [c for c in columns if c != ORDER_COLUMN], order_column)


def manifest_location(output_location: str, query_id: str) -> str:
    """Where Athena saves a query's data manifest: ``<QueryID>-manifest.csv`` in the folder of
    the query's result location (``QueryExecution.ResultConfiguration.OutputLocation``, which
    names the query's own result file in that folder)."""
    folder = output_location if output_location.endswith("/") else output_location.rsplit("/", 1)[0] + "/"
    return f"{folder}{query_id}-manifest.csv"


def _split_s3(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise QueryFailed(f"not an s3:// location: {uri!r}", state="FAILED")
    bucket, _, key = uri[len("s3://") :].partition("/")
    return bucket, key


def read_unload(
    s3_client, output_location: str, query_id: str, plan: UnloadPlan, stop: Callable[[], bool] | None = None
) -> Iterator[pa.RecordBatch]:
    """The Parquet files the manifest lists, batch by batch (one file in memory at a time)."""
    import pyarrow.parquet as pq

    bucket, key = _split_s3(manifest_location(output_location, query_id))
    try:
        manifest = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    except Exception as error:
        raise QueryFailed(
            f"Athena query {query_id} SUCCEEDED but its data manifest s3://{bucket}/{key} could not be read: {error}",
            query_id=query_id,
            state="SUCCEEDED",
        ) from error
    for uri in (line.strip() for line in manifest.splitlines()):
        if not uri:
            continue
        if stop is not None and stop():
            return
        file_bucket, file_key = _split_s3(uri)
        body = s3_client.get_object(Bucket=file_bucket, Key=file_key)["Body"].read()
        yield from pq.ParquetFile(io.BytesIO(body)).iter_batches(batch_size=BATCH_ROWS)


def unloaded_table(batches: list[pa.RecordBatch], plan: UnloadPlan) -> pa.Table:
    """The result as one table: the SELECT's columns in order (null-typed when no file came
    back), rows in the query's order when it has one."""
    if not batches:
        return pa.table({c: pa.array([], pa.null()) for c in plan.columns})
    table = pa.Table.from_batches(batches)
    if plan.order_column is not None:
        table = table.sort_by(plan.order_column).drop_columns([plan.order_column])
    return table


@dataclass
class QueryResult:
    table: pa.Table
    bytes_scanned: int = 0
    engine: str = "duckdb"
    query_id: str | None = None
    elapsed_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cost_usd(self) -> float | None:
        return athena_cost_usd(self.bytes_scanned) if self.engine == "athena" else None

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"engine": self.engine, "bytes_scanned": int(self.bytes_scanned)}
        if self.cost_usd is not None:
            meta["estimated_cost_usd"] = round(self.cost_usd, 6)
        if self.query_id:
            meta["query_id"] = self.query_id
        return meta


class QueryEngine(ConfigurableResource):
    """The interface. Assets annotate their parameter with this class."""

    @property
    def dialect(self) -> str:
        raise NotImplementedError

    def execute(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        *,
        transform: Callable[[exp.Expr], exp.Expr] | None = None,
    ) -> QueryResult:
        """Run one Athena-SQL statement (``:name`` placeholders bound from ``params``).
        ``transform``: see :func:`render` (local engines only; Athena runs the SQL as written)."""
        raise NotImplementedError


class DuckDBQueryEngine(QueryEngine):
    object_store_dir: str = Field(description="Local object-store root (buckets are its folders).")
    database: str = Field(default=":memory:", description="DuckDB database file, or :memory:.")
    threads: int | None = Field(default=None, description="DuckDB threads (default: all cores).")
    temp_directory: str | None = Field(default=None, description="Spill folder (default $METRICS_HOME/duckdb_tmp).")
    max_temp_directory_size: str = Field(default="20GB", description="Most DuckDB may spill to disk.")
    #: The lake tables it reads, set by :meth:`with_catalog` (None: the code location's,
    #: metrics_assets.lake_catalog). A class attribute: Dagster re-creates a resource from its
    #: config for each run, and a catalog (functions, not config) would not survive as a field.
    catalog: ClassVar[LakeCatalog | None] = None

    _conn: Any = PrivateAttr(default=None)
    _views: dict[str, str] = PrivateAttr(default_factory=dict)  # the view bodies _conn has
    _functions: set[str] = PrivateAttr(default_factory=set)  # the functions _conn has

    @classmethod
    def with_catalog(cls, catalog: LakeCatalog, **config: Any) -> DuckDBQueryEngine:
        """An engine reading ``catalog``'s tables: an instance of a subclass bound to it (same
        name, same config), so every copy Dagster makes keeps the catalog."""
        bound = type(
            cls.__name__,
            (cls,),
            {
                "catalog": catalog,
                "__module__": cls.__module__,
                "__qualname__": cls.__qualname__,
                "__doc__": cls.__doc__,
            },
        )
        return bound(**config)

    #: At most this many runs again of one query after a lake table changed how it reads.
    MAX_REREADS: ClassVar[int] = 20

    @property
    def dialect(self) -> str:
        return "duckdb"

    @property
    def lake(self) -> LakeCatalog:
        """The lake catalog: the one bound by :meth:`with_catalog`, else the code location's."""
        if self.catalog is not None:
            return self.catalog
        from metrics_assets.lake_catalog import code_location_catalog

        return code_location_catalog()

    def connection(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with every lake table of the catalog as a view. Views are brought
        up to date on each call (re-created when their body, the files they list, changed) so
        that files written since are seen."""
        if self._conn is None:
            self._conn = open_session(
                self.database,
                threads=self.threads,
                temp_directory=self.temp_directory,
                max_temp_directory_size=self.max_temp_directory_size,
            )
        self.lake.create_duckdb_views(self._conn, Path(self.object_store_dir), self._views, self._functions)
        return self._conn

    def execute(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        *,
        transform: Callable[[exp.Expr], exp.Expr] | None = None,
    ) -> QueryResult:
        started = time.perf_counter()
        duck_sql = render(sql, params, "duckdb", transform)
        for attempt in range(self.MAX_REREADS + 1):
            conn = self.connection()
            try:
                # A relation hands its result to Arrow without the extra copy a cursor makes;
                # statements that return nothing (DDL) give no relation.
                relation = conn.sql(duck_sql)
                table = to_arrow(relation) if relation is not None else pa.table({})
                break
            except duckdb.Error as error:
                # A lake table may read its files differently after this error (a file that is
                # not UTF-8); connection() then re-creates its view, and the query runs again.
                if attempt < self.MAX_REREADS and self.lake.reread_after(error):
                    continue
                raise QueryFailed(str(error), state="FAILED") from error
        scanned = self.lake.local_bytes(table_names(sql), Path(self.object_store_dir))
        return QueryResult(table, bytes_scanned=scanned, engine="duckdb", elapsed_s=time.perf_counter() - started)


class AthenaQueryEngine(QueryEngine):
    work_group: str = Field(description="Athena work group (ATHENA_WORK_GROUP).")
    output_location: str = Field(description="s3:// folder for query results (ATHENA_OUTPUT_LOCATION).")
    database: str = Field(description="Glue database holding the lake tables (ATHENA_DATABASE).")
    region_name: str = Field(default="us-east-1", description="AWS region (AWS_REGION).")
    endpoint_url: str | None = Field(default=None, description="Override for the Athena endpoint (tests).")
    aws_access_key_id: str | None = Field(default=None)
    aws_secret_access_key: str | None = Field(default=None)
    poll_interval_s: float = Field(default=1.0, description="Seconds between status checks.")

    @property
    def dialect(self) -> str:
        return "athena"

    def connect(self):
        from pyathena import connect

        kwargs: dict[str, Any] = {
            "work_group": self.work_group,
            "s3_staging_dir": self.output_location,
            "schema_name": self.database,
            "region_name": self.region_name,
            "poll_interval": self.poll_interval_s,
        }
        if self.endpoint_url:
            kwargs["endpoint_url"] = self.endpoint_url
        if self.aws_access_key_id:
            kwargs["aws_access_key_id"] = self.aws_access_key_id
            kwargs["aws_secret_access_key"] = self.aws_secret_access_key
        return connect(**kwargs)

    @staticmethod
    def stop_query(conn, query_id: str) -> None:
        """StopQueryExecution for ``query_id`` (best effort: the stop must not mask the cause)."""
        try:
            conn.client.stop_query_execution(QueryExecutionId=query_id)
        except Exception as error:
            logging.getLogger(__name__).warning("could not stop Athena query %s: %s", query_id, error)

    @staticmethod
    def _status(conn, query_id: str) -> dict:
        try:
            return conn.client.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]
        except Exception:
            return {}

    def run(
        self,
        conn,
        statement: str,
        *,
        work_group: str | None = None,
        on_poll: Callable[[Any], None] | None = None,
        cursor=None,
    ):
        """Run ``statement`` to its end on ``conn`` (``cursor``: the caller's, so that another
        thread can cancel it). Returns the cursor of a SUCCEEDED query; a FAILED or CANCELLED
        one raises :class:`QueryFailed`. When the run is stopped while the query runs
        (Dagster's interrupt is a BaseException, which pyathena does not treat as a cancel), the
        query is stopped in Athena too (StopQueryExecution) before the stop goes on."""
        from pyathena.error import DatabaseError

        cursor = cursor if cursor is not None else conn.cursor(on_poll=on_poll)
        started_ids: list[str] = []
        kwargs: dict[str, Any] = {"on_start_query_execution": started_ids.append}
        if work_group:
            kwargs["work_group"] = work_group
        try:
            cursor.execute(statement, **kwargs)
        except DatabaseError as error:
            query_id = getattr(cursor, "query_id", None)
            state = getattr(cursor, "state", None)
            reason = getattr(cursor, "error_message", None) or getattr(cursor, "state_change_reason", None)
            if query_id and not state:  # pyathena keeps no state for a query that ended while polled
                status = self._status(conn, query_id)
                state, reason = status.get("State"), reason or status.get("StateChangeReason")
            state, reason = state or "FAILED", reason or str(error)
            raise QueryFailed(
                f"Athena query {query_id or ''} {state}: {reason}".replace("  ", " "),
                query_id=query_id,
                state=state,
            ) from error
        except BaseException:
            # Stopped before pyathena handed us the id (between Athena registering the query and
            # the start call returning): find it by its text (an UNLOAD's is unique: its TO
            # folder has a fresh uuid) among the work group's newest queries still running.
            for query_id in started_ids or self._running_with_text(conn, statement, work_group or self.work_group):
                self.stop_query(conn, query_id)
            raise
        return cursor

    @staticmethod
    def _running_with_text(conn, statement: str, work_group: str) -> list[str]:
        """The work group's newest queued or running queries whose text is ``statement``
        (best effort: a failure here must not mask why the run stopped)."""
        try:
            client = conn.client
            ids = client.list_query_executions(WorkGroup=work_group, MaxResults=20).get("QueryExecutionIds", [])
            found = [client.get_query_execution(QueryExecutionId=i)["QueryExecution"] for i in ids]
            return [
                e["QueryExecutionId"]
                for e in found
                if e.get("Query") == statement and e.get("Status", {}).get("State") in ("QUEUED", "RUNNING")
            ]
        except Exception as error:
            logging.getLogger(__name__).warning("could not look for the stopped Athena query to stop it: %s", error)
            return []

    def execute(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        *,
        transform: Callable[[exp.Expr], exp.Expr] | None = None,
    ) -> QueryResult:
        started = time.perf_counter()
        athena_sql = render(sql, params, "athena")
        plan = plan_unload(athena_sql, self.output_location)
        states: list[str] = []  # every state seen while polling: QUEUED, RUNNING, then a terminal one

        def on_poll(execution) -> None:
            if execution.state and (not states or states[-1] != execution.state):
                states.append(execution.state)

        with self.connect() as conn:
            cursor = self.run(conn, plan.statement if plan else athena_sql, on_poll=on_poll)
            if plan is not None:
                batches = list(read_unload(conn.s3_client, cursor.output_location, cursor.query_id, plan))
                table = unloaded_table(batches, plan)
            else:  # DDL: at most a few lines of text
                columns = [d[0] for d in (cursor.description or [])]
                rows = cursor.fetchall() if columns else []
                table = pa.table({c: [r[i] for r in rows] for i, c in enumerate(columns)}) if columns else pa.table({})
            extra: dict[str, Any] = {"states": states}
            if plan is not None:
                extra["unload_location"] = plan.location
            return QueryResult(
                table,
                bytes_scanned=int(cursor.data_scanned_in_bytes or 0),
                engine="athena",
                query_id=cursor.query_id,
                elapsed_s=time.perf_counter() - started,
                extra=extra,
            )
