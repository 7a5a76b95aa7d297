"""The `probes` domain: GLAM probe popularity, sessions, release effects, the hot-probe list,
and probe builds (nightly for the hot list, on demand through ``probe_build_requests``).

Exports ``defs``; its one resource of its own is ``probes_glam`` (the GLAM database,
``GLAM_DATABASE_URL``, the warehouse when unset).
"""

import dagster as dg

from metrics_assets import settings
from metrics_assets.probes.assets import (
    glam_aggregations,
    glam_probe_catalogue,
    probe_aggregates,
    probe_build_requests,
    probe_popularity,
    probe_views_daily,
    probes_to_build,
    product_releases,
    release_correlation,
    usage_sessions,
)
from metrics_assets.probes.automation import (
    probe_build_failure_sensor,
    probe_build_job,
    probe_build_requests_sensor,
    probes_daily_job,
    probes_daily_schedule,
    probes_nightly_build_sensor,
)
from metrics_assets.probes.source import GlamDatabase
from metrics_assets.probes.telemetry import LAKE_TABLES  # noqa: F401 - its lake tables (metrics_assets/lake_catalog.py)


def glam_resource() -> GlamDatabase:
    """``GLAM_DATABASE_URL`` (read through the settings object to decide) handed to Dagster as
    ``EnvVar`` (a secret: its value is never in the definitions), or the warehouse when unset."""
    if settings.current().glam_database_url:
        return GlamDatabase(url=dg.EnvVar("GLAM_DATABASE_URL"))
    return GlamDatabase()


ASSETS: list[dg.AssetsDefinition | dg.AssetSpec] = [
    glam_probe_catalogue,
    product_releases,
    probe_views_daily,
    usage_sessions,
    probe_popularity,
    release_correlation,
    probes_to_build,
    probe_build_requests,
    probe_aggregates,
    glam_aggregations,
]

defs = dg.Definitions(
    assets=ASSETS,
    jobs=[probes_daily_job, probe_build_job],
    schedules=[probes_daily_schedule],
    sensors=[probes_nightly_build_sensor, probe_build_requests_sensor, probe_build_failure_sensor],
    resources={"probes_glam": glam_resource()},
)
