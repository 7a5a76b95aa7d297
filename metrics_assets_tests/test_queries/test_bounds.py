"""Bounded work, cancel, and no stuck state.

* Runaway queries (cross join, unbounded recursive CTE, huge ``repeat``) end FAILED within
  ``METRICS_QUERY_TIMEOUT_S`` + 5 s, and the worker runs the next query fine.
* A result over ``METRICS_QUERY_MAX_ROWS`` fails with a clear error, never a silent cut.
* Cancel while QUEUED and while RUNNING (the engine query is interrupted).
* The sensor answers FAILED the queries whose run ended without answer, and never selects a
  query twice: 100 orphans, then a new query still runs on the next tick.
"""

from __future__ import annotations

import threading
import time

import dagster as dg
import pytest

from metrics_assets.queries import runner, store
from metrics_assets.queries.client import QueryClient
from metrics_assets_tests.test_queries.helpers import definitions, launch, tick

TIMEOUT_S = 2
SMALL = "SELECT servicename, count(*) AS n FROM events_v0 GROUP BY servicename ORDER BY servicename"
RUNAWAYS = {
    "cross_join": (
        "SELECT count(*) AS n FROM events_v0 AS a CROSS JOIN events_v0 AS b CROSS JOIN events_v1 AS c "
        "CROSS JOIN UNNEST(sequence(1, 100000)) AS x(i) CROSS JOIN UNNEST(sequence(1, 100000)) AS y(j)"
    ),
    "recursive_cte": "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT max(n) AS n FROM r",
    "huge_repeat": (
        "SELECT max(length(repeat(servicename, 100000000))) AS n FROM events_v0 "
        "CROSS JOIN UNNEST(sequence(1, 1000)) AS t(i)"
    ),
}


@pytest.fixture
def bounded(monkeypatch):
    monkeypatch.setenv("METRICS_QUERY_TIMEOUT_S", str(TIMEOUT_S))
    monkeypatch.setenv("METRICS_QUERY_MEMORY_LIMIT", "512MB")
    monkeypatch.setenv("METRICS_QUERY_THREADS", "1")


@pytest.mark.parametrize("name", sorted(RUNAWAYS))
def test_a_runaway_query_ends_failed_within_the_timeout(sqlite_warehouse, engine, bounded, name):
    client = QueryClient(sqlite_warehouse)
    q = client.submit(RUNAWAYS[name])
    started = time.monotonic()
    outcome = runner.run_query(sqlite_warehouse, engine, q)
    elapsed = time.monotonic() - started
    status = client.status(q)
    assert (outcome.status, status.status) == ("FAILED", "FAILED")
    assert elapsed < TIMEOUT_S + 5, elapsed
    # Stopped by the timeout, or refused by DuckDB's memory limit first: either way a clear error.
    assert ("METRICS_QUERY_TIMEOUT_S" in status.error) or ("memory" in status.error.lower()), status.error
    # The worker is healthy: the next query runs.
    nxt = client.submit(SMALL)
    assert runner.run_query(sqlite_warehouse, engine, nxt).status == "FINISHED"
    assert client.status(nxt).row_count == 3


def test_a_result_over_max_rows_fails_and_stores_nothing(sqlite_warehouse, engine, monkeypatch):
    monkeypatch.setenv("METRICS_QUERY_MAX_ROWS", "8")
    client = QueryClient(sqlite_warehouse)
    q = client.submit("SELECT customerid FROM events_v0")  # 9 rows
    assert runner.run_query(sqlite_warehouse, engine, q).status == "FAILED"
    status = client.status(q)
    assert status.error == (
        "the result has more than 8 rows (METRICS_QUERY_MAX_ROWS): aggregate, filter or add a LIMIT"
    )
    assert sqlite_warehouse.scalar("SELECT count(*) FROM historical_query_results") == 0
    ok = client.submit("SELECT customerid FROM events_v0 LIMIT 8")
    assert runner.run_query(sqlite_warehouse, engine, ok).status == "FINISHED"
    assert client.status(ok).row_count == 8


def test_non_finite_floats_are_null_and_the_type_says_so(sqlite_warehouse, engine):
    client = QueryClient(sqlite_warehouse)
    q = client.submit(
        "SELECT customerid, CASE WHEN customerid = 11000 THEN CAST('NaN' AS DOUBLE) WHEN customerid = 11001 "
        "THEN CAST('Infinity' AS DOUBLE) ELSE CAST('-Infinity' AS DOUBLE) END AS x, 1.5e0 AS y "
        "FROM events_v0 ORDER BY createdtimestamp LIMIT 3"
    )
    assert runner.run_query(sqlite_warehouse, engine, q).status == "FINISHED"
    page = client.next(q)
    assert page["rows"] == [
        {"customerid": 11000, "x": None, "y": 1.5},
        {"customerid": 11001, "x": None, "y": 1.5},
        {"customerid": 11002, "x": None, "y": 1.5},
    ]
    assert page["columns"] == [
        {"name": "customerid", "type": "BIGINT"},
        {"name": "x", "type": "DOUBLE (NaN and Infinity as null)"},
        {"name": "y", "type": "DOUBLE (NaN and Infinity as null)"},
    ]


def test_cancel_while_queued(sqlite_warehouse, engine):
    client = QueryClient(sqlite_warehouse)
    q = client.submit(SMALL)
    status = client.cancel(q)
    assert (status.status, status.error) == ("CANCELLED", "cancelled on request")
    assert runner.run_query(sqlite_warehouse, engine, q).status == "CANCELLED"  # a late run does nothing
    assert engine.calls == []
    with pytest.raises(store.AlreadyFinal, match="already CANCELLED"):
        client.cancel(q)
    with pytest.raises(store.QueryCancelledError):
        client.next(q)
    defs = definitions(sqlite_warehouse, engine)
    with dg.instance_for_test() as instance:
        assert tick(defs, instance, sqlite_warehouse) == []  # never launched


def test_cancel_while_running_interrupts_the_engine(sqlite_warehouse, engine, monkeypatch):
    monkeypatch.setenv("METRICS_QUERY_TIMEOUT_S", "120")
    client = QueryClient(sqlite_warehouse)
    q = client.submit(RUNAWAYS["cross_join"])
    outcome: list[runner.RunOutcome] = []
    worker = threading.Thread(target=lambda: outcome.append(runner.run_query(sqlite_warehouse, engine, q)))
    worker.start()
    deadline = time.monotonic() + 30
    while client.status(q).status != "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)
    cancelled_at = time.monotonic()
    assert client.cancel(q).status == "CANCELLED"
    worker.join(30)
    assert not worker.is_alive()
    assert time.monotonic() - cancelled_at < 5
    assert outcome[0].status == "CANCELLED"
    status = client.status(q)
    assert (status.status, status.error, status.row_count) == ("CANCELLED", "cancelled on request", None)
    nxt = client.submit(SMALL)
    assert runner.run_query(sqlite_warehouse, engine, nxt).status == "FINISHED"


def test_orphans_are_answered_and_never_block_a_new_query(warehouse, engine):
    """100 queries whose runs were cancelled before they started (the old failure: the sensor
    re-selected the same 25 forever), plus one RUNNING query whose run failed: the next tick
    answers them all FAILED, and a new query is launched and finishes."""
    client = QueryClient(warehouse)
    defs = definitions(warehouse, engine)
    orphans = [client.submit(SMALL) for _ in range(100)]
    with dg.instance_for_test() as instance:
        requested = []
        for _ in range(4):
            requested += tick(defs, instance, warehouse)
        assert sorted(r.run_key for r in requested) == sorted(orphans)  # 25 a tick, each once
        assert tick(defs, instance, warehouse) == []  # not selected again
        job = defs.resolve_job_def("historical_query_job")
        for request in requested:  # the daemon creates each run; then they are cancelled while queued
            run = instance.create_run_for_job(job, run_config=request.run_config, tags=request.tags)
            instance.report_run_canceled(run)
        # One query RUNNING under a run that then failed (a run worker killed mid-query).
        dead = client.submit(SMALL)
        assert [r.run_key for r in tick(defs, instance, warehouse)] == [dead]
        run = instance.create_run_for_job(job, run_config=run_request_config(dead), tags={"metrics/query_id": dead})
        store.mark_running(warehouse, dead, run.run_id)
        instance.report_run_failed(run, "Run worker process died unexpectedly (SIGKILL)")
        new = client.submit(SMALL)
        started = time.monotonic()
        requests = tick(defs, instance, warehouse)
        assert [r.run_key for r in requests] == [new]
        assert launch(defs, instance, requests[0]).success
        assert client.status(new).status == "FINISHED"
        assert time.monotonic() - started < 8
    statuses = {q: client.status(q) for q in orphans}
    assert {s.status for s in statuses.values()} == {"FAILED"}
    assert all("was cancelled before it answered" in s.error for s in statuses.values())
    died = client.status(dead)
    assert died.status == "FAILED"
    assert "failed" in died.error and "SIGKILL" in died.error


def run_request_config(query_id: str) -> dict:
    return {"ops": {"historical_query_results": {"config": {"query_id": query_id}}}}


def test_the_purge_schedule_starts_a_run_only_when_something_expired(sqlite_warehouse, engine):
    from datetime import timedelta

    defs = definitions(sqlite_warehouse, engine)
    schedule = defs.resolve_schedule_def("historical_queries_purge_schedule")
    client = QueryClient(sqlite_warehouse)
    q = client.submit(SMALL, retention_minutes=1)
    assert runner.run_query(sqlite_warehouse, engine, q).status == "FINISHED"
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(instance=instance, resources={"warehouse": sqlite_warehouse})
        result = schedule.evaluate_tick(context)
        assert result.run_requests == [] and "no query result has expired" in result.skip_message
        sqlite_warehouse.execute(
            "UPDATE historical_queries SET expires_at = :t", {"t": store.now() - timedelta(seconds=1)}
        )
        result = schedule.evaluate_tick(context)
        assert len(result.run_requests) == 1 and result.run_requests[0].tags["metrics/expired_queries"] == "1"
