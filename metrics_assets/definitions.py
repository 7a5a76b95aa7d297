"""The code location: one ``Definitions`` merged from every domain, plus the resources of the
deployment chosen by ``METRICS_DEPLOYMENT`` (``local`` by default, or ``production``).

Load it with ``dagster dev`` (through workspace.yaml) or ``-m metrics_assets.definitions``.
"""

import dagster as dg

from metrics_assets import events, lake_catalog, offspot, probes, queries, storage
from metrics_assets.automation import automation_sensor
from metrics_assets.resources import build_resources

DOMAINS = {
    "offspot": offspot,
    "events": events,
    "storage": storage,
    "probes": probes,
    "queries": queries,
}

defs = dg.Definitions.merge(
    *(domain.defs for domain in DOMAINS.values()),
    # The automation condition sensor, running by default (metrics_assets/automation.py).
    # One process per run: steps run in the run worker itself (in_process_executor) instead of
    # a fresh Python per step that imports the code location again. Our steps are few and
    # sequential (DuckDB, Athena and PostgreSQL do the parallel work), so this only saves a
    # second or more of CPU per step.
    # The lake catalog is built once, from each domain's LAKE_TABLES (metrics_assets/lake_catalog.py).
    dg.Definitions(
        sensors=[automation_sensor()],
        resources=build_resources(lake_tables=lake_catalog.declarations()),
        executor=dg.in_process_executor,
    ),
)
