"""probes: ``probe_views_daily`` over GLAM's own table (no index on ``timestamp``), and the
popularity windows, in PostgreSQL. Each figure is a ratio against a baseline of the same run.

* **History does not cost**: one day of ``probe_views_daily`` on a GLAM table holding 30 days
  against the same day on a GLAM table holding that day alone (the day is found as a
  primary-key range): target <= 1.5x. Full run: 30 x 1,000,000 rows; quick: 30 x 20,000.
* **Sessionization is cheap**: ``probe_views_daily`` for that day of 1,000,000 rows (end to
  end: a Dagster run, the id-range search, the ADBC read, DuckDB, the slice replace) against a bare
  ``SELECT day, product, probe, action, count(*) ... GROUP BY`` of the same rows in the GLAM
  database: target <= 4x.
* The same on that day as GLAM writes it today (``tracking_id = ''`` everywhere): only counts
  leave the database.
* ``probe_popularity`` over 180 days of ``probe_views_daily`` against a bare ``GROUP BY``.

The GLAM databases are made with GLAM's DDL only (``glam_schema.postgres_ddl``); the rows look
like GLAM's (``PROBE_SEARCH``, the request's query as context, desktop queries without
``product``) except that 90 % of the browsing sessions carry a tracking id, as GLAM would after
the cookie fix: the hard case.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import dagster as dg
import numpy as np
import pyarrow as pa
import sqlalchemy as sa

from benchmarks.run import Result, timed
from metrics_assets.probes.assets import probe_popularity, probe_views_daily
from metrics_assets.probes.glam_schema import postgres_ddl
from metrics_assets.probes.source import GlamDatabase
from metrics_assets.resources import Warehouse
from metrics_assets.resources.warehouse import engine_for

DAY = datetime(2026, 3, 10, tzinfo=UTC)
HISTORY_DAYS = 30
PRODUCTS = ["firefox", "fenix", "fog"]
PROBES = 500


def zipf_choice(rng, n_items, size, s=1.1):
    weights = 1.0 / np.arange(1, n_items + 1) ** s
    return rng.choice(n_items, size, p=weights / weights.sum())


def usage_rows(n: int, day: datetime, seed: int) -> pa.Table:
    """A day of GLAM usage rows, in timestamp order (ids follow, as auto_now_add makes them):
    browsing sessions of 1 to 20 fetches (a minute and a half apart on average, one gap in 30
    longer than half an hour), started uniformly over the day by n // 50 browsers."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 21, n // 10)
    lengths = lengths[np.cumsum(lengths) <= n]
    lengths = np.append(lengths, n - lengths.sum()) if lengths.sum() < n else lengths
    session_of = np.repeat(np.arange(len(lengths)), lengths)
    starts = rng.uniform(0, 86_400, len(lengths))
    step = np.where(rng.random(n) < 1 / 30, rng.uniform(1900, 4000, n), rng.exponential(90, n))
    step[np.r_[True, session_of[1:] != session_of[:-1]]] = 0
    offsets = np.cumsum(step) - np.repeat(np.cumsum(step)[np.cumsum(lengths) - lengths], lengths)
    seconds = starts[session_of] + offsets
    keep_day = seconds < 86_400 - 1
    seconds = np.where(keep_day, seconds, rng.uniform(0, 86_400 - 1, n))
    order = np.argsort(seconds, kind="stable")
    browsers = rng.integers(0, max(n // 50, 10), len(lengths))
    tracking = np.array([f"t{i:06d}" for i in range(max(n // 50, 10))])[browsers][session_of]
    tracking = np.where(np.repeat(rng.random(len(lengths)) < 0.1, lengths), "", tracking)  # 10 % untracked
    product = np.repeat(rng.integers(0, len(PRODUCTS), len(lengths)), lengths)
    probe = zipf_choice(rng, PROBES, n)
    contexts = np.array(
        [
            json.dumps({"channel": "nightly", "probe": "x", "os": "*", "versions": 3, "aggregationLevel": "version"}),
            json.dumps({"product": "fenix", "app_id": "release", "probe": "x", "ping_type": "*", "os": "*"}),
            json.dumps({"product": "fog", "app_id": "release", "probe": "x", "ping_type": "*", "os": "*"}),
        ]
    )
    return pa.table(
        {
            "action_type": pa.array(np.full(n, "PROBE_SEARCH")),
            "timestamp": pa.array(
                (np.datetime64(day.replace(tzinfo=None), "us") + (seconds[order] * 1e6).astype("timedelta64[us]")),
                pa.timestamp("us", tz="UTC"),
            ),
            "context": pa.array(contexts[product[order]]),
            "tracking_id": pa.array(tracking[order]),
            "probe_name": pa.array(np.char.add("probe_", probe.astype(str))),
        }
    )


def glam_database(ctx, loader: Warehouse, days: list[datetime], per_day: int) -> str:
    url = ctx.fresh_pg_database()
    engine = engine_for(url, upgrade=False)
    with engine.begin() as conn:
        for statement in postgres_ddl():
            conn.execute(sa.text(statement))
    for day in days:
        with engine.begin() as conn:
            loader.load(conn, "glam_usage_instrumentation", usage_rows(per_day, day, seed=day.toordinal()))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE glam_usage_instrumentation"))
    return url


def views_rows(days: int) -> pa.Table:
    """probe_views_daily as the asset writes it, for the popularity benchmark."""
    rng = np.random.default_rng(7)
    frames = []
    for d in range(days):
        day = DAY - timedelta(days=d)
        for p in PRODUCTS:
            probes = np.unique(zipf_choice(rng, PROBES, 1500))
            k = len(probes)
            events = rng.integers(1, 200, k)
            frames.append(
                pa.table(
                    {
                        "period_start": pa.array([day] * k, pa.timestamp("us", tz="UTC")),
                        "product": pa.array([p] * k),
                        "probe_name": pa.array(np.char.add("probe_", probes.astype(str))),
                        "action_type": pa.array(["PROBE_SEARCH"] * k),
                        "events": pa.array(events, pa.int64()),
                        "sessions": pa.array(events // 2 + 1, pa.int64()),
                        "tracking_ids": pa.array(events // 3 + 1, pa.int64()),
                        "tracked_events": pa.array(events, pa.int64()),
                    }
                )
            )
    return pa.concat_tables(frames)


def materialize_day(warehouse: Warehouse, glam_url: str) -> None:
    resources = {"warehouse": warehouse, "probes_glam": GlamDatabase(url=glam_url)}
    assert dg.materialize([probe_views_daily], partition_key=DAY.date().isoformat(), resources=resources).success


def run(ctx) -> list[Result]:
    per_day = 20_000 if ctx.quick else 1_000_000
    warehouse = Warehouse(url=ctx.fresh_pg_database())
    warehouse.ensure_schema()
    days = [DAY - timedelta(days=HISTORY_DAYS - 1 - d) for d in range(HISTORY_DAYS)]
    print(f"   GLAM table of that day alone: {per_day:,} rows (COPY) ...", flush=True)
    alone_url = glam_database(ctx, warehouse, [DAY], per_day)
    print(f"   GLAM table of {HISTORY_DAYS} days: {HISTORY_DAYS * per_day:,} rows (COPY) ...", flush=True)
    history_url = glam_database(ctx, warehouse, [*days, DAY + timedelta(days=1)], per_day)

    baseline_sql = sa.text("""SELECT date_trunc('day', "timestamp") AS d, coalesce(context ->> 'product', 'firefox') AS product,
                                     probe_name, action_type, count(*) FROM glam_usage_instrumentation
                              WHERE "timestamp" >= :start AND "timestamp" < :end GROUP BY 1, 2, 3, 4""")
    bounds = {"start": DAY, "end": DAY + timedelta(days=1)}
    alone = engine_for(alone_url, upgrade=False)
    with alone.connect() as conn:
        conn.execute(baseline_sql, bounds).fetchall()  # warm the cache for both
    materialize_day(warehouse, alone_url)
    with timed() as t_base, alone.connect() as conn:
        conn.execute(baseline_sql, bounds).fetchall()
    with timed() as t_alone:
        materialize_day(warehouse, alone_url)
    expected = per_day
    assert warehouse.scalar("SELECT sum(events) FROM probe_views_daily") == expected
    materialize_day(warehouse, history_url)  # warm
    with timed() as t_history:
        materialize_day(warehouse, history_url)
    assert warehouse.scalar("SELECT sum(events) FROM probe_views_daily") == expected

    # GLAM as it is today: tracking_id = '' on every row (no sessions to cut).
    with alone.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("UPDATE glam_usage_instrumentation SET tracking_id = ''"))
        conn.execute(sa.text("VACUUM FULL ANALYZE glam_usage_instrumentation"))
        conn.execute(baseline_sql, bounds).fetchall()
    materialize_day(warehouse, alone_url)
    with timed() as t_base_untracked, alone.connect() as conn:
        conn.execute(baseline_sql, bounds).fetchall()
    with timed() as t_untracked:
        materialize_day(warehouse, alone_url)
    assert warehouse.scalar("SELECT sum(events) FROM probe_views_daily") == expected

    pop_days = 10 if ctx.quick else 180
    warehouse.execute("DELETE FROM probe_views_daily")
    table = views_rows(pop_days)
    warehouse.append("probe_views_daily", table)
    warehouse.append(
        "glam_probe_catalogue",
        [
            {"product": p, "probe_name": f"probe_{i}", "metric_type": "histogram-exponential", "source": "bench"}
            for p in PRODUCTS
            for i in range(PROBES)
        ],
    )
    warehouse.execute("ANALYZE probe_views_daily")
    pop_base_sql = """SELECT product, probe_name, sum(events) FROM probe_views_daily
                      WHERE period_start >= :start GROUP BY 1, 2"""
    pop_bounds = {"start": DAY - timedelta(days=pop_days)}
    warehouse.fetch_all(pop_base_sql, pop_bounds)
    with timed() as t_pop_base:
        warehouse.fetch_all(pop_base_sql, pop_bounds)
    with timed() as t_pop:
        assert dg.materialize([probe_popularity], resources={"warehouse": warehouse}).success

    label = f"{per_day:,} rows"
    return [
        Result(
            f"probe_views_daily, one day ({label}) in a {HISTORY_DAYS}-day GLAM table",
            t_history(),
            "s",
            "the same day in a table holding it alone",
            t_alone(),
            max_ratio=1.5,
            note="the day is a primary-key range: no index on timestamp",
        ),
        Result(
            f"probe_views_daily, one day of {label}",
            t_alone(),
            "s",
            "bare GROUP BY count(*)",
            t_base(),
            max_ratio=4.0,
            note="end to end: run, id-range search, ADBC read (binary COPY), DuckDB sessions, slice replace",
        ),
        Result(
            f"probe_views_daily, one day of {label} as GLAM writes them today (no tracking ids)",
            t_untracked(),
            "s",
            "bare GROUP BY count(*)",
            t_base_untracked(),
            max_ratio=4.0,
            note="untracked rows are counted by PostgreSQL; only the counts travel",
        ),
        Result(
            f"probe_popularity, 3 windows over {pop_days} days ({table.num_rows:,} rows)",
            t_pop(),
            "s",
            "bare GROUP BY sum(events)",
            t_pop_base(),
            max_ratio=50.0,
            note="end to end incl. catalogue temp table, ranks, flags, whole-table replace",
        ),
    ]
