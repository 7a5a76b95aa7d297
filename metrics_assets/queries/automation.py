"""The sensor that works the queue, and the schedule that purges expired results.

* ``historical_queries_sensor`` (running by default, every ``METRICS_QUERY_SENSOR_INTERVAL_S``
  seconds, 10 by default): one run of ``historical_query_job`` per QUEUED query, with the query
  id in the run config, as the run key (so a query is launched once however many ticks see it
  QUEUED) and as the tag ``metrics/query_id``.
* ``historical_queries_purge_schedule`` (running by default, ``METRICS_QUERY_PURGE_CRON``,
  every 5 minutes): marks FINISHED/FAILED queries past ``expires_at`` EXPIRED and deletes
  their rows.
"""


import dagster as dg

from metrics_assets.queries import config, store
from metrics_assets.queries.assets import QUERY_ID_TAG, historical_query_job
from metrics_assets.resources import Warehouse

MAX_RUNS_PER_TICK = 25


def run_request_for(query_id: str) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=query_id,
        run_config={"ops": {"historical_query_results": {"config": {"query_id": query_id}}}},
        tags={QUERY_ID_TAG: query_id},
    )


@dg.sensor(
    name="historical_queries_sensor",
    job=historical_query_job,
    minimum_interval_seconds=config.sensor_interval_s(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Launches one run per QUEUED query in historical_queries, tagged with its query id.",
)
def historical_queries_sensor(context: dg.SensorEvaluationContext, warehouse: Warehouse):
    ids = store.queued(warehouse, limit=MAX_RUNS_PER_TICK)
    if not ids:
        return dg.SkipReason("no QUEUED query")
    context.log.info(f"launching {len(ids)} queued quer{'y' if len(ids) == 1 else 'ies'}")
    return dg.SensorResult(run_requests=[run_request_for(q) for q in ids])


@dg.op(description="Mark expired queries EXPIRED and delete their result rows.")
def purge_expired_queries(context: dg.OpExecutionContext, warehouse: Warehouse) -> None:
    purged = store.purge_expired(warehouse)
    context.log.info(f"purged {len(purged)} expired quer{'y' if len(purged) == 1 else 'ies'}")
    context.log_event(
        dg.AssetObservation(
            asset_key="historical_query_results",
            metadata={"purged_queries": len(purged), "purged_query_ids": ", ".join(purged[:50])},
        )
    )


@dg.job(name="historical_queries_purge_job", description="Purge expired ad hoc query results.")
def historical_queries_purge_job():
    purge_expired_queries()


historical_queries_purge_schedule = dg.ScheduleDefinition(
    name="historical_queries_purge_schedule",
    job=historical_queries_purge_job,
    cron_schedule=config.purge_cron(),
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every few minutes: expired query results are deleted and their queries marked EXPIRED.",
)
