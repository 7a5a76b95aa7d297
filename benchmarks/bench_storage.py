"""Storage benchmarks, each measured against a baseline from the same run.

* Attribution: the snapshot's attribute-and-aggregate step (rules compiled to regexes, one
  CASE in DuckDB) over 1,000,000 listed keys. Target: at most 3 s. Baseline: a bare DuckDB
  scan and GROUP BY of the same keys (no rules), to show what the rules cost.
* Listing ingestion: 1,000 pages of 1,000 keys streamed into DuckDB, against merely iterating
  the same pages in Python.
* Sensor ingestion: 10,000 S3 notification messages (spool queue, PostgreSQL warehouse) in one
  call of the sensor's ingest. Target: within 10 s. Baseline: a plain receive + delete loop
  over the same messages (no parsing, no database).
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime

from benchmarks.run import Result, timed
from metrics_assets.resources import ObjectInfo, SpoolNotificationQueue, Warehouse
from metrics_assets.storage.ingest import ingest
from metrics_assets.storage.rules import parse_rules
from metrics_assets.storage.usage import (
    duckdb_connection,
    list_into_duckdb,
    snapshot_tables,
)

RULES = parse_rules({"rules": [
    {"pattern": "uploads/{owner}/{object_id}/**", "metered_object_type": "UPLOAD"},
    {"pattern": "scenes/{owner}/{object_id}/**", "metered_object_type": "SCENE"},
    {"pattern": "exports/{owner}/{object_id}/**", "metered_object_type": "EXPORT"},
]})

KEYS_SQL = """
CREATE OR REPLACE TABLE listing AS
SELECT CASE WHEN i % 10 < 6 THEN 'platform-uploads' ELSE 'platform-scenes' END AS bucket,
       CASE WHEN i % 10 < 6 THEN 'uploads/owner' || ((i // 7) % 500) || '/u' || (i // 7) || '/part-' || i || '.bin'
            WHEN i % 10 < 9 THEN 'scenes/owner' || ((i // 13) % 500) || '/s' || (i // 13) || '/band_' || (i % 12) || '.tif'
            ELSE 'misc/' || i END AS key,
       CAST((i * 7919) % 10000000 AS BIGINT) AS size,
       TIMESTAMPTZ '2026-11-01 00:00:00+00' AS last_modified
FROM range(?) t(i)
"""


def _pages(n: int, page: int = 1000):
    now = datetime(2026, 11, 1, tzinfo=UTC)
    for start in range(0, n, page):
        yield [ObjectInfo("platform-uploads", f"uploads/owner{i % 500}/u{i // 7}/part-{i}.bin", i, now)
               for i in range(start, min(n, start + page))]


def _message(i: int) -> str:
    return ('{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1",'
            f'"eventTime":"2026-11-20T10:00:{i % 60:02d}.000Z","eventName":"ObjectCreated:Put",'
            '"s3":{"s3SchemaVersion":"1.0","bucket":{"name":"platform-uploads"},'
            f'"object":{{"key":"uploads/owner{i % 50}/u{i // 3}/my+file+{i}.bin","size":{i},'
            f'"sequencer":"0055AED6DC{i:08X}"}}}}}}]}}')


def run(ctx) -> list[Result]:
    n_keys = 20_000 if ctx.quick else 1_000_000
    n_messages = 500 if ctx.quick else 10_000
    results = []

    # -- attribution ---------------------------------------------------------------------
    con = duckdb_connection()
    con.execute(KEYS_SQL, [n_keys])
    with timed() as bare:
        con.execute("SELECT bucket, count(*), sum(size) FROM listing GROUP BY bucket").fetchall()
    with timed() as attr:
        stats = snapshot_tables(con, RULES, date(2026, 11, 20), datetime(2026, 11, 21, tzinfo=UTC), datetime(2026, 11, 21, tzinfo=UTC))
    assert stats.keys_metered == n_keys and stats.unattributed_keys == n_keys // 10
    label = f"attribute {n_keys:,} listed keys"
    results.append(Result(label, attr(), "s", "absolute target", 3.0, max_ratio=1.0,
                          note=f"bare DuckDB scan+GROUP BY of the same keys: {bare():.3f} s"))
    results.append(Result(label, attr(), "s", "bare DuckDB scan+GROUP BY", bare(), max_ratio=100.0,
                          note="what the rules cost over reading the keys at all"))

    # -- listing pages into DuckDB -------------------------------------------------------
    with timed() as iterate:
        for _page in _pages(n_keys):
            pass
    with timed() as stream:
        assert list_into_duckdb(con, _pages(n_keys), table="listing2") == n_keys
    con.close()
    results.append(Result(f"stream {n_keys:,} listed keys (pages of 1,000) into DuckDB", stream(), "s",
                          "building the same pages in Python", iterate(), max_ratio=3.0))

    # -- sensor ingestion ----------------------------------------------------------------
    spool = ctx.scratch / "spool"
    queue = SpoolNotificationQueue(spool_dir=str(spool))
    for i in range(n_messages):
        queue.send(_message(i))
    with timed() as plain:
        while batch := queue.receive(1000):
            for message in batch:
                message.body.encode()
            queue.delete(batch)
    for i in range(n_messages):
        queue.send(_message(i))
    warehouse = Warehouse(url=ctx.fresh_pg_database())
    warehouse.ensure_schema()
    with timed() as tick:
        stats = ingest(queue, warehouse)
    assert stats.events_new == n_messages and not os.listdir(spool)
    assert warehouse.scalar("SELECT count(*) FROM storage_object_events") == n_messages
    label = f"sensor tick: {n_messages:,} messages into PostgreSQL"
    results.append(Result(label, tick(), "s", "absolute target", 10.0, max_ratio=1.0,
                          note=f"plain receive+delete loop: {plain():.3f} s"))
    results.append(Result(label, tick(), "s", "plain receive+delete loop", plain(), max_ratio=5.0))
    return results
