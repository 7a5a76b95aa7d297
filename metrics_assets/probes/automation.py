"""When the probes assets run.

* ``probes_daily_schedule`` (01:15 UTC): yesterday's ``probe_views_daily`` and ``usage_sessions``.
  ``probe_popularity``, ``release_correlation`` and ``probes_to_build`` follow on their own
  (``AutomationCondition.eager()`` on the latest day of ``probe_views_daily``).
* ``probes_nightly_build_sensor``: each new ``probes_to_build`` materialization launches one
  ``probe_build_job`` run per probe in the table, exactly those, adding their partitions.
* ``probe_build_requests_sensor``: claims PENDING rows of ``probe_build_requests`` and launches
  one run per probe (see :mod:`metrics_assets.probes.requests`).
* ``probe_build_failure_sensor``: a build run that fails outside the asset's own code (a crash,
  a resource that cannot start) still answers its requests, FAILED with the run's error.
"""


from collections import defaultdict
from datetime import UTC, datetime

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
            dg.RunRequest(run_key=f"nightly:{latest}:{key}", partition_key=key, tags={"probes/build_reason": row["reason"]})
            for key, row in zip(keys, rows)
        ],
        dynamic_partitions_requests=_new_partitions(context, keys),
        cursor=str(latest),
    )


@dg.sensor(
    name="probe_build_requests_sensor",
    job=probe_build_job,
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "On-demand builds: claims PENDING rows of probe_build_requests (RUNNING + claim key), fails "
        "unknown probes at once, and launches one probe_build_job run per requested probe."
    ),
)
def probe_build_requests_sensor(context: dg.SensorEvaluationContext, warehouse: Warehouse, probes_glam: GlamDatabase):
    now = datetime.now(UTC)
    limit = config.requests_per_tick()
    failed = 0
    with warehouse.begin() as conn:
        claimed = requests.claim_pending(conn, limit, now)
        if claimed:
            catalogue = {
                (r["product"], r["probe_name"])
                for r in probes_glam.read_table(warehouse, "SELECT DISTINCT product, probe_name FROM glam_probes").to_pylist()
            }
            by_probe: dict[tuple[str, str], list[int]] = defaultdict(list)
            for row in claimed:
                by_probe[(row["product"], row["probe_name"])].append(row["request_id"])
            for (product, probe_name), ids in sorted(by_probe.items()):
                if (product, probe_name) in catalogue:
                    requests.assign_claim(conn, ids, requests.new_claim_key(), now)
                else:
                    failed += len(ids)
                    requests.fail_requests(
                        conn, ids,
                        f"unknown probe {probe_name!r} for product {product!r}: it is not in glam_probes",
                        now,
                    )
        waiting = requests.waiting_claims(conn)
    run_requests = [
        dg.RunRequest(
            run_key=w["run_id"],
            partition_key=requests.partition_key(w["product"], w["probe_name"]),
            tags={requests.CLAIM_TAG: w["run_id"], "probes/build_reason": "on_demand"},
        )
        for w in waiting
    ]
    if not run_requests and not claimed:
        return dg.SkipReason("no pending probe build requests")
    context.log.info(
        f"probe_build_requests_sensor: claimed {len(claimed)} request(s), {failed} unknown, "
        f"{len(run_requests)} run(s) requested"
    )
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=_new_partitions(context, [r.partition_key for r in run_requests]),
    )


@dg.run_failure_sensor(
    name="probe_build_failure_sensor",
    monitored_jobs=[probe_build_job],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Marks the build requests of a failed probe_build_job run FAILED, with the run's error.",
)
def probe_build_failure_sensor(context: dg.RunFailureSensorContext, warehouse: Warehouse):
    run = context.dagster_run
    ids = [run.run_id] + ([run.tags[requests.CLAIM_TAG]] if requests.CLAIM_TAG in run.tags else [])
    message = context.failure_event.message or "run failed"
    with warehouse.begin() as conn:
        marked = requests.mark_finished(conn, ids, f"run {run.run_id} failed: {message}")
    context.log.info(f"probe_build_failure_sensor: {marked} request(s) marked FAILED")
