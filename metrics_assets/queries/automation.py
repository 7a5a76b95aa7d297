"""The sensor that works the queue, and the schedule that purges expired results.

* ``historical_queries_sensor`` (running by default, every ``METRICS_QUERY_SENSOR_INTERVAL_S``
  seconds, 2 by default). Each tick, first it **reconciles**: every query waiting on a Dagster
  run (RUNNING, or QUEUED with its run requested) whose run is over (success, failure,
  cancellation, a dead run worker failed by run monitoring, or a run the instance does not
  know) is answered FAILED with the reason (``metrics_assets/resources/run_outcomes.py``); a
  query whose requested run never appeared within ``ORPHAN_GRACE_S`` is answered FAILED too.
  Then it **launches**: one run of ``historical_query_job`` per QUEUED query not requested
  yet (up to ``MAX_RUNS_PER_TICK``, oldest first), with the query id in the run config, as the
  run key and as the tag ``metrics/query_id``, and marks them requested. A query is requested
  once: a query the daemon could not launch is never selected again, so 1,000 orphans never
  block a new query.
* ``historical_queries_purge_schedule`` (running by default, ``METRICS_QUERY_PURGE_CRON``,
  every 5 minutes): when (and only when) some answered query is past ``expires_at``, a run
  marks them EXPIRED and deletes their rows; otherwise the tick is skipped, no run starts.
"""

from datetime import timedelta

import dagster as dg

from metrics_assets.queries import config, store
from metrics_assets.queries.assets import QUERY_ID_TAG, historical_query_job
from metrics_assets.resources import Warehouse
from metrics_assets.resources.run_outcomes import ended_runs

MAX_RUNS_PER_TICK = 25
#: A requested run that the instance still does not know after this long was never launched.
ORPHAN_GRACE_S = 120


def run_request_for(query_id: str) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=query_id,
        run_config={"ops": {"historical_query_results": {"config": {"query_id": query_id}}}},
        tags={QUERY_ID_TAG: query_id},
    )


def reconcile(instance: dg.DagsterInstance, warehouse: Warehouse, log=None) -> dict[str, str]:
    """Answer FAILED every query whose Dagster run ended without answering it. Returns
    ``{query_id: reason}`` of the queries it failed."""
    waiting = store.waiting_on_runs(warehouse)
    if not waiting:
        return {}
    # The run of each waiting query: the one it recorded (RUNNING), else the newest run
    # tagged with its id (QUEUED: the run may be queued, or cancelled before it started).
    run_of: dict[str, str] = {r["query_id"]: r["run_id"] for r in waiting if r["run_id"]}
    untracked = [r["query_id"] for r in waiting if not r["run_id"]]
    for start in range(0, len(untracked), 500):
        chunk = untracked[start : start + 500]
        for run in instance.get_runs(dg.RunsFilter(tags={QUERY_ID_TAG: chunk})):  # newest first
            run_of.setdefault(run.tags.get(QUERY_ID_TAG, ""), run.run_id)
    ended = ended_runs(instance, run_of.values())
    failed: dict[str, str] = {}
    now = store.now()
    for row in waiting:
        query_id = row["query_id"]
        run_id = run_of.get(query_id)
        if run_id is not None and run_id in ended:
            reason = f"{ended[run_id].reason} The query had no answer; submit it again."
        elif run_id is None and row["requested_at"] and now - row["requested_at"] > timedelta(seconds=ORPHAN_GRACE_S):
            reason = f"no Dagster run was launched for it within {ORPHAN_GRACE_S} s of the request; submit it again."
        else:
            continue
        if store.fail_orphan(warehouse, query_id, reason):
            failed[query_id] = reason
    if failed and log:
        log.warning(
            f"answered FAILED {len(failed)} quer{'y' if len(failed) == 1 else 'ies'} whose run ended without answer"
        )
    return failed


@dg.sensor(
    name="historical_queries_sensor",
    job=historical_query_job,
    minimum_interval_seconds=config.sensor_interval_s(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Answers FAILED the queries whose run ended without answer, then launches one run per "
        "QUEUED query of historical_queries (once per query), tagged with its query id."
    ),
)
def historical_queries_sensor(context: dg.SensorEvaluationContext, warehouse: Warehouse):
    failed = reconcile(context.instance, warehouse, context.log)
    ids = store.to_request(warehouse, MAX_RUNS_PER_TICK)
    if not ids:
        return dg.SkipReason(
            "no QUEUED query"
            + (f"; answered FAILED {len(failed)} orphaned quer{'y' if len(failed) == 1 else 'ies'}" if failed else "")
        )
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


@dg.schedule(
    name="historical_queries_purge_schedule",
    job=historical_queries_purge_job,
    cron_schedule=config.purge_cron(),
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every few minutes, only when some query result has expired: delete the rows, mark the queries EXPIRED.",
)
def historical_queries_purge_schedule(context: dg.ScheduleEvaluationContext, warehouse: Warehouse):
    expired = store.expired_count(warehouse)
    if not expired:
        return dg.SkipReason("no query result has expired")
    return dg.RunRequest(tags={"metrics/expired_queries": str(expired)})
