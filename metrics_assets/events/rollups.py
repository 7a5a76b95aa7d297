"""Pure helpers for the events assets: running the domain's SQL for a slice and shaping the
results into warehouse rows. No Dagster in here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from metrics_assets.events import config, lake, parity
from metrics_assets.events.metrics_registry import METRICS, Metric
from metrics_assets.resources import ObjectStore, QueryEngine
from metrics_assets.resources.duckdb_session import open_session
from metrics_assets.resources.query_engine import QueryResult
from metrics_assets.resources.sqltext import ident, literal

ROLLUP_SQL = lake.SQL_DIR / "event_rollups_hourly.sql"
DIRECT_COUNT_SQL = lake.SQL_DIR / "event_counts_direct.sql"
ROLLUP_COLUMNS = (
    "period_start",
    "customer_id",
    "service",
    "event_type",
    "schema_version",
    "event_count",
    "distinct_resources",
    "min_lag_s",
    "max_lag_s",
)
METRIC_COLUMNS = ("period_start", "period_end", "metric_name", "metric_event", "requester", "metric_value")
#: status in the rollup query's result -> reason (0 = counted in its created hour).
SKIP_CODES = {
    1: "malformed_json",
    2: "missing_created_time",
    3: "created_time_not_ms",
    4: "late_beyond_bound",
    5: "early_beyond_bound",
}
SKIP_REASONS = tuple(SKIP_CODES.values())
#: the reasons that are events outside the lateness bounds (the `events_within_lateness_bounds` check)
OUT_OF_BOUNDS = ("created_time_not_ms", "late_beyond_bound", "early_beyond_bound")


@dataclass
class Bounds:
    lateness_hours: int
    early_hours: int

    @classmethod
    def from_settings(cls) -> Bounds:
        return cls(config.lateness_hours(), config.early_hours())


@dataclass
class SliceOutput:
    rows: pa.Table
    skipped: dict[str, int]
    bytes_scanned: int
    query_metadata: list[dict] = field(default_factory=list)
    cost_usd: float | None = None
    empty_hours: list[datetime] = field(default_factory=list)
    foreign_files: int = 0


def _ms_to_timestamp(column: pa.ChunkedArray) -> pa.Array:
    return pc.cast(pc.cast(column, pa.int64()), pa.timestamp("ms", tz="UTC"))


def run_slice_query(
    engine: QueryEngine, sql: str, start: datetime, end: datetime, bounds: Bounds
) -> tuple[QueryResult, int, int]:
    """Run a slice query reading only the slice's folders; returns the result, the bytes read
    (Athena's statistic, or the local files' size) and the number of foreign files skipped."""
    params = lake.slice_params(start, end, bounds.lateness_hours, bounds.early_hours)
    hours = lake.folder_hours(start, end, bounds.lateness_hours, bounds.early_hours)
    with lake.slice_tables(hours) as seen:
        result = engine.execute(sql, params, transform=parity.transform)
    if result.engine != "duckdb":
        return result, int(result.bytes_scanned), 0
    return result, sum(f.bytes() for f in seen.values()), sum(len(f.foreign) for f in seen.values())


def rollup_slice(
    engine: QueryEngine,
    object_store: ObjectStore,
    start: datetime,
    end: datetime,
    bounds: Bounds | int,
    check: bool = True,
) -> SliceOutput:
    """Roll up the events created in [start, end) into hourly rows (any number of hours)."""
    bounds = bounds if isinstance(bounds, Bounds) else Bounds(bounds, config.early_hours())
    checked = lake.check_slice(object_store, start, end) if check else None
    result, scanned, foreign = run_slice_query(engine, ROLLUP_SQL.read_text(), start, end, bounds)
    table = result.table
    codes = pc.cast(table["status"], pa.int64())
    dated = table.filter(pc.equal(codes, 0))
    skips = table.filter(pc.not_equal(codes, 0))
    skipped = dict.fromkeys(SKIP_REASONS, 0)
    if skips.num_rows:
        for row in skips.group_by("status").aggregate([("event_count", "sum")]).to_pylist():
            skipped[SKIP_CODES[int(row["status"])]] = int(row["event_count_sum"])
    rows = pa.table(
        {
            "period_start": _ms_to_timestamp(dated["period_start_ms"]),
            "customer_id": pc.cast(dated["customer_id"], pa.int64()),
            "service": pc.cast(dated["service"], pa.string()),
            "event_type": pc.cast(dated["event_type"], pa.string()),
            "schema_version": pc.cast(dated["schema_version"], pa.string()),
            "event_count": pc.cast(dated["event_count"], pa.int64()),
            "distinct_resources": pc.cast(dated["distinct_resources"], pa.int64()),
            "min_lag_s": pc.divide(pc.cast(dated["min_lag_ms"], pa.float64()), 1000.0),
            "max_lag_s": pc.divide(pc.cast(dated["max_lag_ms"], pa.float64()), 1000.0),
        }
    )
    rows = rows.sort_by([(c, "ascending") for c in ROLLUP_COLUMNS[:5]])
    return SliceOutput(
        rows=rows,
        skipped=skipped,
        bytes_scanned=scanned,
        query_metadata=[{**result.metadata(), "bytes_scanned": scanned}],
        cost_usd=result.cost_usd,
        empty_hours=checked.empty_hours if checked else [],
        foreign_files=foreign,
    )


def direct_count(
    engine: QueryEngine, start: datetime, end: datetime, bounds: Bounds | int
) -> tuple[int, QueryResult, int]:
    """Events created in [start, end) that count for their created hour, counted straight from
    the lake; with the query's result and the bytes it read."""
    bounds = bounds if isinstance(bounds, Bounds) else Bounds(bounds, config.early_hours())
    result, scanned, _ = run_slice_query(engine, DIRECT_COUNT_SQL.read_text(), start, end, bounds)
    return int(result.table.column(0)[0].as_py() or 0), result, scanned


def _metric_rows(metric: Metric, table: pa.Table) -> pa.Table:
    """The metric's result -> ``metrics`` rows; ``metric_event`` is the JSON of its dimensions,
    built set-based by DuckDB over the Arrow result."""
    if metric.dimensions:
        pairs = ", ".join(f"{literal(key)}, CAST({ident(col)} AS VARCHAR)" for key, col in metric.dimensions)
        event_sql = f"CAST(json_object({pairs}) AS VARCHAR)"
    else:
        event_sql = "'{}'"
    con = open_session()
    try:
        con.register("result", table)
        return con.sql(
            f"""SELECT make_timestamptz(CAST(period_start_ms AS BIGINT) * 1000) AS period_start,
                       make_timestamptz(CAST(period_start_ms AS BIGINT) * 1000) + INTERVAL 1 DAY AS period_end,
                       {literal(metric.name)} AS metric_name, {event_sql} AS metric_event,
                       CAST(requester AS VARCHAR) AS requester, CAST(metric_value AS BIGINT) AS metric_value
                FROM result ORDER BY period_start, metric_event, requester"""
        ).to_arrow_table()
    finally:
        con.close()


def metrics_slice(
    engine: QueryEngine,
    object_store: ObjectStore,
    start: datetime,
    end: datetime,
    bounds: Bounds | int,
    metrics: tuple[Metric, ...] = METRICS,
    check: bool = True,
) -> SliceOutput:
    """Every registered metric for the days in [start, end)."""
    bounds = bounds if isinstance(bounds, Bounds) else Bounds(bounds, config.early_hours())
    checked = lake.check_slice(object_store, start, end) if check else None
    parts, meta, total_bytes, cost = [], [], 0, None
    skipped: dict[str, int] = {}
    for metric in metrics:
        result, scanned, _ = run_slice_query(engine, metric.sql(), start, end, bounds)
        kept, no_requester = _split_no_requester(result.table)
        if no_requester:
            skipped[f"no_requester_{metric.name}"] = no_requester
        parts.append(_metric_rows(metric, kept))
        meta.append(
            {"metric": metric.name, **result.metadata(), "bytes_scanned": scanned, "rows": result.table.num_rows}
        )
        total_bytes += scanned
        if result.cost_usd is not None:
            cost = (cost or 0.0) + result.cost_usd
    rows = pa.concat_tables(parts) if parts else pa.table({c: [] for c in METRIC_COLUMNS})
    return SliceOutput(
        rows=rows,
        skipped=skipped,
        bytes_scanned=total_bytes,
        query_metadata=meta,
        cost_usd=cost,
        empty_hours=checked.empty_hours if checked else [],
    )


def _split_no_requester(table: pa.Table) -> tuple[pa.Table, int]:
    """A metric is per requester: events that name none cannot be attributed. The metric SQL
    keeps them (as groups with a NULL or blank requester) so that they are counted here, in
    the materialization's skips, and never silently lost. Returns the attributable rows and
    the number of events set aside."""
    requester = pc.utf8_trim_whitespace(table.column("requester").cast(pa.string()))
    missing = pc.fill_null(pc.equal(requester, ""), True)
    events = pc.sum(table.filter(missing).column("metric_value")).as_py() or 0
    return table.filter(pc.invert(missing)), int(events)
