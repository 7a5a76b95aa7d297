"""Driving the domain's Dagster objects in tests: the sensor, then the runs it asks for."""

from __future__ import annotations

import dagster as dg

from metrics_assets.queries import defs as queries_defs


def definitions(warehouse, engine) -> dg.Definitions:
    return dg.Definitions.merge(
        queries_defs, dg.Definitions(resources={"warehouse": warehouse, "query_engine": engine})
    )


def tick(defs: dg.Definitions, instance, warehouse):
    """One evaluation of historical_queries_sensor: its run requests (or [] on a skip)."""
    sensor = defs.resolve_sensor_def("historical_queries_sensor")
    context = dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse}, definitions=defs)
    result = sensor(context)
    if isinstance(result, dg.SkipReason):
        return []
    return list(result.run_requests)


def launch(defs: dg.Definitions, instance, request: dg.RunRequest):
    """Execute a run request the way the daemon would: the sensor's job, config and tags."""
    job = defs.resolve_job_def("historical_query_job")
    return job.execute_in_process(run_config=request.run_config, tags=request.tags, instance=instance)
