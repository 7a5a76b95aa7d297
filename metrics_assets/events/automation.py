"""Schedules of the events domain, and the job that applies the Athena DDL.

* ``event_rollups_hourly_schedule`` (at :15 past each hour): one run over the hour that just
  ended and the ``max(EVENT_SCHEDULE_LOOKBACK_HOURS, EVENT_LATENESS_HOURS)`` hours before it:
  an hour's row is final once the folders of its lateness bound are written, and the run after
  that rewrites it with them. One run, one query (the asset backfills as a single run).
* ``metrics_daily_schedule`` (02:30 UTC): yesterday's metrics, after the lateness window.
* ``events_day_check_schedule`` (03:00 UTC): the check ``hourly_rollups_sum_to_day_count`` for
  the latest complete day, alone (the hourly job does not run it: it scans a whole day).
* ``events_athena_ddl``: creates ``events_v0``, ``events_v1`` (partition projection) and the
  ``events_normalized`` view in Athena. Locally it does nothing (DuckDB reads the lake
  through views).
"""

from datetime import UTC, datetime, timedelta

import dagster as dg

from metrics_assets.events import config as events_config
from metrics_assets.events import ddl
from metrics_assets.events.assets import (
    event_rollups_hourly,
    hourly_partitions,
    hourly_rollups_sum_to_day_count,
    metrics,
)
from metrics_assets.resources import QueryEngine

rollups_job = dg.define_asset_job(
    "event_rollups_hourly_job",
    # The asset and its own inline checks, not the day check (a day's scan, run daily on its own).
    selection=dg.AssetSelection.assets(event_rollups_hourly)
    - dg.AssetSelection.checks(hourly_rollups_sum_to_day_count),
    description="Hourly event rollups; the schedule runs the last hour and its lateness bound as one range.",
)
day_check_job = dg.define_asset_job(
    "events_day_check_job",
    selection=dg.AssetSelection.checks(hourly_rollups_sum_to_day_count),
    description="hourly_rollups_sum_to_day_count for the latest complete day (or config day: YYYY-MM-DD).",
)
metrics_job = dg.define_asset_job(
    "events_metrics_job",
    selection=[metrics],
    description="One UTC day of post-hoc metrics.",
)


def rollup_run_request(now: datetime, lookback_hours: int) -> dg.RunRequest | dg.SkipReason:
    """The run for ``now``: the last complete hour and ``lookback_hours`` before it."""
    last = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    first = last - timedelta(hours=lookback_hours)
    keys = hourly_partitions.get_partition_keys(current_time=now)
    first_key, last_key = first.strftime("%Y-%m-%d-%H:%M"), last.strftime("%Y-%m-%d-%H:%M")
    if last_key not in keys:
        return dg.SkipReason(f"hour {last_key} is before the partitions start")
    if first_key not in keys:
        first_key = keys[0]
    return dg.RunRequest(
        run_key=f"rollups-{last_key}",
        tags={
            "dagster/asset_partition_range_start": first_key,
            "dagster/asset_partition_range_end": last_key,
        },
    )


@dg.schedule(
    name="event_rollups_hourly_schedule",
    job=rollups_job,
    cron_schedule="15 * * * *",
    execution_timezone="UTC",
    description=(
        "Hourly: the last hour plus max(EVENT_SCHEDULE_LOOKBACK_HOURS, EVENT_LATENESS_HOURS) earlier hours, in one run."
    ),
)
def event_rollups_hourly_schedule(context: dg.ScheduleEvaluationContext):
    now = context.scheduled_execution_time or datetime.now(UTC)
    lookback = max(events_config.schedule_lookback_hours(), events_config.lateness_hours())
    return rollup_run_request(now, lookback)


@dg.schedule(
    name="metrics_daily_schedule",
    job=metrics_job,
    cron_schedule="30 2 * * *",
    execution_timezone="UTC",
    description="Daily: yesterday's post-hoc metrics, after the lateness window.",
)
def metrics_daily_schedule(context: dg.ScheduleEvaluationContext):
    now = context.scheduled_execution_time or datetime.now(UTC)
    day = (now.astimezone(UTC) - timedelta(days=1)).strftime("%Y-%m-%d")
    return dg.RunRequest(run_key=f"metrics-{day}", partition_key=day)


@dg.schedule(
    name="events_day_check_schedule",
    job=day_check_job,
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
    description="Daily: hourly_rollups_sum_to_day_count for the latest complete day.",
)
def events_day_check_schedule(context: dg.ScheduleEvaluationContext):
    now = context.scheduled_execution_time or datetime.now(UTC)
    return dg.RunRequest(run_key=f"day-check-{now:%Y-%m-%d}")


@dg.op(description="Apply the events lake's Athena DDL (tables with partition projection, normalized view).")
def apply_events_athena_ddl(context: dg.OpExecutionContext, query_engine: QueryEngine) -> int:
    if query_engine.dialect != "athena":
        context.log.info("local query engine: the lake tables are DuckDB views, nothing to apply")
        return 0
    applied = 0
    for name, statement in ddl.statements():
        context.log.info(f"applying {name}")
        result = query_engine.execute(statement)
        context.log.info(f"{name}: done (query {result.query_id})")
        applied += 1
    return applied


@dg.job(name="events_athena_ddl", description="Create/refresh the event lake's Athena tables and view.")
def events_athena_ddl():
    apply_events_athena_ddl()
