"""The events domain's assets: ``event_rollups_hourly`` and ``metrics``, and their checks.

Both push every scan down to the query engine (DuckDB locally, Athena in production), read
only the folders that may hold their slice's events (the lateness bounds), and replace exactly
their slice in the warehouse. A backfill of many partitions runs as one query and one write,
and gives the same rows as the partitions run one by one (see README, "Lateness").
"""

from datetime import timedelta
from typing import Any

import dagster as dg

from metrics_assets.events import checks, lake, rollups
from metrics_assets.events import config as events_config
from metrics_assets.resources import ObjectStore, QueryEngine, Warehouse
from metrics_assets.resources.metadata import preview
from metrics_assets.resources.sqltext import as_utc

GROUP = "events"
OWNERS = ["team:metrics"]
KINDS = {"athena", "duckdb", "postgres"}

hourly_partitions = dg.HourlyPartitionsDefinition(start_date=f"{events_config.PARTITIONS_START}-00:00", timezone="UTC")
daily_partitions = dg.DailyPartitionsDefinition(start_date=events_config.PARTITIONS_START, timezone="UTC")

NO_DUPLICATES = "no_duplicate_keys"
WITHIN_BOUNDS = "events_within_lateness_bounds"


def _engine_metadata(out: rollups.SliceOutput, engine: QueryEngine) -> dict:
    meta = {
        "engine": engine.dialect,
        "bytes_scanned": dg.MetadataValue.int(int(out.bytes_scanned)),
        "queries": dg.MetadataValue.json(out.query_metadata),
    }
    if out.cost_usd is not None:
        meta["estimated_cost_usd"] = dg.MetadataValue.float(round(out.cost_usd, 6))
    return meta


def _empty_metadata(out: rollups.SliceOutput) -> dict:
    text = checks.empty_hours_text(out.empty_hours)
    return {"empty_hours": dg.MetadataValue.text(text)} if text else {}


def _check_lake(fn):
    """Run ``fn``; a missing lake or slice fails the run with the settings to fix, before any write."""
    try:
        return fn()
    except lake.LakeNotFound as error:
        raise dg.Failure(description=str(error)) from error


@dg.asset(
    description=(
        "Events per hour (created time, UTC), customer, service, event type and schema version, "
        "with distinct non-blank resources and the min/max arrival lag, rolled up from the event "
        "lake (both schema versions) by the query engine. An event counts for its created hour H "
        "when its Secor folder's hour lies in [H - EVENT_EARLY_HOURS, H + EVENT_LATENESS_HOURS] "
        "(defaults 1, 1): each hour's rows depend on the lake alone, whatever the run grouping. "
        "Events outside those bounds, malformed lines and lines without a created time are counted "
        "by the hour whose folder holds them (metadata, check events_within_lateness_bounds). "
        "A missing lake or slice fails the run before anything is written."
    ),
    group_name=GROUP,
    kinds=KINDS,
    owners=OWNERS,
    metadata={"dagster/table_name": "event_rollups_hourly"},
    partitions_def=hourly_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    freshness_policy=dg.FreshnessPolicy.time_window(fail_window=timedelta(hours=3)),
    check_specs=[
        # Blocking: a duplicated key would double-count everything summed downstream.
        dg.AssetCheckSpec(
            NO_DUPLICATES,
            asset="event_rollups_hourly",
            blocking=True,
            description="No two rows share (period_start, customer, service, event type, version).",
        ),
        dg.AssetCheckSpec(
            WITHIN_BOUNDS,
            asset="event_rollups_hourly",
            description=(
                "Every dated event in the slice's folders counts for its created hour: none "
                "later than EVENT_LATENESS_HOURS, earlier than EVENT_EARLY_HOURS, or "
                "with a created time in seconds. Warns with the counts otherwise."
            ),
        ),
    ],
)
def event_rollups_hourly(
    context: dg.AssetExecutionContext,
    query_engine: QueryEngine,
    warehouse: Warehouse,
    object_store: ObjectStore,
) -> dg.MaterializeResult:
    window = context.partition_time_window
    start, end = as_utc(window.start), as_utc(window.end)
    bounds = rollups.Bounds.from_settings()
    context.log.info(
        f"rolling up events created in [{start:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M}) UTC "
        f"on {query_engine.dialect}; {checks.bounds_text(bounds)}"
    )
    out = _check_lake(lambda: rollups.rollup_slice(query_engine, object_store, start, end, bounds))
    context.log.info(f"{out.rows.num_rows} rollup rows, {out.bytes_scanned:,} bytes scanned; writing the slice")
    if out.empty_hours:
        context.log.info(f"truly empty hours (written empty): {[h.isoformat() for h in out.empty_hours]}")
    written = warehouse.replace_slice(
        "event_rollups_hourly", out.rows, "period_start >= :start AND period_start < :end", {"start": start, "end": end}
    )
    duplicates = checks.duplicate_keys(warehouse, "event_rollups_hourly", checks.ROLLUP_KEY, start, end)
    skipped_total = sum(out.skipped.values())
    if skipped_total:
        context.log.warning(f"skipped lines: {out.skipped}")
    out_of_bounds = checks.out_of_bounds(out.skipped)
    figures = checks.rollup_figures(out.rows)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(written),
            "events": dg.MetadataValue.int(figures["events"]),
            "customers": dg.MetadataValue.int(figures["customers"]),
            "max_lag_s": dg.MetadataValue.float(figures["max_lag_s"]),
            "events_out_of_bounds": dg.MetadataValue.int(sum(out_of_bounds.values())),
            "period": f"{start.isoformat()} .. {end.isoformat()}",
            "lateness_bounds": checks.bounds_text(bounds),
            "skipped_total": dg.MetadataValue.int(skipped_total),
            **{f"skipped_{reason}": dg.MetadataValue.int(n) for reason, n in out.skipped.items()},
            "skipped_foreign_files": dg.MetadataValue.int(out.foreign_files),
            **_empty_metadata(out),
            **_engine_metadata(out, query_engine),
            "preview": preview(out.rows),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=NO_DUPLICATES, passed=duplicates == 0, metadata={"duplicate_keys": duplicates}
            ),
            dg.AssetCheckResult(
                check_name=WITHIN_BOUNDS,
                passed=sum(out_of_bounds.values()) == 0,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={
                    **{k: dg.MetadataValue.int(v) for k, v in out_of_bounds.items()},
                    "bounds": checks.bounds_text(bounds),
                    "note": "counted by the hour whose folder holds them; raise EVENT_LATENESS_HOURS "
                    "(and rerun the affected hours) to count them in their created hour",
                },
            ),
        ],
    )


@dg.asset(
    description=(
        "Post-hoc daily metrics (UTC days, by created time) from the event lake: one SQL file and "
        "one registry entry per metric (metrics_assets/events/metrics_registry.py). "
        "metric_event is JSON of the metric's dimensions. Events count by the same lateness "
        "bounds as event_rollups_hourly."
    ),
    group_name=GROUP,
    kinds=KINDS,
    owners=OWNERS,
    metadata={"dagster/table_name": "metrics"},
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[
        dg.AssetCheckSpec(
            NO_DUPLICATES,
            asset="metrics",
            blocking=True,
            description="No two rows share (period_start, metric, metric_event, requester).",
        )
    ],
)
def metrics(
    context: dg.AssetExecutionContext,
    query_engine: QueryEngine,
    warehouse: Warehouse,
    object_store: ObjectStore,
) -> dg.MaterializeResult:
    window = context.partition_time_window
    start, end = as_utc(window.start), as_utc(window.end)
    bounds = rollups.Bounds.from_settings()
    context.log.info(f"computing metrics for [{start:%Y-%m-%d}, {end:%Y-%m-%d}) on {query_engine.dialect}")
    out = _check_lake(lambda: rollups.metrics_slice(query_engine, object_store, start, end, bounds))
    written = warehouse.replace_slice(
        "metrics", out.rows, "period_start >= :start AND period_start < :end", {"start": start, "end": end}
    )
    duplicates = checks.duplicate_keys(warehouse, "metrics", checks.METRICS_KEY, start, end)
    per_metric = {m["metric"]: m["rows"] for m in out.query_metadata}
    totals, requesters = checks.metric_figures(out.rows)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(written),
            **{f"total_{name}": dg.MetadataValue.int(v) for name, v in totals.items()},
            **{f"requesters_{name}": dg.MetadataValue.int(n) for name, n in requesters.items()},
            "rows_per_metric": dg.MetadataValue.json(per_metric),
            "period": f"{start.isoformat()} .. {end.isoformat()}",
            "lateness_bounds": checks.bounds_text(bounds),
            "skipped_total": dg.MetadataValue.int(sum(out.skipped.values())),
            **{f"skipped_{reason}": dg.MetadataValue.int(n) for reason, n in out.skipped.items()},
            **_empty_metadata(out),
            **_engine_metadata(out, query_engine),
            "preview": preview(out.rows),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=NO_DUPLICATES, passed=duplicates == 0, metadata={"duplicate_keys": duplicates}
            )
        ],
    )


class DayCheckConfig(dg.Config):
    """``day`` (YYYY-MM-DD) to check; blank = the latest day whose last hour has rollups."""

    day: str = ""


@dg.asset_check(
    asset=event_rollups_hourly,
    description=(
        "A day's hourly rollups add up to a direct count of that day's events in the lake, counted "
        "by the same rule (created in the day, folder within the lateness bounds). Runs on its own "
        "daily schedule (events_day_check_schedule), not with every hourly job; its bytes scanned "
        "and cost are in its metadata."
    ),
)
def hourly_rollups_sum_to_day_count(
    config: DayCheckConfig, query_engine: QueryEngine, warehouse: Warehouse
) -> dg.AssetCheckResult:
    day = checks.day_to_check(warehouse, config.day)
    if day is None:
        return dg.AssetCheckResult(passed=True, metadata={"note": "no rollups yet"})
    rolled = checks.rollup_sum(warehouse, day)
    bounds = rollups.Bounds.from_settings()
    direct, result, scanned = rollups.direct_count(query_engine, day, day + timedelta(days=1), bounds)
    metadata: dict[str, Any] = {
        "day": day.strftime("%Y-%m-%d"),
        "rollup_sum": dg.MetadataValue.int(rolled),
        "direct_count": dg.MetadataValue.int(direct),
        "difference": dg.MetadataValue.int(direct - rolled),
        "lateness_bounds": checks.bounds_text(bounds),
        "bytes_scanned": dg.MetadataValue.int(scanned),
        "engine": result.engine,
    }
    if result.cost_usd is not None:
        metadata["estimated_cost_usd"] = dg.MetadataValue.float(round(result.cost_usd, 6))
    return dg.AssetCheckResult(passed=rolled == direct, metadata=metadata)
