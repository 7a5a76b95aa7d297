"""The events domain's assets: ``event_rollups_hourly`` and ``metrics``, and their checks.

Both push every scan down to the query engine (DuckDB locally, Athena in production), read
only the folders of their slice plus the lateness window, and replace exactly their slice in
the warehouse. A backfill of many partitions runs as one query and one write.
"""


from datetime import UTC, datetime, timedelta

import dagster as dg

from metrics_assets.events import config as events_config
from metrics_assets.events import lake, rollups
from metrics_assets.resources import ObjectStore, QueryEngine, Warehouse
from metrics_assets.resources.metadata import preview

GROUP = "events"
OWNERS = ["team:metrics"]
KINDS = {"athena", "duckdb", "postgres"}

hourly_partitions = dg.HourlyPartitionsDefinition(start_date=f"{events_config.PARTITIONS_START}-00:00", timezone="UTC")
daily_partitions = dg.DailyPartitionsDefinition(start_date=events_config.PARTITIONS_START, timezone="UTC")

NO_DUPLICATES = "no_duplicate_keys"
ROLLUP_KEY = ("period_start", "customer_id", "service", "event_type", "schema_version")
METRICS_KEY = ("period_start", "metric_name", "metric_event", "requester")


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def _duplicates(warehouse: Warehouse, table: str, key: tuple[str, ...], start: datetime, end: datetime) -> int:
    cols = ", ".join(key)
    return int(warehouse.scalar(
        f"SELECT count(*) FROM (SELECT {cols} FROM {table} WHERE period_start >= :start AND period_start < :end "
        f"GROUP BY {cols} HAVING count(*) > 1) d",
        {"start": start, "end": end},
    ))


def _engine_metadata(out: rollups.SliceOutput, engine: QueryEngine) -> dict:
    meta = {
        "engine": engine.dialect,
        "bytes_scanned": dg.MetadataValue.int(int(out.bytes_scanned)),
        "queries": dg.MetadataValue.json(out.query_metadata),
    }
    if out.cost_usd is not None:
        meta["estimated_cost_usd"] = dg.MetadataValue.float(round(out.cost_usd, 6))
    return meta


@dg.asset(
    name="event_rollups_hourly",
    description=(
        "Events per hour (created time, UTC), customer, service, event type and schema version, "
        "with distinct non-blank resources and the min/max arrival lag, rolled up from the event "
        "lake (both schema versions) by the query engine. Reads the hour's arrival folders plus "
        "the lateness window (EVENT_LATENESS_HOURS, default 1). Malformed lines and lines without "
        "a created time are skipped and counted."
    ),
    group_name=GROUP,
    kinds=KINDS,
    owners=OWNERS,
    partitions_def=hourly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    freshness_policy=dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=3)),
    # Blocking: a duplicated key would double-count everything summed downstream.
    check_specs=[dg.AssetCheckSpec(NO_DUPLICATES, asset="event_rollups_hourly", blocking=True,
                                   description="No two rows share (period_start, customer, service, event type, version).")],
)
def event_rollups_hourly(
    context: dg.AssetExecutionContext,
    query_engine: QueryEngine,
    warehouse: Warehouse,
    object_store: ObjectStore,
):
    lake.register_lake_tables()
    window = context.partition_time_window
    start, end = _utc(window.start), _utc(window.end)
    lateness = events_config.lateness_hours()
    context.log.info(f"rolling up events created in [{start:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M}) UTC "
                     f"on {query_engine.dialect}, lateness window {lateness} h")
    out = rollups.rollup_slice(query_engine, object_store, start, end, lateness)
    context.log.info(f"{out.rows.num_rows} rollup rows, {out.bytes_scanned:,} bytes scanned; writing the slice")
    written = warehouse.replace_slice(
        "event_rollups_hourly", out.rows, "period_start >= :start AND period_start < :end", {"start": start, "end": end}
    )
    duplicates = _duplicates(warehouse, "event_rollups_hourly", ROLLUP_KEY, start, end)
    skipped_total = sum(out.skipped.values())
    if skipped_total:
        context.log.warning(f"skipped lines: {out.skipped}")
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(written),
            "events": dg.MetadataValue.int(int(sum(out.rows["event_count"].to_pylist()))),
            "period": f"{start.isoformat()} .. {end.isoformat()}",
            "lateness_hours": lateness,
            "skipped_total": dg.MetadataValue.int(skipped_total),
            **{f"skipped_{reason}": dg.MetadataValue.int(n) for reason, n in out.skipped.items()},
            **_engine_metadata(out, query_engine),
            "preview": preview(out.rows),
        },
        check_results=[dg.AssetCheckResult(
            check_name=NO_DUPLICATES, passed=duplicates == 0, metadata={"duplicate_keys": duplicates}
        )],
    )


@dg.asset(
    name="metrics",
    description=(
        "Post-hoc daily metrics (UTC days, by created time) from the event lake: one SQL file and "
        "one registry entry per metric (metrics_assets/events/metrics_registry.py). "
        "metric_event is JSON of the metric's dimensions."
    ),
    group_name=GROUP,
    kinds=KINDS,
    owners=OWNERS,
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[dg.AssetCheckSpec(NO_DUPLICATES, asset="metrics", blocking=True,
                                   description="No two rows share (period_start, metric, metric_event, requester).")],
)
def metrics(
    context: dg.AssetExecutionContext,
    query_engine: QueryEngine,
    warehouse: Warehouse,
    object_store: ObjectStore,
):
    lake.register_lake_tables()
    window = context.partition_time_window
    start, end = _utc(window.start), _utc(window.end)
    lateness = events_config.lateness_hours()
    context.log.info(f"computing metrics for [{start:%Y-%m-%d}, {end:%Y-%m-%d}) on {query_engine.dialect}")
    out = rollups.metrics_slice(query_engine, object_store, start, end, lateness)
    written = warehouse.replace_slice(
        "metrics", out.rows, "period_start >= :start AND period_start < :end", {"start": start, "end": end}
    )
    duplicates = _duplicates(warehouse, "metrics", METRICS_KEY, start, end)
    per_metric = {m["metric"]: m["rows"] for m in out.query_metadata}
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(written),
            "rows_per_metric": dg.MetadataValue.json(per_metric),
            "period": f"{start.isoformat()} .. {end.isoformat()}",
            "lateness_hours": lateness,
            "skipped_total": dg.MetadataValue.int(sum(out.skipped.values())),
            **{f"skipped_{reason}": dg.MetadataValue.int(n) for reason, n in out.skipped.items()},
            **_engine_metadata(out, query_engine),
            "preview": preview(out.rows),
        },
        check_results=[dg.AssetCheckResult(
            check_name=NO_DUPLICATES, passed=duplicates == 0, metadata={"duplicate_keys": duplicates}
        )],
    )


class DayCheckConfig(dg.Config):
    """``day`` (YYYY-MM-DD) to check; blank = the latest day whose last hour has rollups."""

    day: str = ""


@dg.asset_check(
    asset=event_rollups_hourly,
    name="hourly_rollups_sum_to_day_count",
    description="A day's hourly rollups add up to a direct count of that day's events in the lake.",
)
def hourly_rollups_sum_to_day_count(
    config: DayCheckConfig, query_engine: QueryEngine, warehouse: Warehouse
) -> dg.AssetCheckResult:
    lake.register_lake_tables()
    if config.day:
        day = datetime.strptime(config.day, "%Y-%m-%d").replace(tzinfo=UTC)
    else:
        latest = warehouse.scalar("SELECT max(period_start) FROM event_rollups_hourly")
        if latest is None:
            return dg.AssetCheckResult(passed=True, metadata={"note": "no rollups yet"})
        if isinstance(latest, str):
            latest = datetime.fromisoformat(latest)
        latest = latest.replace(tzinfo=UTC) if latest.tzinfo is None else latest.astimezone(UTC)
        day = latest.replace(hour=0, minute=0, second=0, microsecond=0)
        if latest.hour != 23:
            day -= timedelta(days=1)
    end = day + timedelta(days=1)
    rolled = int(warehouse.scalar(
        "SELECT COALESCE(sum(event_count), 0) FROM event_rollups_hourly WHERE period_start >= :start AND period_start < :end",
        {"start": day, "end": end},
    ) or 0)
    direct = rollups.direct_count(query_engine, day, end, events_config.lateness_hours())
    return dg.AssetCheckResult(
        passed=rolled == direct,
        metadata={"day": day.strftime("%Y-%m-%d"), "rollup_sum": rolled, "direct_count": direct},
    )
