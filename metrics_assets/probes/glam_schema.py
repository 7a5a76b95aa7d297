"""GLAM's own tables, exactly as the app creates them, and how the app writes and reads them.

Read from mozilla/glam (``glam/api/models.py``, ``glam/api/migrations/0001`` to ``0028``,
``glam/api/views.py``, ``glam/api/management/commands/import_*.py``). The DDL below is the
final state of those Django migrations on PostgreSQL:

* ``glam_usage_instrumentation`` (migration 0024, model ``UsageInstrumentation``): written by
  ``_log_probe_query`` on every successful ``POST /api/v1/data/``: ``action_type`` is always
  ``PROBE_SEARCH`` (the model's only choice), ``timestamp`` is ``auto_now_add``, ``context`` is
  the request's ``query`` object, ``tracking_id`` is ``''`` (a FIXME in the view), and
  ``probe_name`` is ``query["probe"]``. No index but the primary key.
* ``glam_probe`` (0002, 0015): ``key`` is the probe-info key (``histogram/GC_MS``), ``info``
  the object ``import_probes`` builds, whose ``name`` is the probe name the app uses
  (``gc_ms``: prefix dropped, dots to underscores, lower case).
* ``glam_desktop_{nightly,beta,release}_aggregation`` (0006, 0022, 0025) and
  ``glam_fenix_aggregation`` (0011, 0014, 0022), ``glam_fog_aggregation`` (0019, 0022), each
  unique on its dimensions, and the materialized views ``view_<table>`` the app actually
  reads (re-created in 0022 and 0025), refreshed by the import commands with
  ``REFRESH MATERIALIZED VIEW CONCURRENTLY``.

Column order is the order the migrations left (fields added later come last); it matters to
the import commands, which ``COPY`` CSV files into ``CREATE TABLE ... (LIKE ...)`` copies.
"""

from __future__ import annotations

import json
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

#: GLAM's products (glam/api/constants.py PRODUCT_CHOICES). A query without ``product`` is
#: the legacy Firefox desktop one: ``body["query"].get("product", FIREFOX_LEGACY)``.
DEFAULT_PRODUCT = "firefox"
GLEAN_PRODUCTS = ("fenix", "fog")
CHANNELS = ("nightly", "beta", "release")

USAGE_DDL = """
CREATE TABLE glam_usage_instrumentation (
    id bigserial NOT NULL PRIMARY KEY,
    action_type varchar(100) NOT NULL,
    "timestamp" timestamp with time zone NOT NULL,
    context jsonb NULL,
    tracking_id varchar(500) NOT NULL,
    probe_name varchar(100) NOT NULL
)"""

PROBE_DDL = """
CREATE TABLE glam_probe (
    id serial NOT NULL PRIMARY KEY,
    key varchar(100) NOT NULL,
    info jsonb NOT NULL
)"""


def desktop_table(channel: str) -> str:
    return f"glam_desktop_{channel}_aggregation"


def glean_table(product: str) -> str:
    return f"glam_{product}_aggregation"


def _desktop_ddl(channel: str) -> list[str]:
    table = desktop_table(channel)
    return [
        f"""CREATE TABLE {table} (
    id bigserial NOT NULL PRIMARY KEY,
    version bigint NOT NULL,
    os varchar(100) NOT NULL,
    build_id varchar(100) NOT NULL,
    process varchar(50) NOT NULL,
    metric varchar(200) NOT NULL,
    metric_key varchar(200) NOT NULL,
    client_agg_type varchar(100) NOT NULL,
    metric_type varchar(100) NOT NULL,
    total_users integer NOT NULL,
    histogram text NULL,
    percentiles text NULL,
    total_sample bigint NULL,
    non_norm_histogram text NULL,
    non_norm_percentiles text NULL,
    CONSTRAINT desktop_{channel}_unique_dimensions UNIQUE
        (version, os, build_id, process, metric, metric_key, client_agg_type)
)""",
        *_view_ddl(table, ["version", "USING HASH (metric)", "os"]),
    ]


def _glean_ddl(product: str) -> list[str]:
    table = glean_table(product)
    if product == "fenix":  # 0011 created it without app_id; 0014 added it at the end
        columns = """    id bigserial NOT NULL PRIMARY KEY,
    channel varchar(100) NOT NULL,
    version bigint NOT NULL,
    ping_type varchar(100) NOT NULL,
    os varchar(100) NOT NULL,
    build_id varchar(100) NOT NULL,
    build_date timestamp with time zone NULL,
    metric varchar(200) NOT NULL,
    metric_type varchar(100) NOT NULL,
    metric_key varchar(200) NOT NULL,
    client_agg_type varchar(100) NOT NULL,
    total_users integer NOT NULL,
    histogram text NULL,
    percentiles text NULL,
    app_id varchar(100) NOT NULL,
    total_sample bigint NULL,"""
    else:
        columns = """    id bigserial NOT NULL PRIMARY KEY,
    app_id varchar(100) NOT NULL,
    channel varchar(100) NOT NULL,
    version bigint NOT NULL,
    ping_type varchar(100) NOT NULL,
    os varchar(100) NOT NULL,
    build_id varchar(100) NOT NULL,
    build_date timestamp with time zone NULL,
    metric varchar(200) NOT NULL,
    metric_type varchar(100) NOT NULL,
    metric_key varchar(200) NOT NULL,
    client_agg_type varchar(100) NOT NULL,
    total_users integer NOT NULL,
    histogram text NULL,
    percentiles text NULL,
    total_sample bigint NULL,"""
    return [
        f"""CREATE TABLE {table} (
{columns}
    CONSTRAINT {product}_unique_dimensions UNIQUE
        (app_id, channel, version, ping_type, os, build_id, metric, metric_type, metric_key, client_agg_type)
)""",
        *_view_ddl(table, ["version", "app_id", "USING HASH (metric)"]),
    ]


def _view_ddl(table: str, indexes: list[str]) -> list[str]:
    view = f"view_{table}"
    out = [f"CREATE MATERIALIZED VIEW {view} AS SELECT * FROM {table}", f"CREATE UNIQUE INDEX ON {view} (id)"]
    for index in indexes:
        out.append(
            f"CREATE INDEX ON {view} {index}" if index.startswith("USING") else f"CREATE INDEX ON {view} ({index})"
        )
    return out


def postgres_ddl() -> list[str]:
    """Every statement, in order, that gives a PostgreSQL database GLAM's tables."""
    statements = [USAGE_DDL, PROBE_DDL]
    for channel in CHANNELS:
        statements += _desktop_ddl(channel)
    for product in GLEAN_PRODUCTS:
        statements += _glean_ddl(product)
    return statements


def _sqlite(statement: str) -> str | None:
    """The local SQLite stand-in: same tables and unique dimensions; no materialized views
    (the app itself only runs on PostgreSQL)."""
    if "MATERIALIZED VIEW" in statement or statement.startswith(("CREATE INDEX", "CREATE UNIQUE INDEX")):
        return None
    return (
        statement.replace("bigserial NOT NULL PRIMARY KEY", "INTEGER PRIMARY KEY AUTOINCREMENT")
        .replace("serial NOT NULL PRIMARY KEY", "INTEGER PRIMARY KEY AUTOINCREMENT")
        .replace("jsonb", "JSON")
        .replace("timestamp with time zone", "TIMESTAMP")
    )


def create_glam_tables(conn: Connection) -> list[str]:
    """Create GLAM's tables that do not exist yet (never touching existing ones); returns the
    names created."""
    existing = set(sa.inspect(conn).get_table_names())
    created = []
    pg = conn.dialect.name == "postgresql"
    current = None
    for statement in postgres_ddl():
        table = statement.split()[2] if statement.lstrip().startswith("CREATE TABLE") else None
        if table is not None:
            current = table
        if current in existing:
            continue
        sql = statement if pg else _sqlite(statement.strip())
        if sql:
            conn.execute(sa.text(sql))
        if table is not None:
            created.append(table)
    return created


def log_probe_query(conn: Connection, query: dict, at: datetime | None = None) -> None:
    """One row exactly as GLAM's ``_log_probe_query(request)`` writes it: ``PROBE_SEARCH``, the
    request's ``query`` as ``context``, ``tracking_id = ''``, ``probe_name = query["probe"]``.
    ``at`` stands in for ``auto_now_add`` (tests and the demo back-date rows)."""
    conn.execute(
        sa.text(
            'INSERT INTO glam_usage_instrumentation (action_type, "timestamp", context, tracking_id, probe_name) '
            "VALUES ('PROBE_SEARCH', :at, :context, '', :probe)"
        ),
        {"at": at or datetime.now().astimezone(), "context": json.dumps(query), "probe": query["probe"]},
    )


#: The SQL GLAM's Django ORM runs to serve ``POST /api/v1/data/`` from PostgreSQL
#: (``get_firefox_aggregations_from_pg`` and ``get_glean_aggregations_from_pg``), for a
#: query by version (``build_id = '*'``) on one os; tests read a built probe back with it.
APP_DESKTOP_READ = """
SELECT version, os, build_id, process, metric, metric_key, metric_type, client_agg_type, total_users,
       total_sample, histogram, percentiles, non_norm_histogram, non_norm_percentiles
FROM view_glam_desktop_{channel}_aggregation
WHERE metric = :probe
  AND version IN (SELECT version FROM view_glam_desktop_{channel}_aggregation ORDER BY version DESC LIMIT 1)
  AND os = :os AND build_id = '*'
"""
APP_GLEAN_READ = """
SELECT version, ping_type, os, build_id, build_date, metric, metric_type, metric_key, client_agg_type,
       total_users, total_sample, histogram, percentiles
FROM view_glam_{product}_aggregation
WHERE app_id = :app_id AND metric = :probe AND ping_type = :ping_type AND os = :os
  AND version IN (SELECT DISTINCT version FROM view_glam_{product}_aggregation WHERE metric = :probe
                  ORDER BY version DESC LIMIT :versions)
  AND {build_filter}
"""
