"""Rolling up one hour of events with DuckDB over gzip NDJSON, against a bare DuckDB
``count(*) ... GROUP BY`` over the very same files; and one hour on a 30-day lake against one
hour on a 1-day lake (the local cost must grow with the slice, not with the lake).

The lake: 1,000,000 events (quick: 50,000) created in one hour, half v0 and half v1, in
Secor's per-minute arrival folders (``dt=YYYY-MM-DD/hr=HH/min=mm``, files named
``<generation>_<partition>_<offset>.gz``); 5 % arrive in the next hour's folders (within the
lateness bound). The rollup is the asset's own code path
(``rollups.rollup_slice``: the Athena SQL translated for DuckDB, the lake views, the skip
counts, the bytes-scanned figure). The baseline is the bare form of the same rollup: one
DuckDB ``count(*)`` grouped by the rollup's grain (customer, service, event type, version; the
hour is fixed) over the same files with ``read_json``, given the files' schema (the fastest
bare form: auto-detection, or naming only some top-level keys, is 4-20x slower in DuckDB 2.0),
without the extras (created-time window, lateness folders, distinct resources, lags, skip
counts, metadata). Target: at most 1.5x.

Two informational lines split the ratio: the rollup's SQL alone (without the run's fixed
costs), and the same bare count through the lake's views, whose reader reads every line as
Athena's OpenX SerDe does (blank lines, trailing text, keys in any case; see
``events/parity.py``), which ``read_json`` cannot: the cost of that exactness alone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb

from benchmarks.run import Result, timed

HOUR = datetime(2026, 1, 5, 10, tzinfo=UTC)


def _sql_path(path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def write_lake(base, n: int) -> None:
    """``n`` events created in HOUR, per version and arrival minute, via DuckDB's COPY."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    hour_ms = int(HOUR.timestamp() * 1000)
    con.execute(f"""
        CREATE TABLE ev AS
        SELECT i,
               CASE WHEN i % 2 = 0 THEN 'v0' ELSE 'v1' END AS version,
               CASE WHEN i % 41 = 0 THEN 1 ELSE 11000 + (i * 7) % 19 END AS customer,
               (['iam-admin', 'filebeat', 'auth0', 'tiles'])[1 + (i * 13) % 4] AS service,
               {hour_ms} + (i * 3517) % 3600000 AS created_ms,
               CASE WHEN i % 20 = 0 THEN {hour_ms} + 3600000 + (i % 3000000) - ({hour_ms} + (i * 3517) % 3600000)
                    ELSE 50 + (i * 31) % 20000 END AS lag_ms,
               CASE WHEN i % 5 = 0 THEN 'res-' || (i % 97) ELSE '' END AS resource
        FROM range({n}) t(i)""")
    con.execute(f"""
        CREATE TABLE placed AS
        SELECT *, least(created_ms + lag_ms, {hour_ms} + 7199999) AS arrived_ms,
               strftime(make_timestamptz(least(created_ms + lag_ms, {hour_ms} + 7199999) * 1000), 'dt=%Y-%m-%d/hr=%H/min=%M') AS folder
        FROM ev""")
    folders = con.execute("SELECT DISTINCT version, folder FROM placed ORDER BY 1, 2").fetchall()
    for version, folder in folders:
        target = base / version / folder
        target.mkdir(parents=True, exist_ok=True)
        where = f"version = '{version}' AND folder = '{folder}'"
        if version == "v0":
            select = f"""SELECT resource AS resourceid, customer AS customerid, '' AS operationid,
                service AS servicename, service, created_ms AS createdtimestamp, arrived_ms AS arrivaltimestamp,
                [service] AS tags, {{'event': 'evt_' || (i % 5), 'type': 's', 'user_id': 'u' || (i % 50)}} AS data
                FROM placed WHERE {where}"""
        else:
            select = f"""SELECT {{'resourceId': resource, 'customerId': customer, 'operationId': '',
                'service': {{'name': service}},
                'createdAt': strftime(make_timestamptz(created_ms * 1000), '%Y-%m-%dT%H:%M:%S.%gZ'),
                'arrivedAt': strftime(make_timestamptz(arrived_ms * 1000), '%Y-%m-%dT%H:%M:%S.%gZ'),
                'tags': [service]}} AS envelope, 'evt_' || (i % 5) AS eventType,
                {{'requester': 'u' || (i % 50), 'projectId': 'p' || (i % 9)}} AS data
                FROM placed WHERE {where}"""
        con.execute(
            f"COPY ({select}) TO {_sql_path(target / '1_0_00000000000000000000.gz')} (FORMAT json, COMPRESSION gzip)"
        )
    con.close()


def run(ctx) -> list[Result]:
    from metrics_assets.events import lake, parity, rollups
    from metrics_assets.resources import DuckDBQueryEngine, LocalObjectStore
    from metrics_assets.resources.query_engine import render

    n = 50_000 if ctx.quick else 1_000_000
    objects = ctx.scratch / "objects"
    base = objects / "lake" / "events"
    write_lake(base, n)
    engine = DuckDBQueryEngine(object_store_dir=str(objects))
    store = LocalObjectStore(root_dir=str(objects))
    end = HOUR + timedelta(hours=1)
    next_hour = f"dt=2026-01-05/hr={HOUR.hour + 1:02d}"
    this_hour = f"dt=2026-01-05/hr={HOUR.hour:02d}"
    globs = {v: [str(base / v / h / "*" / "*.gz") for h in (this_hour, next_hour)] for v in ("v0", "v1")}
    schema = {name: "{" + ", ".join(f"'{c}': '{t}'" for c, t, _ in cols) + "}" for name, cols in lake.COLUMNS.items()}
    baseline_sql = f"""
        SELECT customer, service, event_type, version, count(*) FROM (
            SELECT customerid AS customer, servicename AS service, data ->> '$.event' AS event_type, 'v0' AS version
            FROM read_json({globs["v0"]}, format = 'newline_delimited',
                           compression = 'gzip', columns = {schema["events_v0"]})
            UNION ALL
            SELECT envelope.customerId, envelope.service.name, eventType, 'v1'
            FROM read_json({globs["v1"]}, format = 'newline_delimited',
                           compression = 'gzip', columns = {schema["events_v1"]})
        ) GROUP BY ALL"""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(baseline_sql).fetchall()  # warm the OS cache for both
    rollups.rollup_slice(engine, store, HOUR, end, 1, check=False)

    # The rollup's SQL alone, as the engine runs it: how the asset's time splits between the
    # per-line work (this) and the run's fixed costs (listing the slice, binding the views).
    early = rollups.Bounds.from_settings().early_hours  # as rollup_slice(..., 1) uses
    params = lake.slice_params(HOUR, end, 1, early)
    with lake.slice_tables(lake.folder_hours(HOUR, end, 1, early)):
        query_con = engine.connection()
    query_sql = render(rollups.ROLLUP_SQL.read_text(), params, "duckdb", parity.transform)
    # The same bare count through the lake's views: the reader Athena's parity needs (every line
    # read whole, as the OpenX SerDe reads it) instead of read_json's.
    views_sql = """
        SELECT customer, service, event_type, version, count(*) FROM (
            SELECT customerid AS customer, servicename AS service, data ->> '$.event' AS event_type, 'v0' AS version
            FROM events_v0
            UNION ALL
            SELECT envelope.customerId, envelope.service.name, eventType, 'v1' FROM events_v1
        ) GROUP BY ALL"""

    best_base, best_rollup, best_query, best_views = (float("inf"),) * 4
    for _ in range(3):  # interleaved; the best of each (the machine is shared)
        with timed() as t_base:
            base_rows = con.execute(baseline_sql).fetchall()
        with timed() as t_rollup:
            out = rollups.rollup_slice(engine, store, HOUR, end, 1)
        with timed() as t_query:
            query_con.sql(query_sql).fetchall()
        with timed() as t_views:
            views_rows = query_con.sql(views_sql).fetchall()
        best_base, best_rollup = min(best_base, t_base()), min(best_rollup, t_rollup())
        best_query, best_views = min(best_query, t_query()), min(best_views, t_views())
    rolled = sum(out.rows["event_count"].to_pylist())
    assert rolled == n, (rolled, n)
    assert sum(r[4] for r in base_rows) == n
    assert sorted(views_rows) == sorted(base_rows)
    return [
        Result(
            f"rollup of one hour ({n:,} events)",
            best_rollup,
            "s",
            "bare count(*) group by of the grain",
            best_base,
            max_ratio=1.5,
            note=f"{out.rows.num_rows} rollup rows, {out.bytes_scanned / 1e6:.1f} MB gzip read",
        ),
        Result(
            "  of which the rollup's SQL alone (rendered, on the engine's views)",
            best_query,
            "s",
            "the same bare scan",
            best_base,
            note="the rest of the rollup is the run's fixed cost",
        ),
        Result(
            "  the bare count through the lake's views (lines read as Athena's OpenX SerDe reads them)",
            best_views,
            "s",
            "the same bare scan with read_json",
            best_base,
            note="the cost of the exact reader alone",
        ),
        *_lake_size(ctx),
    ]


def _write_days(base, days: int, per_minute: int) -> None:
    """``days`` of Secor minute folders (both topics), ``per_minute`` small events in each file."""
    import gzip
    import json

    start = HOUR.replace(hour=0) - timedelta(days=days - 1)
    for m in range(days * 1440):
        minute = start + timedelta(minutes=m)
        ms = int(minute.timestamp() * 1000)
        for version in ("v0", "v1"):
            folder = base / version / minute.strftime("dt=%Y-%m-%d/hr=%H/min=%M")
            folder.mkdir(parents=True, exist_ok=True)
            if version == "v0":
                lines = [
                    json.dumps(
                        {
                            "customerid": 11000 + i,
                            "servicename": "auth0",
                            "createdtimestamp": ms,
                            "arrivaltimestamp": ms + 5,
                            "data": {"event": "login"},
                        }
                    )
                    for i in range(per_minute)
                ]
            else:
                iso = minute.strftime("%Y-%m-%dT%H:%M:%S.000Z")
                lines = [
                    json.dumps(
                        {
                            "envelope": {
                                "customerId": 11000 + i,
                                "service": {"name": "tiles"},
                                "createdAt": iso,
                                "arrivedAt": iso,
                            },
                            "eventType": "tile_request",
                            "data": {},
                        }
                    )
                    for i in range(per_minute)
                ]
            with gzip.open(folder / "1_0_00000000000000000000.gz", "wt", compresslevel=1) as handle:
                handle.write("\n".join(lines) + "\n")


def _lake_size(ctx) -> list[Result]:
    """One hour (the last of the lake) on a 1-day lake and on a 30-day lake (quick: 3 days), same code."""
    import os

    from metrics_assets.events import rollups
    from metrics_assets.resources import DuckDBQueryEngine, LocalObjectStore

    days = 3 if ctx.quick else 30
    os.environ.pop("EVENT_LAKE_LAYOUT", None)  # the lake tables read the settings when used
    hour = HOUR.replace(hour=22)
    setups = {}
    for label, n_days in (("small", 1), ("large", days)):
        objects = ctx.scratch / f"objects_{label}"
        _write_days(objects / "lake" / "events", n_days, per_minute=5)
        setups[label] = (DuckDBQueryEngine(object_store_dir=str(objects)), LocalObjectStore(root_dir=str(objects)))
    timings = {"small": float("inf"), "large": float("inf")}
    for _ in range(4):  # interleaved, the best of each (the machine is shared)
        for label, (engine, store) in setups.items():
            with timed() as t:
                out = rollups.rollup_slice(engine, store, hour, hour + timedelta(hours=1), 1)
            timings[label] = min(timings[label], t())
            assert sum(out.rows["event_count"].to_pylist()) == 600, out.rows
    return [
        Result(
            f"one hour on a {days}-day lake ({days * 2880:,} files)",
            timings["large"],
            "s",
            "one hour on a 1-day lake",
            timings["small"],
            max_ratio=1.3,
            note="the views list only the slice's folders",
        )
    ]
