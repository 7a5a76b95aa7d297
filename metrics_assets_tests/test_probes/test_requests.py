"""On-demand probe builds through probe_build_requests, end to end through the sensors, and
the nightly build of exactly the hot list."""

from __future__ import annotations

import threading
import time

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from metrics_assets.probes import ASSETS, requests
from metrics_assets.probes.assets import probe_partitions, probes_to_build
from metrics_assets.probes.automation import (
    probe_build_failure_sensor,
    probe_build_job,
    probe_build_requests_sensor,
    probes_nightly_build_sensor,
)
from metrics_assets_tests.test_probes.conftest import add_catalogue, add_views
from metrics_assets_tests.test_probes.test_aggregates import FX, write_samples


def add_requests(warehouse, pairs):
    warehouse.append("probe_build_requests", [{"product": p, "probe_name": n} for p, n in pairs])


def statuses(warehouse):
    return {r["request_id"]: r for r in warehouse.fetch_all("SELECT * FROM probe_build_requests ORDER BY request_id")}


def test_two_overlapping_claims_never_take_the_same_row(warehouse):
    add_requests(warehouse, [(FX, f"p{i}") for i in range(6)])
    barrier = threading.Barrier(2)
    claimed: dict[str, list[int]] = {}

    def tick(name):
        with warehouse.begin() as conn:
            barrier.wait()
            rows = requests.claim_pending(conn, limit=4)
            time.sleep(0.5)  # hold the transaction open: the other tick runs meanwhile
        claimed[name] = [r["request_id"] for r in rows]

    threads = [threading.Thread(target=tick, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    a, b = claimed["a"], claimed["b"]
    assert not set(a) & set(b)
    assert sorted(a + b) == [1, 2, 3, 4, 5, 6]
    assert sorted([len(a), len(b)]) == [2, 4]
    assert {r["status"] for r in statuses(warehouse).values()} == {"RUNNING"}


def test_postgres_claim_skips_rows_locked_by_an_open_claim(pg_warehouse):
    add_requests(pg_warehouse, [(FX, "p1"), (FX, "p2"), (FX, "p3")])
    with pg_warehouse.begin() as first:
        got_first = requests.claim_pending(first, limit=2)
        with pg_warehouse.begin() as second:  # does not wait for the first: SKIP LOCKED
            got_second = requests.claim_pending(second, limit=10)
    assert [r["request_id"] for r in got_first] == [1, 2]
    assert [r["request_id"] for r in got_second] == [3]


def _setup_lake(warehouse, metrics_home, monkeypatch):
    monkeypatch.setenv("PROBES_AS_OF", "2026-03-10")
    monkeypatch.setenv("PROBES_SAMPLE_DAYS", "7")
    add_catalogue(warehouse, FX, ["gc_ms", "cc_ms"])
    write_samples(
        metrics_home,
        "2026-03-10",
        [
            (FX, "release", "Windows", "131", "gc_ms", "c1", 1.0),
            (FX, "release", "Windows", "131", "gc_ms", "c2", 3.0),
            (FX, "release", "Linux", "131", "cc_ms", "c1", 5.0),
        ],
    )


def _tick_and_run(instance, resources, sensor):
    """One sensor evaluation, then its runs, as the daemon would do them."""
    result = sensor(dg.build_sensor_context(instance=instance, resources=resources))
    if isinstance(result, dg.SkipReason):
        return result, []
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    job = dg.Definitions(assets=ASSETS, jobs=[probe_build_job], resources=resources).resolve_job_def("probe_build_job")
    runs = [
        job.execute_in_process(instance=instance, partition_key=r.partition_key, tags=r.tags, raise_on_error=False)
        for r in result.run_requests
    ]
    return result, runs


def test_request_reply_end_to_end(warehouse, metrics_home, resources, monkeypatch):
    _setup_lake(warehouse, metrics_home, monkeypatch)
    add_requests(warehouse, [(FX, "gc_ms"), (FX, "cc_ms"), (FX, "gc_ms"), (FX, "nope"), ("fenix", "gc_ms")])
    with dg.instance_for_test() as instance:
        result, runs = _tick_and_run(instance, resources, probe_build_requests_sensor)
        # gc_ms asked twice: one run. Unknown probes: no run, FAILED at once.
        assert sorted(r.partition_key for r in result.run_requests) == [f"{FX}/cc_ms", f"{FX}/gc_ms"]
        assert all(r.success for r in runs)
        assert set(instance.get_dynamic_partitions(probe_partitions.name)) == {f"{FX}/cc_ms", f"{FX}/gc_ms"}
        rows = statuses(warehouse)
        assert {i: r["status"] for i, r in rows.items()} == {
            1: "SUCCEEDED",
            2: "SUCCEEDED",
            3: "SUCCEEDED",
            4: "FAILED",
            5: "FAILED",
        }
        run_of = {r.dagster_run.tags[requests.CLAIM_TAG]: r.run_id for r in runs}
        gc_run = next(r.run_id for r in runs if r.dagster_run.tags["dagster/partition"] == f"{FX}/gc_ms")
        assert rows[1]["run_id"] == rows[3]["run_id"] == gc_run  # answered by the same run
        assert rows[2]["run_id"] in run_of.values() and rows[2]["run_id"] != gc_run
        assert rows[4]["error"] == "unknown probe 'nope' for product 'firefox': it is not in glam_probe_catalogue"
        assert rows[5]["error"] == "unknown probe 'gc_ms' for product 'fenix': it is not in glam_probe_catalogue"
        assert rows[4]["run_id"] is None and rows[1]["error"] is None
        assert warehouse.scalar("SELECT client_count FROM probe_aggregates WHERE probe_name = 'gc_ms'") == 2
        assert warehouse.scalar("SELECT p50 FROM probe_aggregates WHERE probe_name = 'gc_ms'") == 2.0

        # Nothing pending any more: the next tick does nothing.
        skip, _ = _tick_and_run(instance, resources, probe_build_requests_sensor)
        assert isinstance(skip, dg.SkipReason)


def test_a_claim_whose_run_has_not_started_is_requested_again_with_the_same_run_key(pg_warehouse, pg_resources):
    resources = pg_resources
    add_catalogue(pg_warehouse, FX, ["gc_ms"])
    add_requests(pg_warehouse, [(FX, "gc_ms")])
    with dg.instance_for_test() as instance:
        ctx = dg.build_sensor_context(instance=instance, resources=resources)
        first = probe_build_requests_sensor(ctx)
        second = probe_build_requests_sensor(dg.build_sensor_context(instance=instance, resources=resources))
    assert [r.run_key for r in first.run_requests] == [r.run_key for r in second.run_requests]
    assert first.run_requests[0].run_key == statuses(pg_warehouse)[1]["run_id"]


def test_failed_build_answers_failed_with_the_error(warehouse, metrics_home, resources, monkeypatch):
    _setup_lake(warehouse, metrics_home, monkeypatch)
    # A file whose value column holds text: the engine rejects the query.
    broken = metrics_home / "objects" / "lake" / "telemetry" / "day=2026-03-09" / "broken.parquet"
    broken.parent.mkdir(parents=True)
    pq.write_table(
        pa.table({"product": [FX], "probe_name": ["gc_ms"], "client_id": ["c9"], "value": ["not a number"]}), broken
    )
    (broken.parent / "partial.parquet").write_bytes(b"not parquet at all")  # left out of the local view
    add_requests(warehouse, [(FX, "gc_ms"), (FX, "gc_ms")])
    with dg.instance_for_test() as instance:
        _, runs = _tick_and_run(instance, resources, probe_build_requests_sensor)
        assert len(runs) == 1 and not runs[0].success
        rows = statuses(warehouse)
        assert [r["status"] for r in rows.values()] == ["FAILED", "FAILED"]
        assert rows[1]["run_id"] == rows[2]["run_id"] == runs[0].run_id
        assert rows[1]["error"].startswith("QueryFailed: ") and "not a number" in rows[1]["error"]

        # The run-failure sensor is the backstop when the run dies before the asset can answer.
        warehouse.execute("UPDATE probe_build_requests SET status = 'RUNNING', error = NULL")
        context = dg.build_run_status_sensor_context(
            sensor_name="probe_build_failure_sensor",
            dagster_event=runs[0].get_run_failure_event(),
            dagster_instance=instance,
            dagster_run=runs[0].dagster_run,
            resources=resources,
        ).for_run_failure()
        probe_build_failure_sensor(context)
        rows = statuses(warehouse)
        assert [r["status"] for r in rows.values()] == ["FAILED", "FAILED"]
        assert rows[1]["error"].startswith(f"run {runs[0].run_id} failed: ")


def test_nightly_build_runs_exactly_the_hot_list(pg_warehouse, metrics_home, pg_resources, monkeypatch):
    resources = pg_resources
    _setup_lake(pg_warehouse, metrics_home, monkeypatch)
    add_catalogue(pg_warehouse, FX, ["cold"])
    monkeypatch.setenv("PROBES_HOT_MIN_VIEWS", "3")
    monkeypatch.setenv("PROBES_ALWAYS_BUILD", f"{FX}/cc_ms")
    add_views(pg_warehouse, [("2026-03-10", FX, "gc_ms", 5), ("2026-03-10", FX, "cold", 2)])
    with dg.instance_for_test() as instance:
        skip = probes_nightly_build_sensor(dg.build_sensor_context(instance=instance, resources=resources))
        assert isinstance(skip, dg.SkipReason)
        assert dg.materialize([probes_to_build], resources=resources, instance=instance).success
        ctx = dg.build_sensor_context(instance=instance, resources=resources)
        result, runs = _tick_and_run(instance, resources, lambda c: probes_nightly_build_sensor(ctx))
        assert sorted(r.partition_key for r in result.run_requests) == [f"{FX}/cc_ms", f"{FX}/gc_ms"]
        assert {r.tags["probes/build_reason"] for r in result.run_requests} == {"hot", "always_build"}
        assert all(r.success for r in runs)
        assert {r["probe_name"] for r in pg_warehouse.fetch_all("SELECT probe_name FROM probe_aggregates")} == {
            "gc_ms",
            "cc_ms",
        }
        again = probes_nightly_build_sensor(
            dg.build_sensor_context(instance=instance, resources=resources, cursor=result.cursor)
        )
        assert isinstance(again, dg.SkipReason)
