"""Pure helpers for the events assets: running the domain's SQL for a slice and shaping the
results into warehouse rows. No Dagster in here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from metrics_assets.events import lake
from metrics_assets.events.metrics_registry import METRICS, Metric
from metrics_assets.resources import ObjectStore, QueryEngine
from metrics_assets.resources.query_engine import QueryResult

ROLLUP_SQL = lake.SQL_DIR / "event_rollups_hourly.sql"
DIRECT_COUNT_SQL = lake.SQL_DIR / "event_counts_direct.sql"
ROLLUP_COLUMNS = (
    "period_start", "customer_id", "service", "event_type", "schema_version",
    "event_count", "distinct_resources", "min_lag_s", "max_lag_s",
)
METRIC_COLUMNS = ("period_start", "period_end", "metric_name", "metric_event", "requester", "metric_value")
SKIP_REASONS = ("malformed_json", "missing_created_time")
#: skip_code in the rollup query's result -> reason (0 = a dated event).
SKIP_CODES = {1: "malformed_json", 2: "missing_created_time"}


@dataclass
class SliceOutput:
    rows: pa.Table
    skipped: dict[str, int]
    bytes_scanned: int
    query_metadata: list[dict] = field(default_factory=list)
    cost_usd: float | None = None


def scanned_bytes(result: QueryResult, object_store: ObjectStore, start: datetime, end: datetime,
                  lateness_hours: int) -> int:
    """Athena's own statistic; locally, the bytes of the files in the folders the query reads."""
    if result.engine != "duckdb":
        return int(result.bytes_scanned)
    from metrics_assets.events import config

    bucket = config.lake_bucket()
    total = 0
    for prefix in lake.folder_prefixes(start, end, lateness_hours):
        local = object_store.local_path(bucket, prefix)
        if local is not None:
            if local.is_dir():
                total += sum(p.stat().st_size for p in Path(local).rglob("*.json.gz") if p.is_file())
        else:
            total += sum(o.size for o in object_store.list_objects(bucket, prefix))
    return total


def _ms_to_timestamp(column: pa.ChunkedArray) -> pa.Array:
    return pc.cast(pc.cast(column, pa.int64()), pa.timestamp("ms", tz="UTC"))


def rollup_slice(engine: QueryEngine, object_store: ObjectStore, start: datetime, end: datetime,
                 lateness_hours: int) -> SliceOutput:
    """Roll up the events created in [start, end) into hourly rows (any number of hours)."""
    params = lake.slice_params(start, end, lateness_hours)
    result = engine.execute(ROLLUP_SQL.read_text(), params)
    table = result.table
    codes = pc.cast(table["skip_code"], pa.int64())
    dated = table.filter(pc.equal(codes, 0))
    skips = table.filter(pc.not_equal(codes, 0))
    skipped = {reason: 0 for reason in SKIP_REASONS}
    if skips.num_rows:
        for row in skips.group_by("skip_code").aggregate([("event_count", "sum")]).to_pylist():
            skipped[SKIP_CODES[int(row["skip_code"])]] = int(row["event_count_sum"])
    rows = pa.table({
        "period_start": _ms_to_timestamp(dated["period_start_ms"]),
        "customer_id": pc.cast(dated["customer_id"], pa.int64()),
        "service": pc.cast(dated["service"], pa.string()),
        "event_type": pc.cast(dated["event_type"], pa.string()),
        "schema_version": pc.cast(dated["schema_version"], pa.string()),
        "event_count": pc.cast(dated["event_count"], pa.int64()),
        "distinct_resources": pc.cast(dated["distinct_resources"], pa.int64()),
        "min_lag_s": pc.divide(pc.cast(dated["min_lag_ms"], pa.float64()), 1000.0),
        "max_lag_s": pc.divide(pc.cast(dated["max_lag_ms"], pa.float64()), 1000.0),
    })
    rows = rows.sort_by([(c, "ascending") for c in ROLLUP_COLUMNS[:5]])
    scanned = scanned_bytes(result, object_store, start, end, lateness_hours)
    return SliceOutput(
        rows=rows,
        skipped=skipped,
        bytes_scanned=scanned,
        query_metadata=[{**result.metadata(), "bytes_scanned": scanned}],
        cost_usd=result.cost_usd,
    )


def direct_count(engine: QueryEngine, start: datetime, end: datetime, lateness_hours: int) -> int:
    """Events created in [start, end), counted straight from the lake."""
    result = engine.execute(DIRECT_COUNT_SQL.read_text(), lake.slice_params(start, end, lateness_hours))
    return int(result.table.column(0)[0].as_py() or 0)


def _metric_rows(metric: Metric, table: pa.Table) -> pa.Table:
    """The metric's result -> ``metrics`` rows; ``metric_event`` is the JSON of its dimensions,
    built set-based by DuckDB over the Arrow result."""
    if metric.dimensions:
        pairs = ", ".join(f"'{key}', CAST(\"{col}\" AS VARCHAR)" for key, col in metric.dimensions)
        event_sql = f"CAST(json_object({pairs}) AS VARCHAR)"
    else:
        event_sql = "'{}'"
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    try:
        con.register("result", table)
        return con.sql(
            f"""SELECT make_timestamptz(CAST(period_start_ms AS BIGINT) * 1000) AS period_start,
                       make_timestamptz(CAST(period_start_ms AS BIGINT) * 1000) + INTERVAL 1 DAY AS period_end,
                       '{metric.name}' AS metric_name, {event_sql} AS metric_event,
                       CAST(requester AS VARCHAR) AS requester, CAST(metric_value AS BIGINT) AS metric_value
                FROM result ORDER BY period_start, metric_event, requester"""
        ).to_arrow_table()
    finally:
        con.close()


def metrics_slice(engine: QueryEngine, object_store: ObjectStore, start: datetime, end: datetime,
                  lateness_hours: int, metrics: tuple[Metric, ...] = METRICS) -> SliceOutput:
    """Every registered metric for the days in [start, end)."""
    params = lake.slice_params(start, end, lateness_hours)
    parts, meta, total_bytes, cost = [], [], 0, None
    skipped: dict[str, int] = {}
    for metric in metrics:
        result = engine.execute(metric.sql(), params)
        kept, no_requester = _split_no_requester(result.table)
        if no_requester:
            skipped[f"no_requester_{metric.name}"] = no_requester
        parts.append(_metric_rows(metric, kept))
        scanned = scanned_bytes(result, object_store, start, end, lateness_hours)
        meta.append({"metric": metric.name, **result.metadata(), "bytes_scanned": scanned, "rows": result.table.num_rows})
        total_bytes += scanned
        if result.cost_usd is not None:
            cost = (cost or 0.0) + result.cost_usd
    rows = pa.concat_tables(parts) if parts else pa.table({c: [] for c in METRIC_COLUMNS})
    return SliceOutput(rows=rows, skipped=skipped, bytes_scanned=total_bytes, query_metadata=meta, cost_usd=cost)


def _split_no_requester(table: pa.Table) -> tuple[pa.Table, int]:
    """A metric is per requester: events that name none cannot be attributed. The metric SQL
    keeps them (as groups with a NULL or blank requester) so that they are counted here, in
    the materialization's skips, and never silently lost. Returns the attributable rows and
    the number of events set aside."""
    requester = pc.utf8_trim_whitespace(table.column("requester").cast(pa.string()))
    missing = pc.fill_null(pc.equal(requester, ""), True)
    events = pc.sum(table.filter(missing).column("metric_value")).as_py() or 0
    return table.filter(pc.invert(missing)), int(events)
