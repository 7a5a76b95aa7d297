"""The `offspot` domain: hourly KPIs for offline hotspots (one box or a fleet) from Caddy JSON access logs.

Its assets, checks, schedules and sensors are exported as `defs`.
"""

import dagster as dg

from metrics_assets.offspot.assets import (
    offspot_fleet_kpis,
    offspot_indicators,
    offspot_kpis,
)
from metrics_assets.offspot.automation import (
    offspot_hourly_job,
    offspot_hourly_schedule,
    offspot_uploads_sensor,
)

defs = dg.Definitions(
    assets=[offspot_indicators, offspot_kpis, offspot_fleet_kpis],
    jobs=[offspot_hourly_job],
    schedules=[offspot_hourly_schedule],
    sensors=[offspot_uploads_sensor],
)
