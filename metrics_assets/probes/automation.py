"""When the probes assets run.

* ``probes_daily_schedule`` (01:15 UTC): yesterday's ``probe_views_daily`` and ``usage_sessions``.
  ``probe_popularity``, ``release_correlation`` and ``probes_to_build`` follow on their own
  (``AutomationCondition.eager()`` on the latest day of ``probe_views_daily``).
* ``probes_nightly_build_sensor``: each new ``probes_to_build`` materialization launches one
  ``probe_build_job`` run per probe in the table, exactly those, adding their partitions.
* ``probe_build_requests_sensor``: claims PENDING rows of ``probe_build_requests`` and launches
  one run per probe (see :mod:`metrics_assets.probes.requests`). A request for a probe whose
  build is queued or under way, on demand or nightly, joins that run and gets its answer.
* ``probe_build_failure_sensor``: a build run that fails outside the asset's own code (a crash,
  a resource that cannot start) answers its requests at once, FAILED with the run's error.
  The requests sensor is the guarantee: every tick it answers the requests of every run that
  is over (including cancellations, queued or mid-build, and workers killed and caught by run
  monitoring) and of claims never started (``PROBES_CLAIM_TIMEOUT_MINUTES``).
"""

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import dagster as dg

from metrics_assets.probes import config, requests
from metrics_assets.probes.assets import (
    probe_aggregates,
    probe_partitions,
    probe_views_daily,
    usage_sessions,
)
from metrics_assets.probes.source import GlamDatabase
from metrics_assets.resources import Warehouse
from metrics_assets.resources.run_outcomes import ended_runs

probes_daily_job = dg.define_asset_job(
    "probes_daily_job",
    selection=[probe_views_daily, usage_sessions],
    description="One day of probe views and sessions from the GLAM usage log.",
)

probe_build_job = dg.define_asset_job(
    "probe_build_job",
    selection=[probe_aggregates],
    description="Build one probe's distribution (partition product/probe_name).",
)

probes_daily_schedule = dg.build_schedule_from_partitioned_job(
    probes_daily_job,
    name="probes_daily_schedule",
    hour_of_day=1,
    minute_of_hour=15,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="01:15 UTC: yesterday's probe_views_daily and usage_sessions; the rest of the chain follows.",
)


def _new_partitions(context, keys: list[str]) -> list:
    existing = set(context.instance.get_dynamic_partitions(probe_partitions.name))
    new = sorted(set(keys) - existing)
    return [probe_partitions.build_add_request(new)] if new else []


@dg.sensor(
    name="probes_nightly_build_sensor",
    job=probe_build_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Builds exactly the probes in probes_to_build, each time it is materialized.",
)
def probes_nightly_build_sensor(context: dg.SensorEvaluationContext, warehouse: Warehouse):
    records = context.instance.fetch_materializations(dg.AssetKey("probes_to_build"), limit=1).records
    if not records:
        return dg.SkipReason("probes_to_build has never been materialized")
    latest = records[0].storage_id
    if context.cursor and int(context.cursor) >= latest:
        return dg.SkipReason(f"probes_to_build materialization {latest} already built")
    rows = warehouse.fetch_all("SELECT product, probe_name, reason FROM probes_to_build ORDER BY product, probe_name")
    keys = [requests.partition_key(r["product"], r["probe_name"]) for r in rows]
    context.log.info(f"probes_nightly_build_sensor: {len(keys)} probes to build (materialization {latest})")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"nightly:{latest}:{key}", partition_key=key, tags={"probes/build_reason": row["reason"]}
            )
            for key, row in zip(keys, rows, strict=False)
        ],
        dynamic_partitions_requests=_new_partitions(context, keys),
        cursor=str(latest),
    )


def _claim_run_ids(instance, claims: list[str]) -> dict[str, str]:
    """claim key -> the Dagster run launched for it (found by the claim tag), if any."""
    if not claims:
        return {}
    runs = instance.get_runs(dg.RunsFilter(tags={requests.CLAIM_TAG: claims}))
    return {run.tags[requests.CLAIM_TAG]: run.run_id for run in runs}


#: Runs that may still write (and answer): a request for their probe joins them.
ACTIVE_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
PARTITION_TAG = "dagster/partition"


def active_builds(instance, keys: list[str]) -> dict[str, str]:
    """partition key -> the newest ``probe_build_job`` run of it that is not over (queued or
    building): a nightly build, or any build launched outside the requests table. One
    instance query for all the keys."""
    if not keys:
        return {}
    runs = instance.get_runs(
        dg.RunsFilter(job_name=probe_build_job.name, statuses=ACTIVE_STATUSES, tags={PARTITION_TAG: sorted(set(keys))})
    )
    found: dict[str, str] = {}
    for run in runs:  # newest first
        found.setdefault(run.tags.get(PARTITION_TAG), run.run_id)
    return found


def build_outcome(instance, run_id: str) -> tuple[str, str | None] | None:
    """What a finished build run recorded on its probe_aggregates materialization
    (``build_status``: SUCCEEDED or NO_DATA, with the reason), for a request that joined
    the run after the asset had answered its requests; None when it recorded nothing."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION, limit=1, ascending=False
    ).records
    for record in records:
        materialization = record.asset_materialization
        status = materialization.metadata.get("build_status") if materialization else None
        if status is not None:
            reason = materialization.metadata.get("no_data_reason")
            return str(status.value), (str(reason.value) or None) if reason is not None else None
    return None


def reconcile(instance, conn) -> dict[str, int]:
    """Answer every RUNNING request whose run is over (failed, cancelled while queued or
    mid-build, killed and caught by run monitoring, gone), with the reason; and reap claims
    whose run never started within PROBES_CLAIM_TIMEOUT_MINUTES. One instance query per tick."""
    waiting = requests.running_run_ids(conn)
    claims = [w for w in waiting if w.startswith(requests.CLAIM_PREFIX)]
    launched = _claim_run_ids(instance, claims)
    # A claim whose run exists is judged by that run; one with no run yet is still waiting.
    to_check = {w: w for w in waiting if not w.startswith(requests.CLAIM_PREFIX)}
    to_check.update({run_id: claim for claim, run_id in launched.items()})
    ended = ended_runs(instance, to_check)
    answered = 0
    for run_id, outcome in ended.items():
        succeeded = outcome.status == dg.DagsterRunStatus.SUCCESS.value
        recorded = build_outcome(instance, run_id) if succeeded else None
        answered += requests.answer_ended(conn, to_check[run_id], outcome.reason, succeeded, recorded=recorded)
    reaped = requests.reap_stale_claims(conn, timedelta(minutes=config.claim_timeout_minutes()))
    return {"answered_ended_runs": answered, "reaped_stale_claims": reaped}


@dg.sensor(
    name="probe_build_requests_sensor",
    job=probe_build_job,
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "On-demand builds: claims PENDING rows of probe_build_requests in the GLAM database "
        "(RUNNING + claim key), fails unknown probes at once, lets a request join a build of the "
        "same probe already under way (on-demand or nightly), launches one probe_build_job run per other requested probe, "
        "and every tick answers the requests of runs that are over (failed, cancelled, dead) and "
        "of claims that never started."
    ),
)
def probe_build_requests_sensor(context: dg.SensorEvaluationContext, warehouse: Warehouse, probes_glam: GlamDatabase):
    now = datetime.now(UTC)
    limit = config.requests_per_tick()
    failed = joined = 0
    with probes_glam.begin(warehouse) as conn:
        outcomes = reconcile(context.instance, conn)
        claimed = requests.claim_pending(conn, limit, now)
        if claimed:
            catalogue = {
                (r["product"], r["probe_name"])
                for r in warehouse.fetch_all("SELECT product, probe_name FROM glam_probe_catalogue")
            }
            building = requests.in_flight(conn)
            by_probe: dict[tuple[str, str], list[int]] = defaultdict(list)
            for row in claimed:
                by_probe[(row["product"], row["probe_name"])].append(row["request_id"])
            # Builds no request waits on yet (nightly ones): joined like on-demand ones.
            others = [requests.partition_key(*p) for p in by_probe if p not in building]
            for key, run_id in active_builds(context.instance, others).items():
                building[requests.split_partition_key(key)] = run_id
            for (product, probe_name), ids in sorted(by_probe.items()):
                if (product, probe_name) not in catalogue:
                    failed += len(ids)
                    requests.fail_requests(
                        conn,
                        ids,
                        f"unknown probe {probe_name!r} for product {product!r}: it is not in glam_probe_catalogue",
                        now,
                    )
                elif (product, probe_name) in building:
                    joined += len(ids)  # answered by the build already under way
                    requests.assign_claim(conn, ids, building[(product, probe_name)], now)
                else:
                    requests.assign_claim(conn, ids, requests.new_claim_key(), now)
        waiting = requests.waiting_claims(conn)
    keys = [requests.partition_key(w["product"], w["probe_name"]) for w in waiting]
    run_requests = [
        dg.RunRequest(
            run_key=w["run_id"],
            partition_key=key,
            tags={requests.CLAIM_TAG: w["run_id"], "probes/build_reason": "on_demand"},
        )
        for key, w in zip(keys, waiting, strict=True)
    ]
    settled = sum(outcomes.values())
    if not run_requests and not claimed:
        return dg.SkipReason(
            f"no pending probe build requests; answered {outcomes['answered_ended_runs']} request(s) of ended runs, "
            f"reaped {outcomes['reaped_stale_claims']} stale claim(s)"
            if settled
            else "no pending probe build requests"
        )
    context.log.info(
        f"probe_build_requests_sensor: claimed {len(claimed)} request(s), {failed} unknown, {joined} joined a "
        f"build under way, {len(run_requests)} run(s) requested; {outcomes}"
    )
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=_new_partitions(context, keys),
    )


@dg.run_failure_sensor(
    name="probe_build_failure_sensor",
    monitored_jobs=[probe_build_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Marks the build requests of a failed probe_build_job run FAILED, with the run's error, as "
        "soon as it fails (probe_build_requests_sensor also catches every ended run on its next tick)."
    ),
)
def probe_build_failure_sensor(context: dg.RunFailureSensorContext, warehouse: Warehouse, probes_glam: GlamDatabase):
    run = context.dagster_run
    ids = [run.run_id] + ([run.tags[requests.CLAIM_TAG]] if requests.CLAIM_TAG in run.tags else [])
    message = context.failure_event.message or "run failed"
    with probes_glam.begin(warehouse) as conn:
        marked = requests.mark_finished(conn, ids, f"run {run.run_id} failed: {message}")
    context.log.info(f"probe_build_failure_sensor: {marked} request(s) marked FAILED")
