"""Bulk load into PostgreSQL through the warehouse, against ``psql \\copy`` of the same rows
as CSV and against ``pandas.DataFrame.to_sql``.

Targets: at least half the throughput of ``psql \\copy``; at least 10x that of ``to_sql``.
The rows are typical metrics rows (timestamp, ints, text, float, JSON text). ``to_sql`` is
measured on a tenth of the rows (it would take minutes on all); throughput is rows per second
either way.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa

from benchmarks.run import Result, timed
from metrics_assets.resources.warehouse import Warehouse, normalise_url

DDL = """CREATE TABLE {name} (
    period_start timestamptz NOT NULL, customer_id bigint NOT NULL, service text NOT NULL,
    event_type text NOT NULL, event_count bigint NOT NULL, lag_s double precision, detail text)"""


def make_rows(n: int) -> pa.Table:
    rng = np.random.default_rng(7)
    base = np.datetime64("2026-01-01T00:00:00", "us")
    services = np.array(["auth0", "tiles", "filebeat", "iam-admin"])
    return pa.table(
        {
            "period_start": pa.array(
                base + (np.arange(n) // 1000).astype("timedelta64[h]"), pa.timestamp("us", tz="UTC")
            ),
            "customer_id": pa.array(11000 + rng.integers(0, 20, n), pa.int64()),
            "service": pa.array(services[rng.integers(0, 4, n)]),
            "event_type": pa.array(np.where(rng.integers(0, 2, n) == 0, "login", "tile_request")),
            "event_count": pa.array(rng.integers(1, 10_000, n), pa.int64()),
            "lag_s": pa.array(rng.random(n) * 3600),
            "detail": pa.array([f'{{"projectId": "p{i % 97}"}}' for i in range(n)]),
        }
    )


def run(ctx) -> list[Result]:
    n = 50_000 if ctx.quick else 1_000_000
    url = ctx.fresh_pg_database()
    warehouse = Warehouse(url=url)
    warehouse.ensure_schema()
    rows = make_rows(n)
    for name in ("via_warehouse", "via_psql", "via_to_sql"):
        warehouse.execute(DDL.format(name=name))

    with timed() as t_wh:
        warehouse.append("via_warehouse", rows)
    assert warehouse.scalar("SELECT count(*) FROM via_warehouse") == n

    csv_path = ctx.scratch / "rows.csv"
    pacsv.write_csv(rows, csv_path, pacsv.WriteOptions(include_header=False))
    sa_url = sa.make_url(url)
    cmd = [
        "psql",
        "-h",
        sa_url.host or "127.0.0.1",
        "-p",
        str(sa_url.port or 5432),
        "-U",
        sa_url.username or "postgres",
        "-d",
        sa_url.database,
        "-v",
        "ON_ERROR_STOP=1",
        "-c",
        f"\\copy via_psql FROM '{csv_path}' WITH (FORMAT csv)",
    ]
    with timed() as t_psql:
        subprocess.run(cmd, check=True, capture_output=True)
    assert warehouse.scalar("SELECT count(*) FROM via_psql") == n

    m = n // 10
    frame: pd.DataFrame = rows.slice(0, m).to_pandas()
    engine = sa.create_engine(normalise_url(url))
    with timed() as t_pd:
        frame.to_sql("via_to_sql", engine, if_exists="append", index=False)
    engine.dispose()
    assert warehouse.scalar("SELECT count(*) FROM via_to_sql") == m

    wh_rps, psql_rps, pd_rps = n / t_wh(), n / t_psql(), m / t_pd()
    return [
        Result(
            "warehouse load (1M rows)" if not ctx.quick else "warehouse load",
            wh_rps,
            "rows/s",
            "psql \\copy",
            psql_rps,
            min_ratio=0.5,
        ),
        Result(
            "warehouse load",
            wh_rps,
            "rows/s",
            "pandas.to_sql",
            pd_rps,
            min_ratio=10.0,
            note=f"to_sql measured on {m:,} rows",
        ),
    ]
