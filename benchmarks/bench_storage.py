"""Storage benchmarks, each measured against a baseline from the same run.

* Attribution: the snapshot's attribute-and-aggregate step (rules compiled to regexes, one
  CASE in DuckDB) over 1,000,000 listed keys. Target: at most 3 s. Baseline: a bare DuckDB
  scan and GROUP BY of the same keys (no rules), to show what the rules cost.
* Listing ingestion: 1,000 pages of 1,000 keys streamed into DuckDB, against merely iterating
  the same pages in Python.
* Sensor ingestion: 10,000 S3 notification messages (spool queue, PostgreSQL warehouse) in one
  call of the sensor's ingest. Target: within 10 s. Baseline: a plain receive + delete loop
  over the same messages (no parsing, no database).
* Poison: the same 10,000-message tick with 1 % poison messages (NUL keys, lone surrogates,
  sizes of 2^63 and 1e20, bad sequencers) mixed in. Target: within 1.5x of the clean tick.
* Inventory: a 10,000,000-row S3 Inventory Parquet file with versions (about 1 in 5 rows a
  noncurrent version, 1 in 50 a delete marker), read and attributed to owners by the
  snapshot's code. Targets: at most 10 s, and at most 30x a bare DuckDB scan + GROUP BY of
  the same file.
"""

from __future__ import annotations

import dataclasses
import os
import resource
from datetime import UTC, date, datetime

from benchmarks.run import Result, timed
from metrics_assets.resources import ObjectInfo, SpoolNotificationQueue, Warehouse
from metrics_assets.resources.duckdb_session import open_session
from metrics_assets.resources.query_engine import render
from metrics_assets.storage import inventory_athena
from metrics_assets.storage.ingest import ingest
from metrics_assets.storage.inventory import (
    InventoryLocation,
    Manifest,
    duckdb_relation,
)
from metrics_assets.storage.rules import parse_rules
from metrics_assets.storage.usage import (
    list_into_duckdb,
    snapshot_tables,
)

RULES = parse_rules(
    {
        "rules": [
            {"pattern": "uploads/{owner}/{object_id}/**", "metered_object_type": "UPLOAD"},
            {"pattern": "scenes/{owner}/{object_id}/**", "metered_object_type": "SCENE"},
            {"pattern": "exports/{owner}/{object_id}/**", "metered_object_type": "EXPORT"},
        ]
    }
)

KEYS_SQL = """
CREATE OR REPLACE TABLE listing AS
SELECT CASE WHEN i % 10 < 6 THEN 'platform-uploads' ELSE 'platform-scenes' END AS bucket,
       CASE WHEN i % 10 < 6 THEN 'uploads/owner' || ((i // 7) % 500) || '/u' || (i // 7) || '/part-' || i || '.bin'
            WHEN i % 10 < 9 THEN 'scenes/owner' || ((i // 13) % 500) || '/s' || (i // 13) || '/band_' || (i % 12) || '.tif'
            ELSE 'misc/' || i END AS key,
       CAST((i * 7919) % 10000000 AS BIGINT) AS size,
       TIMESTAMPTZ '2026-11-01 00:00:00+00' AS last_modified,
       '' AS version_id, true AS is_latest, false AS is_delete_marker
FROM range(?) t(i)
"""


def _pages(n: int, page: int = 1000):
    now = datetime(2026, 11, 1, tzinfo=UTC)
    for start in range(0, n, page):
        yield [
            ObjectInfo("platform-uploads", f"uploads/owner{i % 500}/u{i // 7}/part-{i}.bin", i, now)
            for i in range(start, min(n, start + page))
        ]


def _message(i: int) -> str:
    return (
        '{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1",'
        f'"eventTime":"2026-11-20T10:00:{i % 60:02d}.000Z","eventName":"ObjectCreated:Put",'
        '"s3":{"s3SchemaVersion":"1.0","bucket":{"name":"platform-uploads"},'
        f'"object":{{"key":"uploads/owner{i % 50}/u{i // 3}/my+file+{i}.bin","size":{i},'
        f'"sequencer":"0055AED6DC{i:08X}"}}}}}}]}}'
    )


POISONS = [
    # shaped like _message's records, one field made hostile (see test_poison.py)
    lambda i: _message(i).replace(f'"key":"uploads/owner{i % 50}/', '"key":"uploads/%00/'),
    lambda i: _message(i).replace(f'"key":"uploads/owner{i % 50}/', '"key":"uploads/\\ud800/'),
    lambda i: _message(i).replace(f'"size":{i},', '"size":9223372036854775808,'),
    lambda i: _message(i).replace(f'"size":{i},', '"size":1e20,'),
    lambda i: _message(i).replace('"sequencer":"', '"sequencer":"\\n'),
]

INVENTORY_SQL = """
COPY (
    SELECT CASE WHEN i % 10 < 6 THEN 'platform-uploads' ELSE 'platform-scenes' END AS bucket,
           CASE WHEN i % 10 < 6 THEN 'uploads/owner' || ((i // 35) % 500) || '/u' || (i // 35) || '/part-' || (i // 5) || '.bin'
                WHEN i % 10 < 9 THEN 'scenes/owner' || ((i // 65) % 500) || '/s' || (i // 65) || '/band_' || (i // 5) || '.tif'
                ELSE 'misc/' || (i // 5) END AS key,
           printf('%032x', hash(i)) AS version_id,
           i % 5 = 0 AS is_latest,
           i % 50 = 7 AS is_delete_marker,
           CASE WHEN i % 50 = 7 THEN NULL ELSE CAST((i * 7919) % 10000000 AS BIGINT) END AS size,
           make_timestamp(1764000000000000 + i * 1000) AS last_modified_date,
           printf('%032x', hash(i + 1)) AS e_tag, 'STANDARD' AS storage_class, false AS is_multipart_uploaded
    FROM range(?) t(i)
) TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE 1000000)
"""


def _inventory(ctx, n: int):
    path = ctx.scratch / "inventory.parquet"
    con = open_session()
    con.execute(INVENTORY_SQL.format(path=path), [n])
    con.close()
    manifest = Manifest(
        location=None,
        key="manifest.json",
        source_bucket="platform-uploads",
        destination_bucket="inv",
        created_at=datetime(2026, 11, 21, tzinfo=UTC),
        file_format="Parquet",
        columns=[
            "bucket",
            "key",
            "version_id",
            "is_latest",
            "is_delete_marker",
            "size",
            "last_modified_date",
            "e_tag",
            "storage_class",
            "is_multipart_uploaded",
        ],
        files=[{"key": "data/inventory.parquet"}],
    )
    return path, manifest


def run(ctx) -> list[Result]:
    n_keys = 20_000 if ctx.quick else 1_000_000
    n_messages = 500 if ctx.quick else 10_000
    n_inventory = 200_000 if ctx.quick else 10_000_000
    results = []

    # -- inventory: read and attribute ---------------------------------------------------
    path, manifest = _inventory(ctx, n_inventory)
    con = open_session()
    with timed() as bare_inv:
        con.execute(f"SELECT bucket, count(*), sum(size) FROM read_parquet('{path}') GROUP BY bucket").fetchall()
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    with timed() as inv:  # what usage_snapshot does: a view over the file as its listing
        list_into_duckdb(con, [], table="listed")
        con.execute(
            f"CREATE VIEW listing AS SELECT * FROM listed UNION ALL {duckdb_relation(manifest, [path], versioned=True)}"
        )
        stats = snapshot_tables(
            con, RULES, date(2026, 11, 20), datetime(2026, 11, 21, tzinfo=UTC), datetime(2026, 11, 21, tzinfo=UTC)
        )
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    con.close()
    assert stats.keys_listed == n_inventory and stats.delete_markers == n_inventory // 50
    assert stats.keys_metered == n_inventory - n_inventory // 50
    label = f"inventory: read + attribute {n_inventory:,} Parquet rows with versions"
    results.append(
        Result(
            label,
            inv(),
            "s",
            "absolute target",
            10.0,
            max_ratio=1.0,
            note=f"bare DuckDB scan+GROUP BY of the file: {bare_inv():.3f} s; CPU time {cpu:.1f} s "
            "(wall time above CPU/threads means the cores were shared)",
        )
    )
    results.append(Result(label, inv(), "s", "bare DuckDB scan+GROUP BY of the file", bare_inv(), max_ratio=30.0))

    # -- inventory on Athena: the production SQL, translated to DuckDB, over the same file ----
    # (Athena's own speed cannot be measured here; this shows the Trino SQL is set-based and
    # what it costs relative to a bare scan on one engine.)
    location = InventoryLocation("inv", "inventory/platform-uploads/daily")
    athena_manifest = dataclasses.replace(
        manifest, location=location, key="inventory/platform-uploads/daily/2026-11-21T00-30Z/manifest.json"
    )
    con = open_session()
    con.execute(
        f"CREATE VIEW {inventory_athena.table_name(athena_manifest)} AS "
        f"SELECT *, '{inventory_athena.dt_of(athena_manifest)}' AS dt FROM read_parquet('{path}')"
    )
    with timed() as on_trino_sql:
        groups = con.execute(
            render(
                inventory_athena.groups_sql(athena_manifest, "", True, datetime(2026, 11, 21, tzinfo=UTC), RULES),
                None,
                "duckdb",
            )
        ).fetchall()
    con.close()
    assert sum(g[4] for g in groups) == n_inventory - n_inventory // 50
    results.append(
        Result(
            f"inventory, Athena's attribution SQL run by DuckDB, {n_inventory:,} rows",
            on_trino_sql(),
            "s",
            "bare DuckDB scan+GROUP BY of the file",
            bare_inv(),
            max_ratio=60.0,
            note=f"{len(groups):,} groups fetched instead of {n_inventory:,} rows",
        )
    )

    # -- attribution ---------------------------------------------------------------------
    con = open_session()
    con.execute(KEYS_SQL, [n_keys])
    with timed() as bare:
        con.execute("SELECT bucket, count(*), sum(size) FROM listing GROUP BY bucket").fetchall()
    with timed() as attr:
        stats = snapshot_tables(
            con, RULES, date(2026, 11, 20), datetime(2026, 11, 21, tzinfo=UTC), datetime(2026, 11, 21, tzinfo=UTC)
        )
    assert stats.keys_metered == n_keys and stats.unattributed_keys == n_keys // 10
    label = f"attribute {n_keys:,} listed keys"
    results.append(
        Result(
            label,
            attr(),
            "s",
            "absolute target",
            3.0,
            max_ratio=1.0,
            note=f"bare DuckDB scan+GROUP BY of the same keys: {bare():.3f} s",
        )
    )
    results.append(
        Result(
            label,
            attr(),
            "s",
            "bare DuckDB scan+GROUP BY",
            bare(),
            max_ratio=100.0,
            note="what the rules cost over reading the keys at all",
        )
    )

    # -- listing pages into DuckDB -------------------------------------------------------
    with timed() as iterate:
        for _page in _pages(n_keys):
            pass
    with timed() as stream:
        assert list_into_duckdb(con, _pages(n_keys), table="listing2") == n_keys
    con.close()
    results.append(
        Result(
            f"stream {n_keys:,} listed keys (pages of 1,000) into DuckDB",
            stream(),
            "s",
            "building the same pages in Python",
            iterate(),
            max_ratio=3.0,
        )
    )

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
    results.append(
        Result(
            label,
            tick(),
            "s",
            "absolute target",
            10.0,
            max_ratio=1.0,
            note=f"plain receive+delete loop: {plain():.3f} s",
        )
    )
    results.append(Result(label, tick(), "s", "plain receive+delete loop", plain(), max_ratio=5.0))

    # -- the same tick with 1 % poison, against the clean tick run again just before it ----
    # (both on a fresh database, after the first tick has warmed the process up)
    warehouse2 = Warehouse(url=ctx.fresh_pg_database())
    warehouse2.ensure_schema()
    warehouse3 = Warehouse(url=ctx.fresh_pg_database())
    warehouse3.ensure_schema()
    for i in range(n_messages):
        queue.send(_message(i))
    with timed() as clean:
        stats = ingest(queue, warehouse3)
    assert stats.events_new == n_messages and not os.listdir(spool)
    n_poison = n_messages // 100
    poison_at = set(range(0, n_messages, n_messages // n_poison))
    for i in range(n_messages):
        queue.send(POISONS[i % len(POISONS)](i) if i in poison_at else _message(i))
    with timed() as poisoned:
        stats = ingest(queue, warehouse2)
    assert (stats.events_new, stats.dead_letters) == (n_messages - n_poison, n_poison) and not os.listdir(spool)
    assert warehouse2.scalar("SELECT count(*) FROM storage_dead_letters") == n_poison
    results.append(
        Result(
            f"sensor tick: {n_messages:,} messages, 1 % poison",
            poisoned(),
            "s",
            "the same tick without poison",
            clean(),
            max_ratio=1.5,
        )
    )
    return results
