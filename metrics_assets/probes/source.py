"""The GLAM app's database: where the usage log, the catalogue and the releases live.

``GlamDatabase`` (resource key ``probes_glam``) points at ``GLAM_DATABASE_URL``; left empty
it means "the warehouse". Queries over the usage log are written once in PostgreSQL SQL
(:mod:`metrics_assets.probes.usage_sql`) and run where the data is:

* **PostgreSQL**: in the database, as one set-based statement (window functions, ``count
  (DISTINCT)``), in UTC, with enough ``work_mem`` to sort a day in memory. Only the small
  aggregate comes back.
* **SQLite** (the local default warehouse, which has no ``percentile_cont`` nor interval
  arithmetic): the rows of the requested time range are read once into DuckDB, whose SQL is
  PostgreSQL's for everything these queries use, and the very same statement runs there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from dagster import ConfigurableResource
from pydantic import Field
from sqlalchemy.engine import Engine

from metrics_assets.probes.usage_sql import DUCKDB_DROPS
from metrics_assets.resources.warehouse import Warehouse, engine_for, to_arrow

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
        ``glam_usage_instrumentation`` rows with ``since <= timestamp < until``."""
        engine = self.engine(warehouse)
        if engine.dialect.name == "postgresql":
            with engine.begin() as conn:
                conn.execute(sa.text("SET LOCAL TimeZone = 'UTC'"))
                conn.execute(sa.text("SET LOCAL work_mem = '256MB'"))
                conn.execute(sa.text("SET LOCAL jit = off"))  # compiling costs more than it saves here
                result = conn.execute(sa.text(sql), dict(params))
                frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
            return pa.Table.from_pandas(frame, preserve_index=False)
        return self._duckdb_query(engine, sql, params, since=since, until=until)

    @staticmethod
    def _duckdb_query(engine: Engine, sql: str, params: Mapping[str, Any], *, since: datetime, until: datetime) -> pa.Table:
        with engine.connect() as conn:
            result = conn.execute(
                sa.text(
                    'SELECT id, action_type, "timestamp" AS ts, context, tracking_id, probe_name '
                    'FROM glam_usage_instrumentation WHERE "timestamp" >= :since AND "timestamp" < :until'
                ),
                {"since": since, "until": until},
            )
            raw = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
        if raw.empty:
            raw = pd.DataFrame({c: pd.Series(dtype="object") for c in ("action_type", "ts", "context", "tracking_id", "probe_name")})
            raw.insert(0, "id", pd.Series(dtype="int64"))
        for column in ("ts", "context", "action_type", "tracking_id", "probe_name"):
            raw[column] = raw[column].astype("object").where(raw[column].notna(), None)
            raw[column] = raw[column].map(lambda v: v if v is None or isinstance(v, str) else _text(v))
        duck = duckdb.connect()
        try:
            duck.execute("SET TimeZone = 'UTC'")
            duck.register("raw_usage", pa.Table.from_pandas(raw, preserve_index=False))
            duck.execute(
                """CREATE TABLE glam_usage_instrumentation AS SELECT
                       CAST(id AS BIGINT) AS id, CAST(action_type AS VARCHAR) AS action_type,
                       CAST(CAST(ts AS VARCHAR) || '+00' AS TIMESTAMPTZ) AS "timestamp",
                       CAST(context AS JSON) AS context, CAST(tracking_id AS VARCHAR) AS tracking_id,
                       CAST(probe_name AS VARCHAR) AS probe_name
                   FROM raw_usage"""
            )
            duck_sql = _PARAM.sub(lambda m: "$" + m.group(1), sql.replace(DUCKDB_DROPS, ""))
            used = set(_PARAM.findall(sql))
            return to_arrow(duck.sql(duck_sql, params={k: v for k, v in params.items() if k in used}).to_arrow_table())
        finally:
            duck.close()


def _text(value: Any) -> str:
    import json

    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return json.dumps(value)
