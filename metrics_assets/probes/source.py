"""The GLAM app's database: where the usage log, the catalogue and the releases live.

``GlamDatabase`` (resource key ``probes_glam``) points at ``GLAM_DATABASE_URL``; left empty
it means "the warehouse". Queries over the usage log are written once in PostgreSQL SQL
(:mod:`metrics_assets.probes.usage_sql`) and run where the data is:

* The database filters the requested time range and hands its rows over in bulk (COPY on
  PostgreSQL; a plain fetch from SQLite, the small local stand-in).
* DuckDB, whose SQL is PostgreSQL's for everything these queries use, runs the very same
  statement over them: sessionization by window functions and exact distinct counts, in UTC,
  on every core. Only the small aggregate is written back.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa
from dagster import ConfigurableResource
from pydantic import Field
from sqlalchemy.engine import Engine

from metrics_assets.lazy import lazy_import
from metrics_assets.probes.usage_sql import DUCKDB_DROPS
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

    def is_postgres(self, warehouse: Warehouse) -> bool:
        return self.engine(warehouse).dialect.name == "postgresql"

    def read_table(self, warehouse: Warehouse, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        """A small read (catalogue, releases) as Arrow."""
        with self.engine(warehouse).connect() as conn:
            result = conn.execute(sa.text(sql), dict(params or {}))
            return pa.Table.from_pandas(pd.DataFrame(result.fetchall(), columns=list(result.keys())), preserve_index=False)

    def usage_query(
        self, warehouse: Warehouse, sql: str, params: Mapping[str, Any], *, since: datetime, until: datetime
    ) -> pa.Table:
        """Run a usage-log query (PostgreSQL SQL, ``:name`` parameters) over
        ``glam_usage_instrumentation`` rows with ``since <= timestamp < until``.

        The database filters the range (on its ``timestamp`` index) and hands it over in bulk:
        COPY on PostgreSQL, read by Arrow's CSV reader. DuckDB then runs the statement over
        those rows, set-based and on every core. Measured on one day of 1,000,000 rows:
        3.5 s, against 8.7 s for the same statement inside PostgreSQL, where the sort by
        tracking id, two window passes and the distinct counts run on one core."""
        engine = self.engine(warehouse)
        if engine.dialect.name == "postgresql":
            rows = _usage_rows_postgres(engine, since, until)
        else:
            rows = _usage_rows_sqlite(engine, since, until)
        return _run_in_duckdb(rows, sql, params)


USAGE_SCHEMA = pa.schema([
    ("id", pa.int64()),
    ("action_type", pa.string()),
    ("timestamp", pa.timestamp("us", tz="UTC")),
    ("context", pa.string()),
    ("tracking_id", pa.string()),
    ("probe_name", pa.string()),
])
_USAGE_RANGE = (
    'SELECT id, action_type, "timestamp", context, tracking_id, probe_name '
    'FROM glam_usage_instrumentation WHERE "timestamp" >= {since} AND "timestamp" < {until}'
)


def _usage_rows_postgres(engine: Engine, since: datetime, until: datetime) -> pa.Table:
    """The range's rows, streamed out with COPY and parsed by Arrow (no Python row objects)."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SET LOCAL TimeZone = 'UTC'")
        query = cursor.mogrify(_USAGE_RANGE.format(since="%s", until="%s"), (since, until)).decode()
        buffer = io.BytesIO()
        cursor.copy_expert(f"COPY ({query}) TO STDOUT WITH (FORMAT csv)", buffer)
        raw.rollback()
    finally:
        raw.close()
    if buffer.tell() == 0:
        return USAGE_SCHEMA.empty_table()
    buffer.seek(0)
    return pacsv.read_csv(
        buffer,
        read_options=pacsv.ReadOptions(column_names=USAGE_SCHEMA.names),
        convert_options=pacsv.ConvertOptions(
            column_types=USAGE_SCHEMA, strings_can_be_null=True, quoted_strings_can_be_null=False
        ),
    )


def _usage_rows_sqlite(engine: Engine, since: datetime, until: datetime) -> pa.Table:
    """The range's rows from SQLite, the local stand-in (small data: a plain fetch)."""
    with engine.connect() as conn:
        result = conn.execute(sa.text(_USAGE_RANGE.format(since=":since", until=":until")),
                              {"since": since, "until": until})
        raw = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    if raw.empty:
        return USAGE_SCHEMA.empty_table()
    for column in ("context", "action_type", "tracking_id", "probe_name"):
        raw[column] = raw[column].astype("object").where(raw[column].notna(), None)
        raw[column] = raw[column].map(lambda v: v if v is None or isinstance(v, str) else _text(v))
    raw["timestamp"] = pd.to_datetime(raw["timestamp"].astype(str), utc=True, format="ISO8601")
    return pa.Table.from_pandas(raw, schema=USAGE_SCHEMA, preserve_index=False)


def _run_in_duckdb(rows: pa.Table, sql: str, params: Mapping[str, Any]) -> pa.Table:
    duck = duckdb.connect()
    try:
        duck.execute("SET TimeZone = 'UTC'")
        duck.register("raw_usage", rows)
        # A view over the Arrow rows: no copy of the day inside DuckDB.
        duck.execute(
            """CREATE VIEW glam_usage_instrumentation AS SELECT
                   id, action_type, "timestamp", CAST(context AS JSON) AS context, tracking_id, probe_name
               FROM raw_usage"""
        )
        duck_sql = _PARAM.sub(lambda m: "$" + m.group(1), sql.replace(DUCKDB_DROPS, ""))
        used = set(_PARAM.findall(sql))
        return to_arrow(duck.sql(duck_sql, params={k: v for k, v in params.items() if k in used}))
    finally:
        duck.close()


def _text(value: Any) -> str:
    import json

    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return json.dumps(value)
