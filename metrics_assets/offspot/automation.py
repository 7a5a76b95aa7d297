"""When the offspot assets run: each closed hour, shortly after it closes, then the KPIs."""

import dagster as dg

from metrics_assets.offspot.assets import offspot_indicators, offspot_kpis

offspot_hourly_job = dg.define_asset_job(
    "offspot_hourly_job",
    selection=dg.AssetSelection.assets(offspot_indicators, offspot_kpis),
    description="One closed hour of offspot indicators, then the KPIs recomputed from them.",
)

#: Five minutes past each hour, the hour that just closed (Caddy flushes each line as written;
#: the margin covers heartbeat timers and clock drift). Late logs: rematerialize their hours.
offspot_hourly_schedule = dg.build_schedule_from_partitioned_job(
    offspot_hourly_job,
    name="offspot_hourly_schedule",
    minute_of_hour=5,
    description="Materializes each closed hour's offspot indicators five minutes after it closes, then the KPIs.",
)
