"""The whole flow on SQLite and PostgreSQL: submit -> sensor -> run -> pages, failures,
reruns, expiry and the purge."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import timedelta

import dagster as dg
import pytest

from metrics_assets import settings
from metrics_assets.queries import paging, runner, store
from metrics_assets.queries.client import QueryClient
from metrics_assets.resources import DuckDBQueryEngine
from metrics_assets_tests.test_queries import lake as standin
from metrics_assets_tests.test_queries.helpers import definitions, launch, tick

Q_BY_SERVICE = "SELECT servicename, count(*) AS n FROM events_v0 GROUP BY servicename ORDER BY servicename"
Q_V1 = (
    "SELECT envelope.customerId AS customer, envelope.service.name AS service, eventType "
    "FROM events_v1 ORDER BY customer, eventType"
)
Q_FAILS = "SELECT CAST(servicename AS INTEGER) AS x FROM events_v0"


def results_table(warehouse, query_id):
    return [
        (r["row_number"], json.loads(r["row"]))
        for r in warehouse.fetch_all(
            'SELECT row_number, "row" FROM historical_query_results WHERE query_id = :q ORDER BY row_number',
            {"q": query_id},
        )
    ]


def test_submit_sensor_run_pages(warehouse, engine, events):
    client = QueryClient(warehouse)
    defs = definitions(warehouse, engine)
    q1 = client.submit(Q_BY_SERVICE)
    q2 = client.submit(Q_V1, retention_minutes=30)
    q3 = client.submit(Q_FAILS)
    assert [client.status(q).status for q in (q1, q2, q3)] == ["QUEUED"] * 3
    assert client.status(q1).sql == Q_BY_SERVICE.replace("count(", "COUNT(")

    with dg.instance_for_test() as instance:
        requests = tick(defs, instance, warehouse)
        assert [r.run_key for r in requests] == [q1, q2, q3]
        assert [r.tags["metrics/query_id"] for r in requests] == [q1, q2, q3]
        results = [launch(defs, instance, r) for r in requests]
        assert all(r.success for r in results)
        assert tick(defs, instance, warehouse) == []  # nothing QUEUED any more
        runs = instance.get_runs(filters=dg.RunsFilter(tags={"metrics/query_id": q1}))
        assert len(runs) == 1 and runs[0].job_name == "historical_query_job"
        mat = results[0].asset_materializations_for_node("historical_query_results")[0]
        assert mat.metadata["dagster/row_count"].value == 3
        assert mat.metadata["status"].value == "FINISHED"
        # Business figures are numbers, under stable keys (Plots); bounds are text.
        numeric = {
            k: type(v).__name__
            for k, v in mat.metadata.items()
            if isinstance(v, (dg.IntMetadataValue, dg.FloatMetadataValue))
        }
        assert numeric == {
            "dagster/row_count": "IntMetadataValue",
            "bytes_scanned": "IntMetadataValue",
            "duration_s": "FloatMetadataValue",
            "queries_run": "IntMetadataValue",
            "queries_failed": "IntMetadataValue",
            "queries_cancelled": "IntMetadataValue",
        }
        assert mat.metadata["bytes_scanned"].value > 0 and mat.metadata["duration_s"].value > 0
        assert isinstance(mat.metadata["bounds"], dg.TextMetadataValue)

    # q1: the reference, counted in plain Python from the events written.
    expected = sorted(Counter(e["servicename"] for e in events["v0"]).items())
    s1 = client.status(q1)
    assert (s1.status, s1.row_count, s1.error) == ("FINISHED", 3, None)
    assert s1.columns == [{"name": "servicename", "type": "VARCHAR"}, {"name": "n", "type": "BIGINT"}]
    assert s1.bytes_scanned > 0
    assert s1.started_at <= s1.finished_at
    assert s1.expires_at == s1.finished_at + timedelta(minutes=60)
    page = client.next(q1, results_per_page=2)
    assert page["rows"] == [{"servicename": s, "n": n} for s, n in expected[:2]]
    assert page["next_paging_token"] == paging.encode(q1, 2)
    last = client.next(q1, page["next_paging_token"], 2)
    assert last["rows"] == [{"servicename": s, "n": n} for s, n in expected[2:]]
    assert last["next_paging_token"] is None

    # q2: struct fields of v1, no forbidden fields.
    expected_v1 = sorted(
        ((e["envelope"]["customerId"], e["envelope"]["service"]["name"], e["eventType"]) for e in events["v1"]),
        key=lambda t: (t[0], t[2]),
    )
    rows = client.next(q2, results_per_page=1000)["rows"]
    assert rows == [{"customer": c, "service": s, "eventType": t} for c, s, t in expected_v1]
    assert client.status(q2).expires_at == client.status(q2).finished_at + timedelta(minutes=30)

    # q3: FAILED with DuckDB's own error, no rows, and next says why.
    s3 = client.status(q3)
    assert s3.status == "FAILED"
    # Which row fails first depends on DuckDB's threads: any of the services.
    assert re.search(r"Could not convert string '(auth0|tiles|filebeat)' to INT32", s3.error), s3.error
    assert warehouse.scalar("SELECT count(*) FROM historical_query_results WHERE query_id = :q", {"q": q3}) == 0
    with pytest.raises(store.QueryFailedError, match="Could not convert"):
        client.next(q3)


def test_rerunning_a_query_leaves_the_tables_identical(warehouse, engine, events):
    client = QueryClient(warehouse)
    defs = definitions(warehouse, engine)
    q = client.submit(Q_V1)
    with dg.instance_for_test() as instance:
        request = tick(defs, instance, warehouse)[0]
        launch(defs, instance, request)
        first = results_table(warehouse, q)
        launch(defs, instance, request)
    assert results_table(warehouse, q) == first
    assert [n for n, _ in first] == [1, 2, 3, 4]
    assert client.status(q).row_count == 4


def test_keyset_pages_cover_a_larger_result_in_order(warehouse, engine, events):
    client = QueryClient(warehouse)
    q = client.submit(
        "SELECT customerid, n FROM events_v0 CROSS JOIN UNNEST(sequence(1, 300)) AS t(n) ORDER BY n, customerid, createdtimestamp"
    )
    defs = definitions(warehouse, engine)
    with dg.instance_for_test() as instance:
        launch(defs, instance, tick(defs, instance, warehouse)[0])
    by_ts = sorted(events["v0"], key=lambda e: (e["customerid"], e["createdtimestamp"]))
    expected = [{"customerid": e["customerid"], "n": n} for n in range(1, 301) for e in by_ts]
    pages, token = [], None
    while True:
        page = client.next(q, token, 1000)
        pages.append(page["rows"])
        token = page["next_paging_token"]
        if token is None:
            break
    assert [len(p) for p in pages] == [1000, 1000, 700]
    assert [row for p in pages for row in p] == expected


def test_paging_errors(warehouse, engine, events):
    client = QueryClient(warehouse)
    queued = client.submit(Q_V1)
    with pytest.raises(store.QueryNotFinished, match="is QUEUED"):
        client.next(queued)
    defs = definitions(warehouse, engine)
    with dg.instance_for_test() as instance:
        launch(defs, instance, tick(defs, instance, warehouse)[0])
    other = client.submit(Q_BY_SERVICE)
    with pytest.raises(store.PageSizeTooLarge, match="at most 1000, got 1001"):
        client.next(queued, results_per_page=1001)
    with pytest.raises(store.InvalidRequest, match="at least 1"):
        client.next(queued, results_per_page=0)
    with pytest.raises(store.InvalidPagingToken, match="malformed"):
        client.next(queued, "not a token!")
    with pytest.raises(store.InvalidPagingToken, match="another query"):
        client.next(queued, paging.encode(other, 1))
    with pytest.raises(store.InvalidPagingToken, match="past the end"):
        client.next(queued, paging.encode(queued, 5))
    assert client.next(queued, paging.encode(queued, 4))["rows"] == []
    with pytest.raises(store.UnknownQuery):
        client.next("00000000-0000-0000-0000-000000000000")
    with pytest.raises(store.UnknownQuery):
        client.status("'; DROP TABLE historical_queries; --")
    with pytest.raises(store.InvalidRequest, match="between 1 and 10080"):
        client.submit(Q_V1, retention_minutes=10081)
    with pytest.raises(store.InvalidQuery, match=r"\* is not allowed"):
        client.submit("SELECT * FROM events_v1")


def test_expiry_and_purge(warehouse, engine, events):
    client = QueryClient(warehouse)
    defs = definitions(warehouse, engine)
    keep = client.submit(Q_V1, retention_minutes=10080)
    short = client.submit(Q_BY_SERVICE, retention_minutes=1)
    failed = client.submit(Q_FAILS, retention_minutes=1)
    with dg.instance_for_test() as instance:
        for request in tick(defs, instance, warehouse):
            launch(defs, instance, request)
        assert warehouse.scalar("SELECT count(*) FROM historical_query_results") == 4 + 3
        # Past expires_at, the status reads EXPIRED even before the purge ran.
        warehouse.execute(
            "UPDATE historical_queries SET expires_at = :t WHERE query_id = :q",
            {"t": store.now() - timedelta(seconds=1), "q": short},
        )
        assert client.status(short).status == "EXPIRED"
        with pytest.raises(store.QueryExpired, match="expired"):
            client.next(short)
        # The purge (as its schedule runs it) deletes the rows and records EXPIRED.
        assert store.purge_expired(warehouse, store.now() + timedelta(minutes=2)) == sorted([short, failed])
        assert warehouse.fetch_all(
            "SELECT query_id, status FROM historical_queries ORDER BY status, query_id"
        ) == sorted(
            [
                {"query_id": keep, "status": "FINISHED"},
                {"query_id": short, "status": "EXPIRED"},
                {"query_id": failed, "status": "EXPIRED"},
            ],
            key=lambda r: (r["status"], r["query_id"]),
        )
        assert warehouse.scalar("SELECT count(*) FROM historical_query_results") == 4
        # An expired query is not run again, and the purge job runs from its schedule's job.
        result = defs.resolve_job_def("historical_queries_purge_job").execute_in_process(instance=instance)
        assert result.success
        requests = [dg.RunRequest(run_config={"ops": {"historical_query_results": {"config": {"query_id": short}}}})]
        assert launch(defs, instance, requests[0]).success
        assert client.status(short).status == "EXPIRED"


def test_materializing_without_a_query_id_runs_every_queued_query(warehouse, engine, events):
    client = QueryClient(warehouse)
    ids = [client.submit(Q_V1), client.submit(Q_BY_SERVICE)]
    defs = definitions(warehouse, engine)
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("historical_query_job").execute_in_process(instance=instance)
    assert result.success
    assert [client.status(q).status for q in ids] == ["FINISHED", "FINISHED"]
    mat = result.asset_materializations_for_node("historical_query_results")[0]
    assert mat.metadata["dagster/row_count"].value == 7


def test_materializing_with_an_empty_queue_succeeds_and_says_so(sqlite_warehouse, engine):
    """`dagster asset materialize --select historical_query_results` with nothing QUEUED."""
    defs = definitions(sqlite_warehouse, engine)
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("historical_query_job").execute_in_process(instance=instance)
    assert result.success
    mat = result.asset_materializations_for_node("historical_query_results")[0]
    assert (mat.metadata["queries_run"].value, mat.metadata["dagster/row_count"].value) == (0, 0)
    assert mat.metadata["duration_s"].value == 0.0


def test_an_unknown_query_id_in_the_run_config_fails_the_run_with_a_message(sqlite_warehouse, engine):
    defs = definitions(sqlite_warehouse, engine)
    request = dg.RunRequest(
        run_config={
            "ops": {"historical_query_results": {"config": {"query_id": "00000000-0000-0000-0000-000000000000"}}}
        }
    )
    with dg.instance_for_test() as instance:
        job = defs.resolve_job_def("historical_query_job")
        result = job.execute_in_process(run_config=request.run_config, instance=instance, raise_on_error=False)
    assert not result.success
    assert "is not in historical_queries" in str(result.all_events)


def test_any_engine_error_ends_failed_not_stuck_running(sqlite_warehouse, events, monkeypatch):
    from metrics_assets.queries import execution

    def broken(engine, sql, **kwargs):
        raise ValueError("the engine's result could not be read")

    monkeypatch.setattr(execution, "execute", broken)
    client = QueryClient(sqlite_warehouse)
    q = client.submit(Q_V1)
    engine = DuckDBQueryEngine.with_catalog(standin.catalog(), object_store_dir=str(settings.object_store_dir()))
    outcome = runner.run_query(sqlite_warehouse, engine, q)
    assert outcome.status == "FAILED"
    status = client.status(q)
    assert (status.status, status.error) == ("FAILED", "ValueError: the engine's result could not be read")


def test_local_bytes_scanned_counts_the_lake_tables_read_not_ctes_named_like_them(engine, events):
    """The local "data scanned" figure is the size of the files of the tables the query reads:
    a CTE that shadows ``events_v0`` reads none of them."""
    from metrics_assets.queries import execution

    v0_folder = standin.catalog()["events_v0"].local_dir(settings.object_store_dir())
    v0_bytes = sum(p.stat().st_size for p in v0_folder.rglob("*") if p.is_file())
    assert v0_bytes > 0

    read = execution.execute(engine, "SELECT count(*) AS n FROM events_v0")
    assert read.table.column("n").to_pylist() == [len(events["v0"])]
    assert read.bytes_scanned == v0_bytes

    shadowed = execution.execute(engine, "WITH events_v0 AS (SELECT 1 AS x) SELECT count(*) AS n FROM events_v0")
    assert shadowed.table.column("n").to_pylist() == [1]
    assert shadowed.bytes_scanned == 0
