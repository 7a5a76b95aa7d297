"""The Athena path against moto's Athena in server mode (a real HTTP endpoint): the work group
and output location, the QUEUED -> SUCCEEDED progression, results read back from UNLOAD's
Parquet files (Athena's part played by metrics_assets_tests.moto_athena.AthenaUnload, which says
what is simulated and why), bytes scanned and the cost estimate in the metadata, the DDL job,
and a cancelled query."""

from __future__ import annotations

import threading
import time

import dagster as dg
import pyarrow as pa
import pytest
import requests

from metrics_assets.events import ddl, lake
from metrics_assets.events.assets import event_rollups_hourly
from metrics_assets.events.automation import events_athena_ddl
from metrics_assets.resources import LocalObjectStore, QueryFailed
from metrics_assets_tests.moto_athena import AthenaUnload, athena_engine, duckdb_over

WORK_GROUP = "metrics"
#: Athena's pricing page: "a minimum of 10 MB per query" at $5 per TB scanned.
ATHENA_MIN_BYTES_BY_AWS = 10 * 1024 * 1024
OUTPUT = "s3://athena-results/metrics/"


@pytest.fixture
def athena(moto_server):
    with athena_engine(moto_server, work_group=WORK_GROUP, output=OUTPUT, database="lake") as (engine, client):
        yield engine, client, moto_server


def _slow_states(endpoint: str, polls: int) -> None:
    """Each state lasts `polls` status checks, so the engine sees QUEUED and RUNNING."""
    requests.post(
        f"{endpoint}/moto-api/state-manager/set-transition",
        json={"model_name": "athena::execution", "transition": {"progression": "manual", "times": polls}},
        timeout=10,
    ).raise_for_status()


def test_a_large_result_comes_back_through_unload_in_order(athena):
    engine, client, endpoint = athena
    n = 120_345  # more than two 50,000-row batches, dealt over three files
    numbers = pa.table(
        {"n": pa.array(range(n), pa.int64()), "label": [None if i % 7 == 0 else f"row-{i}" for i in range(n)]}
    )
    with AthenaUnload(endpoint, OUTPUT + "unload/", duckdb_over({"numbers": numbers}), files=3) as athena_part:
        result = engine.execute("SELECT n, label FROM numbers WHERE n < :limit ORDER BY n DESC", {"limit": n})
    assert result.table.column_names == ["n", "label"]
    # Each file holds every third row; the query's ORDER BY is restored across the files.
    assert result.table.column("n").to_pylist() == list(range(n - 1, -1, -1))
    # n = 7 .. 0, descending: every seventh label is NULL
    assert result.table.column("label").to_pylist()[-8:] == [
        None,
        "row-6",
        "row-5",
        "row-4",
        "row-3",
        "row-2",
        "row-1",
        None,
    ]
    assert result.engine == "athena" and result.query_id
    assert result.extra["states"][0] == "QUEUED" and result.extra["states"][-1] == "SUCCEEDED"
    # moto reports 0 bytes scanned: the estimate is Athena's 10 MB minimum at $5/TB.
    assert result.cost_usd == pytest.approx(ATHENA_MIN_BYTES_BY_AWS / 1e12 * 5)
    execution = client.get_query_execution(QueryExecutionId=result.query_id)["QueryExecution"]
    assert execution["WorkGroup"] == WORK_GROUP
    assert execution["Status"]["State"] == "SUCCEEDED"
    (statement,) = athena_part.statements
    assert statement.startswith("UNLOAD (") and "WHERE n < 120345" in statement  # bound, in Athena's dialect
    assert f"TO '{result.extra['unload_location']}'" in statement
    assert execution["ResultConfiguration"]["OutputLocation"].startswith(OUTPUT)


def test_an_empty_result_keeps_its_columns(athena):
    engine, _, endpoint = athena
    numbers = pa.table({"n": pa.array([1, 2], pa.int64())})
    with AthenaUnload(endpoint, OUTPUT + "unload/", duckdb_over({"numbers": numbers})):
        result = engine.execute("SELECT n, n * 2 AS twice, count(*) FROM numbers WHERE n > 5 GROUP BY n")
    assert result.table.num_rows == 0
    assert result.table.column_names == ["n", "twice", "_col2"]


def test_rollup_asset_runs_on_athena(athena, sqlite_warehouse, metrics_home):
    """The hand-made lake of test_lateness; Athena's part runs the UNLOAD's SELECT in DuckDB
    over the same files (with the local parity rules: see events/parity.py)."""
    from metrics_assets.events import config, parity
    from metrics_assets.resources import DuckDBQueryEngine
    from metrics_assets_tests.test_events.test_lateness import write_hand_lake

    engine, client, endpoint = athena
    objects = metrics_home / "objects"
    write_hand_lake(objects, config.lake_layout())
    local = DuckDBQueryEngine(object_store_dir=str(objects))

    def run_select(select: str) -> pa.Table:
        return local.execute(select, transform=parity.transform).table

    with AthenaUnload(endpoint, OUTPUT + "unload/", run_select) as athena_part:
        result = dg.materialize(
            [event_rollups_hourly],
            partition_key="2026-01-01-00:00",
            resources={
                "query_engine": engine,
                "warehouse": sqlite_warehouse,
                "object_store": LocalObjectStore(root_dir=str(objects)),
            },
        )
    assert result.success
    rows = sqlite_warehouse.fetch_all(
        "SELECT customer_id, service, event_type, schema_version, event_count, min_lag_s, max_lag_s "
        "FROM event_rollups_hourly ORDER BY customer_id"
    )
    # By hand (test_lateness.EVENTS): early12 (v0, customer 11004, arrived 720 s before it was
    # created) and edge (v1, customer 11006, 0.501 s after 00:59:59.999) count for 00:00.
    assert rows == [
        {
            "customer_id": 11004,
            "service": "tiles",
            "event_type": "tile_request",
            "schema_version": "v0",
            "event_count": 1,
            "min_lag_s": -720.0,
            "max_lag_s": -720.0,
        },
        {
            "customer_id": 11006,
            "service": "tiles",
            "event_type": "tile_request",
            "schema_version": "v1",
            "event_count": 1,
            "min_lag_s": 0.501,
            "max_lag_s": 0.501,
        },
    ]
    (event,) = result.get_asset_materialization_events()
    meta = event.materialization.metadata
    # The folder 00:30 holds the bad lines (test_lateness.BAD_LINES: "{not json" and two blank) and early110.
    assert meta["skipped_malformed_json"].value == 3 and meta["skipped_missing_created_time"].value == 2
    assert meta["skipped_created_time_not_ms"].value == 1 and meta["skipped_early_beyond_bound"].value == 1
    assert meta["engine"].value == "athena"
    assert meta["estimated_cost_usd"].value == pytest.approx(round(ATHENA_MIN_BYTES_BY_AWS / 1e12 * 5, 6))
    (query_id,) = client.list_query_executions(WorkGroup=WORK_GROUP)["QueryExecutionIds"]
    sent = client.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Query"]
    assert sent == athena_part.statements[0] and sent.startswith("UNLOAD (")
    # One interval of the one projected partition column: folders 23:00 (early bound) .. 01:59 (lateness).
    assert "arrival_minute BETWEEN '2025-12-31/hr=23/min=00' AND '2026-01-01/hr=01/min=59'" in sent
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
        i for i, q in enumerate(sent) if "CREATE EXTERNAL TABLE events_v0" in q
    )
    assert sent.index("DROP TABLE IF EXISTS events_v1") < next(
        i for i, q in enumerate(sent) if "CREATE EXTERNAL TABLE events_v1" in q
    )
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


def test_a_query_stopped_before_its_id_came_back_is_found_by_its_text(athena):
    """The stop can land after Athena registered a query but before the start call returned its
    id: the engine then finds it among the work group's running queries by its (unique) text."""
    engine, client, endpoint = athena
    _slow_states(endpoint, 1_000_000)  # stays QUEUED until stopped
    mine = "UNLOAD (SELECT 1) TO 's3://athena-results/unload/0b6a/' WITH (format = 'PARQUET')"
    other = client.start_query_execution(QueryString="SELECT 2", WorkGroup=WORK_GROUP)["QueryExecutionId"]
    query_id = client.start_query_execution(QueryString=mine, WorkGroup=WORK_GROUP)["QueryExecutionId"]
    conn = engine.connect()
    try:
        assert engine._running_with_text(conn, mine, WORK_GROUP) == [query_id]
        engine.stop_query(conn, query_id)
        assert engine._running_with_text(conn, mine, WORK_GROUP) == []  # CANCELLED now
    finally:
        conn.close()
    assert client.get_query_execution(QueryExecutionId=other)["QueryExecution"]["Status"]["State"] == "QUEUED"
