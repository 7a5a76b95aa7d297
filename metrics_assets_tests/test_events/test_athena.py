"""The Athena path against moto's Athena in server mode (a real HTTP endpoint): the work group
and output location, the QUEUED -> RUNNING -> SUCCEEDED progression, results read page by page,
bytes scanned and the cost estimate in the metadata, the DDL job, and a cancelled query."""

from __future__ import annotations

import threading
import time

import boto3
import dagster as dg
import pytest
import requests

from metrics_assets.events import ddl, lake
from metrics_assets.events.assets import event_rollups_hourly
from metrics_assets.events.automation import events_athena_ddl
from metrics_assets.resources import AthenaQueryEngine, LocalObjectStore, QueryFailed
from metrics_assets_tests.moto_athena import seed_athena_result

WORK_GROUP = "metrics"
#: Athena's pricing page: "a minimum of 10 MB per query" at $5 per TB scanned.
ATHENA_MIN_BYTES_BY_AWS = 10 * 1024 * 1024
OUTPUT = "s3://athena-results/metrics/"


@pytest.fixture
def athena(moto_server):
    boto3.client("s3", endpoint_url=moto_server).create_bucket(Bucket="athena-results")
    client = boto3.client("athena", endpoint_url=moto_server)
    client.create_work_group(Name=WORK_GROUP, Configuration={"ResultConfiguration": {"OutputLocation": OUTPUT}})
    engine = AthenaQueryEngine(
        work_group=WORK_GROUP, output_location=OUTPUT, database="lake", endpoint_url=moto_server,
        aws_access_key_id="testing", aws_secret_access_key="testing", poll_interval_s=0.05,
    )
    yield engine, client, moto_server
    requests.post(f"{moto_server}/moto-api/state-manager/unset-transition",
                  json={"model_name": "athena::execution"}, timeout=10)


def _slow_states(endpoint: str, polls: int) -> None:
    """Each state lasts `polls` status checks, so the engine sees QUEUED and RUNNING."""
    requests.post(f"{endpoint}/moto-api/state-manager/set-transition",
                  json={"model_name": "athena::execution", "transition": {"progression": "manual", "times": polls}},
                  timeout=10).raise_for_status()


def test_query_goes_through_states_and_reads_every_page(athena):
    engine, client, endpoint = athena
    _slow_states(endpoint, 3)
    n = 2_345  # three pages of 1,000 rows
    seed_athena_result(endpoint, [("n", "bigint"), ("label", "varchar")], [[i, f"row-{i}" if i % 7 else None] for i in range(n)])
    result = engine.execute("SELECT n, label FROM events_v0 WHERE year = :year", {"year": "2026"})
    assert result.table.num_rows == n
    assert result.table.column("n").to_pylist() == list(range(n))
    assert result.table.column("label").to_pylist()[:8] == [None, "row-1", "row-2", "row-3", "row-4", "row-5", "row-6", None]
    assert result.engine == "athena" and result.query_id
    assert result.extra["states"] == ["QUEUED", "RUNNING", "SUCCEEDED"]
    # moto reports 0 bytes scanned: the estimate is Athena's 10 MB minimum at $5/TB.
    assert result.cost_usd == pytest.approx(ATHENA_MIN_BYTES_BY_AWS / 1e12 * 5)
    execution = client.get_query_execution(QueryExecutionId=result.query_id)["QueryExecution"]
    assert execution["WorkGroup"] == WORK_GROUP
    assert execution["Status"]["State"] == "SUCCEEDED"
    assert "year = '2026'" in execution["Query"]  # bound, in Athena's dialect
    assert execution["ResultConfiguration"]["OutputLocation"].startswith(OUTPUT)


def test_rollup_asset_runs_on_athena(athena, sqlite_warehouse, metrics_home):
    engine, client, endpoint = athena
    # The slice's folder exists in the (local) object store: the asset checks it before querying.
    from metrics_assets.events import config, demo

    folder = metrics_home / "objects" / "lake" / "events" / "v0" / config.lake_layout().folder(
        __import__("datetime").datetime(2026, 1, 5, 10, 3, tzinfo=__import__("datetime").UTC))
    folder.mkdir(parents=True)
    (folder / demo.secor_name(0, 0)).write_bytes(b"{}\n")
    columns = [("status", "integer"), ("period_start_ms", "bigint"), ("customer_id", "bigint"),
               ("service", "varchar"), ("event_type", "varchar"), ("schema_version", "varchar"),
               ("event_count", "bigint"), ("distinct_resources", "bigint"), ("min_lag_ms", "bigint"),
               ("max_lag_ms", "bigint")]
    hour_ms = 1767607200000  # 2026-01-05 10:00 UTC
    seed_athena_result(endpoint, columns, [
        [0, hour_ms, 11000, "auth0", "login", "v0", 5, 1, 120, 4000],
        [0, hour_ms, 11001, "tiles", "tile_request", "v1", 7, 0, 50, 3_700_000],
        [1, None, 0, "", "", "v0", 2, 0, None, None],
        [2, None, 11001, "filebeat", "log_shipped", "v1", 1, 0, None, None],
    ])
    result = dg.materialize(
        [event_rollups_hourly], partition_key="2026-01-05-10:00",
        resources={"query_engine": engine, "warehouse": sqlite_warehouse,
                   "object_store": LocalObjectStore(root_dir=str(metrics_home / "objects"))},
    )
    assert result.success
    rows = sqlite_warehouse.fetch_all(
        "SELECT customer_id, service, event_count, min_lag_s, max_lag_s FROM event_rollups_hourly ORDER BY customer_id")
    assert rows == [
        {"customer_id": 11000, "service": "auth0", "event_count": 5, "min_lag_s": 0.12, "max_lag_s": 4.0},
        {"customer_id": 11001, "service": "tiles", "event_count": 7, "min_lag_s": 0.05, "max_lag_s": 3700.0},
    ]
    (event,) = result.get_asset_materialization_events()
    meta = event.materialization.metadata
    assert meta["skipped_malformed_json"].value == 2 and meta["skipped_missing_created_time"].value == 1
    assert meta["engine"].value == "athena"
    assert meta["estimated_cost_usd"].value == pytest.approx(round(ATHENA_MIN_BYTES_BY_AWS / 1e12 * 5, 6))
    (query_id,) = client.list_query_executions(WorkGroup=WORK_GROUP)["QueryExecutionIds"]
    sent = client.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Query"]
    # One interval of the one projected partition column: folders 09:00 (early bound) .. 11:59 (lateness).
    assert "arrival_minute BETWEEN '2026-01-05/hr=09/min=00' AND '2026-01-05/hr=11/min=59'" in sent
    assert "FROM events_normalized" in sent


def test_ddl_job_applies_tables_and_view(athena, monkeypatch):
    engine, client, _ = athena
    result = events_athena_ddl.execute_in_process(resources={"query_engine": engine})
    assert result.success
    assert result.output_for_node("apply_events_athena_ddl") == 5
    ids = client.list_query_executions(WorkGroup=WORK_GROUP)["QueryExecutionIds"]
    sent = [client.get_query_execution(QueryExecutionId=i)["QueryExecution"]["Query"] for i in ids]
    # Re-applying replaces: each table is dropped (external: the files stay), then created.
    assert sent.index("DROP TABLE IF EXISTS events_v0") < next(
        i for i, q in enumerate(sent) if "CREATE EXTERNAL TABLE events_v0" in q)
    assert sent.index("DROP TABLE IF EXISTS events_v1") < next(
        i for i, q in enumerate(sent) if "CREATE EXTERNAL TABLE events_v1" in q)
    assert any("VIEW events_normalized" in q and "UNION ALL" in q for q in sent)
    assert all("s3://lake/events/" in q for q in sent if "EXTERNAL" in q)
    assert len(ddl.statements()) == 5 and lake.EVENTS_NORMALIZED == "events_normalized"


def test_cancelled_query_surfaces_athena_state(athena):
    engine, client, endpoint = athena
    _slow_states(endpoint, 1_000_000)  # stays QUEUED until cancelled

    def cancel_when_started():
        for _ in range(200):
            ids = client.list_query_executions(WorkGroup=WORK_GROUP)["QueryExecutionIds"]
            if ids:
                client.stop_query_execution(QueryExecutionId=ids[0])
                return
            time.sleep(0.05)

    canceller = threading.Thread(target=cancel_when_started)
    canceller.start()
    with pytest.raises(QueryFailed) as failure:
        engine.execute("SELECT 1")
    canceller.join()
    assert failure.value.state == "CANCELLED"
    assert "CANCELLED" in str(failure.value) and failure.value.query_id in str(failure.value)


def test_unknown_work_group_is_a_clear_failure(athena):
    engine, _, _ = athena
    broken = engine.model_copy(update={"work_group": "no-such-group"})
    with pytest.raises(QueryFailed) as failure:
        broken.execute("SELECT 1")
    assert "no-such-group" in str(failure.value) or "WorkGroup" in str(failure.value)


def test_stopped_run_stops_the_athena_query(athena):
    """Dagster stops a run by raising DagsterExecutionInterruptedError (a BaseException) from its
    signal handler in the step's main thread. The query it was waiting for must be stopped in
    Athena (StopQueryExecution): moto then shows it CANCELLED."""
    import _thread
    import signal

    engine, client, endpoint = athena
    _slow_states(endpoint, 1_000_000)  # stays QUEUED until stopped

    def interrupt(_signum, _frame):
        raise dg.DagsterExecutionInterruptedError("run terminated")

    previous = signal.signal(signal.SIGUSR1, interrupt)

    def stop_the_run_when_started():
        for _ in range(200):
            if client.list_query_executions(WorkGroup=WORK_GROUP)["QueryExecutionIds"]:
                _thread.interrupt_main(signal.SIGUSR1)
                return
            time.sleep(0.05)

    stopper = threading.Thread(target=stop_the_run_when_started)
    stopper.start()
    try:
        with pytest.raises(dg.DagsterExecutionInterruptedError):
            engine.execute("SELECT count(*) FROM events_v0")
            time.sleep(5)  # (never reached when the interrupt lands inside execute)
    finally:
        stopper.join()
        signal.signal(signal.SIGUSR1, previous)
    (query_id,) = client.list_query_executions(WorkGroup=WORK_GROUP)["QueryExecutionIds"]
    assert client.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]["State"] == "CANCELLED"
