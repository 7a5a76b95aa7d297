"""Object store, notification queue and query engine: local implementations on disk, the
production ones against moto's HTTP server, and the Trino-to-DuckDB translation."""

from __future__ import annotations

import gzip
import json

import boto3
import pytest
import sqlglot
from dagster_aws.s3 import S3Resource

from metrics_assets.resources import (
    AthenaQueryEngine,
    DuckDBQueryEngine,
    LocalObjectStore,
    QueryFailed,
    S3ObjectStore,
    SpoolNotificationQueue,
    SQSNotificationQueue,
    lake,
)
from metrics_assets.resources.query_engine import athena_cost_usd, render
from metrics_assets_tests.moto_athena import AthenaUnload, duckdb_over


def test_local_object_store_round_trip_and_pages(tmp_path):
    store = LocalObjectStore(root_dir=str(tmp_path))
    for i in range(2345):
        store.put_bytes("b", f"p/{i:05d}.txt", b"x" * (i % 7))
    store.put_bytes("b", "other/1.txt", b"zz")
    pages = list(store.list_pages("b", "p/"))
    assert [len(p) for p in pages] == [1000, 1000, 345]
    keys = [o.key for page in pages for o in page]
    assert keys == sorted(keys) and keys[0] == "p/00000.txt"
    assert sum(o.size for page in pages for o in page) == sum(i % 7 for i in range(2345))
    assert store.get_bytes("b", "other/1.txt") == b"zz"
    with pytest.raises(ValueError):
        store.local_path("b", "../../etc/passwd")


def test_s3_object_store_against_moto(moto_server, tmp_path):
    boto3.client("s3", endpoint_url=moto_server).create_bucket(Bucket="bkt")
    store = S3ObjectStore(s3=S3Resource(region_name="us-east-1", endpoint_url=moto_server))
    for i in range(25):
        store.put_bytes("bkt", f"k/{i:04d}", b"abc")
    store.put_bytes("bkt", "other", b"abc")
    pages = list(store.list_pages("bkt", "k/", page_size=10))  # every page is followed
    assert [len(p) for p in pages] == [10, 10, 5]
    assert store.get_bytes("bkt", "k/0007") == b"abc"
    local = store.local_copy("bkt", "k/0007", tmp_path)
    assert local.read_bytes() == b"abc"
    store.delete("bkt", "k/0007")
    assert sum(len(p) for p in store.list_pages("bkt", "k/")) == 24


def test_spool_queue_is_ordered_and_deletes_only_what_was_acknowledged(tmp_path):
    queue = SpoolNotificationQueue(spool_dir=str(tmp_path / "spool"))
    for i in range(5):
        queue.send(json.dumps({"n": i}))
    batch = queue.receive(max_messages=3)
    assert [json.loads(m.body)["n"] for m in batch] == [0, 1, 2]
    queue.delete(batch[:2])
    assert [json.loads(m.body)["n"] for m in queue.receive(max_messages=10)] == [2, 3, 4]


def test_sqs_queue_against_moto(moto_server):
    url = boto3.client("sqs", endpoint_url=moto_server).create_queue(QueueName="notif")["QueueUrl"]
    queue = SQSNotificationQueue(queue_url=url, endpoint_url=moto_server)
    for i in range(23):
        queue.send(json.dumps({"n": i}))
    got = queue.receive(max_messages=50)
    assert sorted(json.loads(m.body)["n"] for m in got) == list(range(23))
    queue.delete(got)
    assert queue.receive(max_messages=50) == []


def test_render_binds_placeholders_and_translates():
    sql = "SELECT count(*) AS n FROM t WHERE day = :day AND from_unixtime(ts / 1000) >= :start"
    duck = render(sql, {"day": "05", "start": 3}, "duckdb")
    assert "'05'" in duck and "TO_TIMESTAMP" in duck.upper()
    assert sqlglot.parse_one(render(sql, {"day": "05", "start": 3}, "trino"), read="trino")
    with pytest.raises(ValueError, match="start"):
        render(sql, {"day": "05"}, "duckdb")
    with pytest.raises(ValueError, match="exactly one"):
        render("SELECT 1; SELECT 2", None, "duckdb")


def test_duckdb_engine_reads_the_lake_tables_of_its_catalog(tmp_path):
    folder = tmp_path / "bkt" / "t"
    folder.mkdir(parents=True)
    with gzip.open(folder / "a.json.gz", "wt") as f:
        for i in range(10):
            f.write(json.dumps({"x": i, "g": "even" if i % 2 == 0 else "odd"}) + "\n")

    def view(path):
        return f"SELECT * FROM read_json('{path}/*.json.gz', format='newline_delimited', columns={{'x': 'BIGINT', 'g': 'VARCHAR'}})"

    catalog = lake.LakeCatalog([lake.LakeTable("test_lake_t", "bkt", "t", view)])
    engine = DuckDBQueryEngine.with_catalog(catalog, object_store_dir=str(tmp_path))
    result = engine.execute("SELECT g, sum(x) AS s FROM test_lake_t WHERE x >= :lo GROUP BY g ORDER BY g", {"lo": 1})
    assert result.table.to_pylist() == [{"g": "even", "s": 2 + 4 + 6 + 8}, {"g": "odd", "s": 1 + 3 + 5 + 7 + 9}]
    assert result.bytes_scanned == (folder / "a.json.gz").stat().st_size
    with pytest.raises(QueryFailed):
        engine.execute("SELECT nope FROM test_lake_t")


def test_the_lake_catalog_is_built_from_the_domains_declarations(monkeypatch):
    """build_resources hands the query engine one catalog: every domain's LAKE_TABLES, in the
    order of metrics_assets/lake_catalog.py (events, then probes); a name declared twice fails."""
    from metrics_assets import lake_catalog
    from metrics_assets.resources import build_resources

    engine = build_resources("local", lake_tables=lake_catalog.declarations())["query_engine"]
    assert list(engine.catalog) == ["events_v0", "events_v1", "events_normalized", "telemetry_samples"]
    assert engine.catalog.ad_hoc_names() == ("events_v0", "events_v1")
    monkeypatch.setenv("EVENT_LAKE_BUCKET", "other-bucket")
    monkeypatch.setenv("EVENT_LAKE_PREFIX", "p/q")
    assert engine.catalog["events_v1"].location() == ("other-bucket", "p/q/v1")  # read when used
    table = lake.LakeTable("t", "b", "p", lambda _folder: "SELECT 1")
    with pytest.raises(ValueError, match="declared twice"):
        lake.LakeCatalog.from_declarations([(table,), (table,)])


def test_athena_cost_has_a_10_mb_minimum():
    assert athena_cost_usd(0) == pytest.approx(10 * 1024 * 1024 / 1e12 * 5)
    assert athena_cost_usd(2 * 10**12) == pytest.approx(10.0)


def test_athena_engine_protocol_against_moto(moto_server):
    """moto's Athena answers the protocol (start, poll, results from UNLOAD files)."""
    boto3.client("s3", endpoint_url=moto_server).create_bucket(Bucket="athena-results")
    boto3.client("athena", endpoint_url=moto_server, region_name="us-east-1").create_work_group(
        Name="metrics", Configuration={"ResultConfiguration": {"OutputLocation": "s3://athena-results/"}}
    )
    engine = AthenaQueryEngine(
        work_group="metrics",
        output_location="s3://athena-results/",
        database="lake",
        endpoint_url=moto_server,
        poll_interval_s=0.05,
    )
    # Athena's part (running the UNLOAD's SELECT, writing its Parquet files and manifest) is
    # played by AthenaUnload: see metrics_assets_tests/moto_athena.py for what and why.
    with AthenaUnload(moto_server, "s3://athena-results/unload/", duckdb_over({})):
        result = engine.execute("SELECT 1 AS one")
    assert result.engine == "athena" and result.query_id
    assert result.table.to_pylist() == [{"one": 1}]
    # AWS: $5 per TB scanned, at least 10 MB per query (computed here, not by the code)
    assert result.cost_usd == pytest.approx(max(result.bytes_scanned, 10 * 1024 * 1024) / 1e12 * 5)
