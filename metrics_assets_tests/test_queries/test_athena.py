"""The ad hoc path on Athena, against moto's Athena in server mode (protocol only: Athena itself
cannot be reached from here). The query runs in the ad hoc work group
(``METRICS_QUERY_ATHENA_WORK_GROUP``, the one with the bytes-scanned cutoff) as an UNLOAD to
Parquet, its rows are read back from the files the manifest lists (Athena's part played by
metrics_assets_tests.moto_athena.AthenaUnload, which says what is simulated and why), and past
``METRICS_QUERY_TIMEOUT_S`` it is stopped with StopQueryExecution."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import boto3
import pytest
import requests

from metrics_assets.events import demo
from metrics_assets.queries import runner, store
from metrics_assets.queries.client import QueryClient
from metrics_assets.resources import AthenaQueryEngine, DuckDBQueryEngine
from metrics_assets_tests.moto_athena import AthenaUnload

ADHOC = "metrics-adhoc-test"
OUTPUT = "s3://athena-results/adhoc/"


@pytest.fixture
def athena(moto_server, monkeypatch):
    boto3.client("s3", endpoint_url=moto_server).create_bucket(Bucket="athena-results")
    client = boto3.client("athena", endpoint_url=moto_server)
    client.create_work_group(Name="metrics", Configuration={"ResultConfiguration": {"OutputLocation": OUTPUT}})
    client.create_work_group(
        Name=ADHOC,
        Configuration={
            "ResultConfiguration": {"OutputLocation": OUTPUT},
            "EnforceWorkGroupConfiguration": True,
            "BytesScannedCutoffPerQuery": 10 * 1024**3,
        },
    )
    monkeypatch.setenv("METRICS_QUERY_ATHENA_WORK_GROUP", ADHOC)
    engine = AthenaQueryEngine(
        work_group="metrics",
        output_location=OUTPUT,
        database="lake",
        endpoint_url=moto_server,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        poll_interval_s=0.05,
    )
    yield engine, client, moto_server
    requests.post(
        f"{moto_server}/moto-api/state-manager/unset-transition", json={"model_name": "athena::execution"}, timeout=10
    )


def _lake(objects) -> DuckDBQueryEngine:
    """Four v0 events (demo.make_line: the shape Secor writes), and DuckDB over them."""
    hour = datetime(2026, 1, 5, 10, tzinfo=UTC)
    lines = [
        demo.make_line("v0", 11000, service, "login", {}, hour, hour)
        for service in ("auth0", "tiles", "auth0", "auth0")
    ]
    demo.write_files(objects, {("v0", hour): lines})
    return DuckDBQueryEngine(object_store_dir=str(objects))  # the code location's lake catalog: the real events tables


def test_an_adhoc_query_runs_in_its_own_work_group(athena, sqlite_warehouse, metrics_home):
    engine, client, endpoint = athena
    local = _lake(metrics_home / "objects")
    queries = QueryClient(sqlite_warehouse)
    q = queries.submit("SELECT servicename AS service, count(*) AS n FROM events_v0 GROUP BY 1 ORDER BY 2 DESC, 1")
    with AthenaUnload(endpoint, OUTPUT + "unload/", lambda select: local.execute(select).table, files=2) as athena_part:
        outcome = runner.run_query(sqlite_warehouse, engine, q)
    assert (outcome.status, outcome.row_count) == ("FINISHED", 2), outcome.error
    # By hand: auth0 3 events, tiles 1; the ORDER BY holds although each row came in its own file.
    assert queries.next(q)["rows"] == [{"service": "auth0", "n": 3}, {"service": "tiles", "n": 1}]
    (athena_id,) = client.list_query_executions(WorkGroup=ADHOC)["QueryExecutionIds"]
    execution = client.get_query_execution(QueryExecutionId=athena_id)["QueryExecution"]
    assert execution["WorkGroup"] == ADHOC
    assert execution["Query"] == athena_part.statements[0] and execution["Query"].startswith("UNLOAD (")
    assert client.list_query_executions(WorkGroup="metrics")["QueryExecutionIds"] == []


def test_the_row_cap_holds_on_athena(athena, sqlite_warehouse, metrics_home, monkeypatch):
    engine, _, endpoint = athena
    monkeypatch.setenv("METRICS_QUERY_MAX_ROWS", "3")
    local = _lake(metrics_home / "objects")
    queries = QueryClient(sqlite_warehouse)
    q = queries.submit("SELECT servicename FROM events_v0")
    with AthenaUnload(endpoint, OUTPUT + "unload/", lambda select: local.execute(select).table, files=1):
        outcome = runner.run_query(sqlite_warehouse, engine, q)
    assert outcome.status == store.FAILED
    assert "METRICS_QUERY_MAX_ROWS" in queries.status(q).error


def test_past_the_timeout_the_athena_query_is_stopped(athena, sqlite_warehouse, monkeypatch):
    engine, client, endpoint = athena
    monkeypatch.setenv("METRICS_QUERY_TIMEOUT_S", "1")
    requests.post(
        f"{endpoint}/moto-api/state-manager/set-transition",
        json={"model_name": "athena::execution", "transition": {"progression": "manual", "times": 1_000_000}},
        timeout=10,
    ).raise_for_status()  # stays QUEUED until stopped
    queries = QueryClient(sqlite_warehouse)
    q = queries.submit("SELECT customerid FROM events_v0")
    started = time.monotonic()
    outcome = runner.run_query(sqlite_warehouse, engine, q)
    assert outcome.status == store.FAILED
    assert time.monotonic() - started < 1 + 5
    assert "METRICS_QUERY_TIMEOUT_S" in queries.status(q).error
    (athena_id,) = client.list_query_executions(WorkGroup=ADHOC)["QueryExecutionIds"]
    state = client.get_query_execution(QueryExecutionId=athena_id)["QueryExecution"]["Status"]["State"]
    assert state == "CANCELLED"  # StopQueryExecution reached Athena
