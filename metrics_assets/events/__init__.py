"""The `events` domain: hourly event rollups and daily post-hoc metrics from the event lake.

Importing it registers the lake tables ``events_v0``, ``events_v1`` and ``events_normalized``
(see :mod:`metrics_assets.events.lake`). Its assets, checks, schedules and jobs are `defs`.
"""

import dagster as dg

from metrics_assets.events.assets import (
    event_rollups_hourly,
    hourly_rollups_sum_to_day_count,
    metrics,
)
from metrics_assets.events.automation import (
    day_check_job,
    event_rollups_hourly_schedule,
    events_athena_ddl,
    events_day_check_schedule,
    metrics_daily_schedule,
    metrics_job,
    rollups_job,
)
from metrics_assets.events.lake import LAKE_TABLES  # noqa: F401 - its lake tables (metrics_assets/lake_catalog.py)

defs = dg.Definitions(
    assets=[event_rollups_hourly, metrics],
    asset_checks=[hourly_rollups_sum_to_day_count],
    schedules=[event_rollups_hourly_schedule, metrics_daily_schedule, events_day_check_schedule],
    jobs=[rollups_job, metrics_job, day_check_job, events_athena_ddl],
)
