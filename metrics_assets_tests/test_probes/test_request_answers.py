"""Every build request gets an answer, whatever happens to its run.

The runs' fates are set on a real Dagster instance exactly as Dagster records them: a run
cancelled while queued (created CANCELED, never started), cancelled mid-build
(``report_run_canceled`` after the asset marked the request started), a run worker killed and
caught by run monitoring (``report_run_failed`` with monitoring's message). The requests
sensor answers each within one tick, through ``resources/run_outcomes.ended_runs``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg

from metrics_assets.probes import ASSETS, requests, telemetry
from metrics_assets.probes.automation import (
    probe_build_job,
    probe_build_requests_sensor,
)
from metrics_assets_tests.test_probes.conftest import add_catalogue
from metrics_assets_tests.test_probes.test_aggregates import write_samples

FX = "firefox"


def rows(warehouse):
    return {r["request_id"]: r for r in warehouse.fetch_all("SELECT * FROM probe_build_requests ORDER BY request_id")}


def tick(instance, resources):
    return probe_build_requests_sensor(dg.build_sensor_context(instance=instance, resources=resources))


def job_def(resources):
    return dg.Definitions(assets=ASSETS, jobs=[probe_build_job], resources=resources).resolve_job_def("probe_build_job")


def launch(instance, resources, run_request, status=dg.DagsterRunStatus.NOT_STARTED):
    """What the daemon does with a sensor's run request: a run with its tags (and run key)."""
    for key in [run_request.partition_key]:
        if key not in instance.get_dynamic_partitions("probes"):
            instance.add_dynamic_partitions("probes", [key])
    return instance.create_run_for_job(
        job_def(resources),
        status=status,
        tags={
            **run_request.tags,
            "dagster/run_key": run_request.run_key,
            "dagster/partition": run_request.partition_key,
        },
    )


def test_cancelled_queued_cancelled_mid_build_and_killed_runs_are_answered_within_a_tick(pg_warehouse, pg_resources):
    warehouse, resources = pg_warehouse, pg_resources
    add_catalogue(warehouse, FX, ["queued", "midway", "killed", "waiting"])
    warehouse.append(
        "probe_build_requests", [{"product": FX, "probe_name": n} for n in ("queued", "midway", "killed", "waiting")]
    )
    with dg.instance_for_test() as instance:
        first = tick(instance, resources)
        by_probe = {r.partition_key.split("/")[1]: r for r in first.run_requests}
        assert sorted(by_probe) == ["killed", "midway", "queued", "waiting"]
        # queued: cancelled before it ever started (the request still holds the claim key).
        launch(instance, resources, by_probe["queued"], dg.DagsterRunStatus.CANCELED)
        # midway: started (the asset swapped the claim for its run id), then cancelled.
        midway = launch(instance, resources, by_probe["midway"], dg.DagsterRunStatus.STARTED)
        with warehouse.begin() as conn:
            requests.mark_started(conn, by_probe["midway"].run_key, midway.run_id)
        instance.report_run_canceled(midway, message="cancelled by a user")
        # killed: started, then its worker died; run monitoring fails the run with this message.
        killed = launch(instance, resources, by_probe["killed"], dg.DagsterRunStatus.STARTED)
        with warehouse.begin() as conn:
            requests.mark_started(conn, by_probe["killed"].run_key, killed.run_id)
        instance.report_run_failed(killed, message="Run worker process 4242 exited unexpectedly (run monitoring).")
        # waiting: launched, not started yet: no answer yet.
        launch(instance, resources, by_probe["waiting"], dg.DagsterRunStatus.NOT_STARTED)

        tick(instance, resources)
        got = {r["probe_name"]: (r["status"], r["error"]) for r in rows(warehouse).values()}
    assert got["queued"][0] == "FAILED" and "was cancelled before it answered" in got["queued"][1]
    assert got["midway"][0] == "FAILED" and "was cancelled before it answered" in got["midway"][1]
    assert got["killed"][0] == "FAILED"
    assert "Run worker process 4242 exited unexpectedly (run monitoring)." in got["killed"][1]
    assert got["waiting"] == ("RUNNING", None)


def test_a_claim_never_launched_is_reaped_after_the_bound(pg_warehouse, pg_resources, monkeypatch):
    warehouse, resources = pg_warehouse, pg_resources
    monkeypatch.setenv("PROBES_CLAIM_TIMEOUT_MINUTES", "30")
    add_catalogue(warehouse, FX, ["gc_ms"])
    warehouse.append("probe_build_requests", [{"product": FX, "probe_name": "gc_ms"}])
    with dg.instance_for_test() as instance:
        tick(instance, resources)
        warehouse.execute(
            "UPDATE probe_build_requests SET updated_at = :t", {"t": datetime.now(UTC) - timedelta(minutes=29)}
        )
        tick(instance, resources)
        assert rows(warehouse)[1]["status"] == "RUNNING"
        warehouse.execute(
            "UPDATE probe_build_requests SET updated_at = :t", {"t": datetime.now(UTC) - timedelta(minutes=31)}
        )
        tick(instance, resources)
    row = rows(warehouse)[1]
    assert row["status"] == "FAILED" and "never started within 30 minutes" in row["error"]


def test_no_samples_answers_no_data_and_a_late_request_joins_the_build(warehouse, metrics_home, resources, monkeypatch):
    monkeypatch.setenv("PROBES_AS_OF", "2026-03-10")
    monkeypatch.setenv("PROBES_SAMPLE_DAYS", "7")
    add_catalogue(warehouse, FX, ["gc_ms", "silent"])
    write_samples(metrics_home, "2026-03-10", [(FX, "release", "Windows", "131", "gc_ms", "c1", 1.0)])
    warehouse.append(
        "probe_build_requests", [{"product": FX, "probe_name": "gc_ms"}, {"product": FX, "probe_name": "silent"}]
    )
    with dg.instance_for_test() as instance:
        first = tick(instance, resources)
        assert len(first.run_requests) == 2
        # While gc_ms's build is under way, the app asks for it again: the request joins it.
        warehouse.append("probe_build_requests", [{"product": FX, "probe_name": "gc_ms"}])
        second = tick(instance, resources)
        assert sorted(r.run_key for r in second.run_requests) == sorted(r.run_key for r in first.run_requests)
        table = rows(warehouse)
        assert table[3]["run_id"] == table[1]["run_id"] and table[3]["status"] == "RUNNING"
        for key in (r.partition_key for r in first.run_requests):
            instance.add_dynamic_partitions("probes", [key])
        runs = [
            job_def(resources).execute_in_process(instance=instance, partition_key=r.partition_key, tags=r.tags)
            for r in first.run_requests
        ]
        assert all(r.success for r in runs)
    table = rows(warehouse)
    assert (table[1]["status"], table[3]["status"]) == ("SUCCEEDED", "SUCCEEDED")
    assert table[1]["run_id"] == table[3]["run_id"]
    assert table[2]["status"] == "NO_DATA"
    assert table[2]["error"] == (
        "no telemetry samples for firefox/silent from 2026-03-04 to 2026-03-10; the app keeps the probe's previous build, if any"
    )


def test_a_request_arriving_while_the_nightly_build_runs_joins_it(warehouse, metrics_home, resources, monkeypatch):
    """The nightly sensor's run (tags as probes_nightly_build_sensor sets them, no claim) is
    building gc_ms when the app asks for gc_ms: the request joins that run (no second build)
    and gets its answer. A request that joined the nightly run of ``silent`` after the asset
    had answered gets the outcome the run recorded (NO_DATA and its reason)."""
    monkeypatch.setenv("PROBES_AS_OF", "2026-03-10")
    monkeypatch.setenv("PROBES_SAMPLE_DAYS", "7")
    add_catalogue(warehouse, FX, ["gc_ms", "silent"])
    write_samples(metrics_home, "2026-03-10", [(FX, "release", "Windows", "131", "gc_ms", "c1", 1.0)])
    seen = {}
    original = telemetry.aggregates_sql

    def mid_build():
        if "tick" not in seen:  # gc_ms's nightly build is under way: the app asks for gc_ms.
            warehouse.append("probe_build_requests", [{"product": FX, "probe_name": "gc_ms"}])
            seen["tick"] = tick(instance, resources)
            seen["row"] = dict(rows(warehouse)[1])
        return original()

    monkeypatch.setattr(telemetry, "aggregates_sql", mid_build)
    with dg.instance_for_test() as instance:
        nightly = {}
        for probe in ("gc_ms", "silent"):
            key = requests.partition_key(FX, probe)
            instance.add_dynamic_partitions("probes", [key])
            nightly[probe] = job_def(resources).execute_in_process(
                instance=instance,
                partition_key=key,
                tags={"dagster/run_key": f"nightly:1:{key}", "probes/build_reason": "hot"},
            )
            assert nightly[probe].success
        # silent's nightly run answered no request; this one joined it just after that.
        warehouse.append(
            "probe_build_requests",
            [{"product": FX, "probe_name": "silent", "status": "RUNNING", "run_id": nightly["silent"].run_id}],
        )
        tick(instance, resources)
    assert seen["tick"].run_requests == []  # no second build of gc_ms
    assert (seen["row"]["status"], seen["row"]["run_id"]) == ("RUNNING", nightly["gc_ms"].run_id)
    table = rows(warehouse)
    assert (table[1]["status"], table[1]["run_id"], table[1]["error"]) == ("SUCCEEDED", nightly["gc_ms"].run_id, None)
    assert (table[2]["status"], table[2]["run_id"]) == ("NO_DATA", nightly["silent"].run_id)
    assert table[2]["error"] == (
        "no telemetry samples for firefox/silent from 2026-03-04 to 2026-03-10; the app keeps the probe's previous build, if any"
    )
