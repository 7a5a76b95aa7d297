"""The ad hoc path on Athena, against moto's Athena in server mode (protocol only: Athena itself
cannot be reached from here). The query runs in the ad hoc work group
(``METRICS_QUERY_ATHENA_WORK_GROUP``, the one with the bytes-scanned cutoff), its rows are read
page by page, and past ``METRICS_QUERY_TIMEOUT_S`` it is stopped with StopQueryExecution."""

from __future__ import annotations

import time

import boto3
import pytest
import requests

from metrics_assets.queries import runner, store
from metrics_assets.queries.client import QueryClient
from metrics_assets.resources import AthenaQueryEngine
from metrics_assets_tests.moto_athena import seed_athena_result

ADHOC = "metrics-adhoc-test"
OUTPUT = "s3://athena-results/adhoc/"


@pytest.fixture
def athena(moto_server, monkeypatch):
    boto3.client("s3", endpoint_url=moto_server).create_bucket(Bucket="athena-results")
    client = boto3.client("athena", endpoint_url=moto_server)
    client.create_work_group(Name="metrics", Configuration={"ResultConfiguration": {"OutputLocation": OUTPUT}})
    client.create_work_group(Name=ADHOC, Configuration={
        "ResultConfiguration": {"OutputLocation": OUTPUT}, "EnforceWorkGroupConfiguration": True,
        "BytesScannedCutoffPerQuery": 10 * 1024**3})
    monkeypatch.setenv("METRICS_QUERY_ATHENA_WORK_GROUP", ADHOC)
    engine = AthenaQueryEngine(work_group="metrics", output_location=OUTPUT, database="lake", endpoint_url=moto_server,
                               aws_access_key_id="testing", aws_secret_access_key="testing", poll_interval_s=0.05)
    yield engine, client, moto_server
    requests.post(f"{moto_server}/moto-api/state-manager/unset-transition",
                  json={"model_name": "athena::execution"}, timeout=10)


def test_an_adhoc_query_runs_in_its_own_work_group(athena, sqlite_warehouse):
    engine, client, endpoint = athena
    seed_athena_result(endpoint, [("service", "varchar"), ("n", "bigint")], [["auth0", 3], ["tiles", 2]])
    queries = QueryClient(sqlite_warehouse)
    q = queries.submit("SELECT servicename AS service, count(*) AS n FROM events_v0 GROUP BY 1 ORDER BY 1")
    outcome = runner.run_query(sqlite_warehouse, engine, q)
    assert (outcome.status, outcome.row_count) == ("FINISHED", 2), outcome.error
    assert queries.next(q)["rows"] == [{"service": "auth0", "n": 3}, {"service": "tiles", "n": 2}]
    (athena_id,) = client.list_query_executions(WorkGroup=ADHOC)["QueryExecutionIds"]
    execution = client.get_query_execution(QueryExecutionId=athena_id)["QueryExecution"]
    assert execution["WorkGroup"] == ADHOC
    assert client.list_query_executions(WorkGroup="metrics")["QueryExecutionIds"] == []


def test_past_the_timeout_the_athena_query_is_stopped(athena, sqlite_warehouse, monkeypatch):
    engine, client, endpoint = athena
    monkeypatch.setenv("METRICS_QUERY_TIMEOUT_S", "1")
    requests.post(f"{endpoint}/moto-api/state-manager/set-transition",
                  json={"model_name": "athena::execution", "transition": {"progression": "manual", "times": 1_000_000}},
                  timeout=10).raise_for_status()  # stays QUEUED until stopped
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
