"""The GLAM app's database: its usage log, its probe table, its aggregation tables, and the
``probe_build_requests`` table the app inserts into and polls.

``GlamDatabase`` (resource key ``probes_glam``) points at ``GLAM_DATABASE_URL``; left empty
it means "the warehouse". Queries over the usage log are written once in PostgreSQL SQL
(:mod:`metrics_assets.probes.usage_sql`) and run where the data is:

* The database filters the requested time range and hands its rows over in bulk (on
  PostgreSQL through ADBC's driver: binary COPY decoded into Arrow; a plain fetch from
  SQLite, the small local stand-in).
* DuckDB, whose SQL is PostgreSQL's for everything these queries use, runs the very same
  statement over them: sessionization by window functions and exact distinct counts, in UTC,
  on every core. Only the small aggregate is written back.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from dagster import ConfigurableResource
from pydantic import Field
from sqlalchemy.engine import Connection, Engine

from metrics_assets.lazy import lazy_import
from metrics_assets.probes.config import SESSION_GAP_MINUTES
from metrics_assets.probes.requests import ensure_requests_table
from metrics_assets.probes.usage_sql import DUCKDB_DROPS
from metrics_assets.resources.duckdb_session import open_session
from metrics_assets.resources.sqltext import as_utc, literal
from metrics_assets.resources.warehouse import Warehouse, engine_for, to_arrow

pd = lazy_import("pandas")  # imported on first use (loading the definitions needs no pandas)

_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


class GlamDatabase(ConfigurableResource):
    """The GLAM app's database (``GLAM_DATABASE_URL``); empty means the warehouse."""

    url: str = Field(default="", description="SQLAlchemy URL of the GLAM database; empty = the warehouse.")

    def engine(self, warehouse: Warehouse) -> Engine:
        if not self.url or self.url == warehouse.url:
            return warehouse.engine
        # Never migrate the app's database: it is not ours.
        return engine_for(self.url, upgrade=False)

    def read_table(
        self, warehouse: Warehouse, sql: str | sa.Executable, params: Mapping[str, Any] | None = None
    ) -> pa.Table:
        """A small read (the catalogue) as Arrow: SQL text, or a SQLAlchemy statement, which
        renders for the GLAM database's dialect."""
        with self.engine(warehouse).connect() as conn:
            result = conn.execute(sa.text(sql) if isinstance(sql, str) else sql, dict(params or {}))
            return pa.Table.from_pandas(
                pd.DataFrame(result.fetchall(), columns=list(result.keys())), preserve_index=False
            )

    def has_table(self, warehouse: Warehouse, name: str) -> bool:
        return sa.inspect(self.engine(warehouse)).has_table(name)

    @contextmanager
    def begin(self, warehouse: Warehouse) -> Iterator[Connection]:
        """One transaction on the GLAM database, where ``probe_build_requests`` lives (created
        there on first use: the app's own database is never migrated, only given this table)."""
        engine = self.engine(warehouse)
        if engine is not warehouse.engine:
            ensure_requests_table(engine)
        with engine.begin() as conn:
            yield conn

    def usage_query(
        self,
        warehouse: Warehouse,
        sql: str | list[str],
        params: Mapping[str, Any],
        *,
        since: datetime,
        until: datetime,
        follow_until: datetime | None = None,
    ) -> pa.Table | list[pa.Table]:
        """Run usage-log queries (PostgreSQL SQL, ``:name`` parameters) over the
        ``glam_usage_instrumentation`` rows with ``since <= timestamp < until``.

        GLAM has no index on ``timestamp``, and needs none: ``timestamp`` is ``auto_now_add``
        and ``id`` a bigserial, so the range is a primary-key range, found by a binary search
        on the primary key (:func:`id_range`) and read by it. The database hands the rows over
        in bulk (binary COPY into Arrow on PostgreSQL, through ADBC); DuckDB runs the statements
        over them, set-based and on every core.

        ``follow_until``: also read, from ``until`` to ``follow_until``, the rows of the
        tracking ids seen in the last 30 minutes before ``until``, so that a session running
        past ``until`` keeps its tail (only those ids are shipped; none when no row before
        ``until`` has a tracking id, as in GLAM today)."""
        engine = self.engine(warehouse)
        rows = _usage_rows(engine, since, until)
        if follow_until is not None and rows.num_rows:
            open_ids = _open_tracking_ids(rows, until)
            if open_ids:
                tail = _usage_rows(engine, until, follow_until, tracking_ids=open_ids)
                rows = pa.concat_tables([rows, tail])
        return _run_in_duckdb(rows, sql, params)


USAGE_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("action_type", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("product", pa.string()),
        ("tracking_id", pa.string()),
        ("probe_name", pa.string()),
        ("n", pa.int64()),
    ]
)
#: How far out of id order a row's ``timestamp`` may be (rows are stamped in Python before
#: the INSERT, so concurrent requests commit slightly out of order): the id range is widened
#: by this much on both sides and the exact time filter applied on top.
ID_ORDER_SLACK = timedelta(minutes=10)
#: The columns shipped: ``context`` (the request's whole query, ~100 bytes of JSON) only as the
#: one key the queries use, ``product``, extracted by the database.
_COLUMNS = "id, action_type, \"timestamp\", context ->> 'product' AS product, tracking_id, probe_name"
_COLUMNS_SQLITE = (
    "id, action_type, \"timestamp\", json_extract(context, '$.product') AS product, tracking_id, probe_name"
)


def _first_id_at(conn: Connection, moment: datetime, low: int, high: int) -> int:
    """The smallest position ``x`` in ``[low, high + 1]`` such that the first row with
    ``id >= x`` has ``timestamp >= moment`` (``high + 1`` when none has): about 2 log2(ids)
    primary-key lookups, whatever the table's size."""
    probe = sa.text('SELECT "timestamp" FROM glam_usage_instrumentation WHERE id >= :x ORDER BY id LIMIT 1')
    lo, hi = low, high + 1
    while lo < hi:
        mid = (lo + hi) // 2
        stamp = conn.execute(probe, {"x": mid}).scalar()
        if stamp is None:
            hi = mid
            continue
        if isinstance(stamp, str):  # SQLite
            stamp = datetime.fromisoformat(stamp)
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        if stamp >= moment:
            hi = mid
        else:
            lo = mid + 1
    return lo


def id_range(engine: Engine, since: datetime, until: datetime) -> tuple[int, int] | None:
    """``[first, last)`` ids holding every row with ``since <= timestamp < until`` (give or
    take :data:`ID_ORDER_SLACK`), or None when the table is empty."""
    with engine.connect() as conn:
        low, high = conn.execute(sa.text("SELECT min(id), max(id) FROM glam_usage_instrumentation")).one()
        if low is None:
            return None
        first = _first_id_at(conn, since - ID_ORDER_SLACK, low, high)
        last = _first_id_at(conn, until + ID_ORDER_SLACK, first, high)
    return first, last


def _usage_rows(engine: Engine, since: datetime, until: datetime, tracking_ids: list[str] | None = None) -> pa.Table:
    bounds = id_range(engine, since, until)
    if bounds is None or bounds[0] >= bounds[1]:
        return USAGE_SCHEMA.empty_table()
    params: dict[str, Any] = {"first": bounds[0], "last": bounds[1], "since": since, "until": until}
    where = 'id >= :first AND id < :last AND "timestamp" >= :since AND "timestamp" < :until'
    if tracking_ids is not None:
        where += " AND tracking_id IN :ids"
        params["ids"] = tracking_ids
    if engine.dialect.name == "postgresql":
        return _usage_rows_postgres(engine, since, until, bounds, tracking_ids)
    return _usage_rows_sqlite(engine, where, params)


def _open_tracking_ids(rows: pa.Table, until: datetime) -> list[str]:
    duck = open_session()
    try:
        duck.register("r", rows)
        found = duck.execute(
            "SELECT DISTINCT tracking_id FROM r WHERE tracking_id <> '' AND \"timestamp\" >= $since",
            {"since": until - timedelta(minutes=SESSION_GAP_MINUTES)},
        ).fetchall()
    finally:
        duck.close()
    return sorted(r[0] for r in found)


def _moment(value: datetime) -> str:
    return f"CAST({literal(as_utc(value).isoformat())} AS timestamptz)"


def _usage_rows_postgres(
    engine: Engine, since: datetime, until: datetime, bounds: tuple[int, int], tracking_ids: list[str] | None
) -> pa.Table:
    """The range's rows, read by ADBC's PostgreSQL driver (binary COPY decoded straight into
    Arrow: no text formatting in the database, no parsing and no Python object per row here).
    Rows without a tracking id (all of them in GLAM today) are only ever counted: the database
    counts them per hour, product, probe and action (``n``), so only those counts travel.
    The statement is one text (its values as literals): ADBC streams a statement without
    bound parameters through COPY."""
    where = (
        f"id >= {int(bounds[0])} AND id < {int(bounds[1])} "
        f'AND "timestamp" >= {_moment(since)} AND "timestamp" < {_moment(until)}'
    )
    if tracking_ids is not None:  # a hashed semi-join, not a list compared row by row
        where += (
            " AND tracking_id IN (SELECT unnest(CAST(ARRAY["
            + ", ".join(literal(t) for t in tracking_ids)
            + "] AS text[])))"
        )
    # ``n`` is 1 on every tracked row: added here rather than shipped (each column shipped costs
    # its decoding per row: ~0.07 s of CPU for 900,000 rows).
    tracked = f"SELECT {_COLUMNS} FROM glam_usage_instrumentation WHERE {where} AND tracking_id <> ''"
    counted = (
        "SELECT min(id), action_type, date_trunc('hour', \"timestamp\"), context ->> 'product', "
        "CAST('' AS varchar), probe_name, count(*) "
        f"FROM glam_usage_instrumentation WHERE {where} AND tracking_id = '' GROUP BY 2, 3, 4, 6"
    )
    import adbc_driver_postgresql.dbapi as adbc_postgres  # a native driver: loaded when first read

    uri = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    tables = []
    with adbc_postgres.connect(uri) as conn, conn.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'UTC'")  # date_trunc('hour') in UTC
        # Two reads: faster than one UNION ALL. A tail read (tracking ids given) has no
        # untracked row to count.
        for statement in (tracked,) if tracking_ids is not None else (tracked, counted):
            cursor.execute(statement)
            table = cursor.fetch_arrow_table()
            columns = [
                table.column(i).cast(field.type)
                for i, field in zip(range(table.num_columns), USAGE_SCHEMA, strict=False)
            ]
            if table.num_columns < len(USAGE_SCHEMA):  # the tracked rows: n = 1
                columns.append(pa.repeat(pa.scalar(1, pa.int64()), table.num_rows))
            tables.append(pa.Table.from_arrays(columns, schema=USAGE_SCHEMA))
    return pa.concat_tables(tables)


def _usage_rows_sqlite(engine: Engine, where: str, params: dict) -> pa.Table:
    """The range's rows from SQLite, the local stand-in (small data: a plain fetch)."""
    statement = sa.text(f"SELECT {_COLUMNS_SQLITE} FROM glam_usage_instrumentation WHERE {where}")
    if "ids" in params:
        statement = statement.bindparams(sa.bindparam("ids", expanding=True))
    with engine.connect() as conn:
        result = conn.execute(statement, params)
        raw = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    if raw.empty:
        return USAGE_SCHEMA.empty_table()
    for column in ("product", "action_type", "tracking_id", "probe_name"):
        raw[column] = raw[column].astype("object").where(raw[column].notna(), None)
        raw[column] = raw[column].map(lambda v: v if v is None or isinstance(v, str) else _text(v))
    raw["timestamp"] = pd.to_datetime(raw["timestamp"].astype(str), utc=True, format="ISO8601")
    raw["n"] = 1
    return pa.Table.from_pandas(raw, schema=USAGE_SCHEMA, preserve_index=False)


def _run_in_duckdb(rows: pa.Table, sql: str | list[str], params: Mapping[str, Any]) -> pa.Table | list[pa.Table]:
    duck = open_session()
    try:
        duck.register("raw_usage", rows)
        # A view over the Arrow rows: no copy of the day inside DuckDB.
        duck.execute(
            """CREATE VIEW glam_usage_instrumentation AS SELECT
                   id, action_type, "timestamp", product, tracking_id, probe_name, n
               FROM raw_usage"""
        )
        results = []
        for statement in [sql] if isinstance(sql, str) else sql:
            duck_sql = _PARAM.sub(lambda m: "$" + m.group(1), statement.replace(DUCKDB_DROPS, ""))
            used = set(_PARAM.findall(statement))
            results.append(to_arrow(duck.sql(duck_sql, params={k: v for k, v in params.items() if k in used})))
        return results[0] if isinstance(sql, str) else results
    finally:
        duck.close()


def _text(value: Any) -> str:
    import json

    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return json.dumps(value)
