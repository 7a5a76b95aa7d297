"""usage_snapshot from S3 Inventory on Athena (production): the report scanned where it lies.

Two halves, against the same inventory reports (written into moto's S3 as S3 writes them, see
test_inventory.py: manifest.json, manifest.checksum, the data files, and the Hive manifest
``hive/dt=YYYY-MM-DD-HH-MM/symlink.txt`` listing the data files' s3:// URLs -
storage-inventory-location.html):

* the protocol, against moto's Athena over HTTP: the statements sent (DROP then CREATE
  EXTERNAL TABLE over ``.../hive/`` with ``SymlinkTextInputFormat`` and partition projection on
  ``dt``, as in AWS's "Querying Amazon S3 Inventory with Amazon Athena",
  storage-inventory-athena-query.html; then the counts and the grouped attribution; then the
  DROP), the work group, and what the asset writes from the results. moto's Athena runs no SQL:
  ``AthenaUnload`` (moto_athena.py) plays Athena's part, answering each UNLOAD's SELECT, in the
  order the asset sends them, with the results computed by hand (:func:`_answers`);
* the SQL itself: parsed with sqlglot's Trino dialect, translated to DuckDB and run over the
  same data files (the table a view over the files symlink.txt names, with ``dt`` as its
  partition column), giving exactly the hand-computed groups, hence the per-owner bytes the
  local path writes (test_inventory.py's EXPECTED).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pyarrow as pa
import pytest
import sqlglot

from metrics_assets.resources.duckdb_session import open_session
from metrics_assets.resources.query_engine import ORDER_COLUMN, render
from metrics_assets.resources.sqltext import literal
from metrics_assets.storage import config, inventory_athena
from metrics_assets.storage.inventory import latest_manifest
from metrics_assets_tests.moto_athena import AthenaUnload, athena_engine

from .conftest import TODAY, materialize_snapshot, metadata_of, usage_rows
from .test_inventory import (  # noqa: F401 - fixture
    EXPECTED,
    INVENTORY,
    SCENES,
    UPLOADS,
    _publish,
    _versions,
    aws,
)

WORK_GROUP = "metrics"
OUTPUT = "s3://athena-results/metrics/"
CREATED = datetime.combine(TODAY, time(0, 30), UTC)  # the day's report, taken at 00:30
DT = f"{CREATED:%Y-%m-%d-%H-%M}"
# The groups by hand (see test_inventory.py's aws fixture): uploads (versioned, Parquet): alice's
# u1 has two versions, 100 (noncurrent) + 250; bob's b1 one version of 40 behind a delete
# marker (noncurrent); misc/readme.txt, 7 bytes, matches no rule. Scenes (CSV, current only,
# only under scenes/): carol's s1, 30 + 5.
PARTS = [
    (UPLOADS, 0, "uploads/alice/u1", 350, 2, 100, 1, "UPLOAD", "u1", "alice", f"s3://{UPLOADS}/uploads/alice/u1"),
    (UPLOADS, 0, "uploads/bob/b1", 40, 1, 40, 1, "UPLOAD", "b1", "bob", f"s3://{UPLOADS}/uploads/bob/b1"),
    (UPLOADS, None, None, 7, 1, 0, 0, "UNATTRIBUTED", UPLOADS, None, f"s3://{UPLOADS}/"),
    (SCENES, 1, "scenes/carol/s1", 35, 2, 0, 0, "SCENE", "s1", "carol", f"s3://{SCENES}/scenes/carol/s1"),
]
PART_COLUMNS = [
    ("bucket", "varchar"),
    ("rule", "integer"),
    ("location", "varchar"),
    ("usage_amount", "bigint"),
    ("object_count", "bigint"),
    ("noncurrent_bytes", "bigint"),
    ("noncurrent_versions", "bigint"),
    ("metered_object_type", "varchar"),
    ("object_id", "varchar"),
    ("owner", "varchar"),
    ("object_location", "varchar"),
]
STATS_COLUMNS = [("rows_listed", "bigint"), ("modified_after_day", "bigint"), ("delete_markers", "bigint")]
# rows under the metered prefix: uploads 2 + 2 (a version and a delete marker) + 1; scenes 2
STATS = {UPLOADS: [5, 0, 1], SCENES: [2, 0, 0]}


_ARROW = {"varchar": pa.string(), "integer": pa.int32(), "bigint": pa.int64()}


def _answers(*results):
    """Athena's part for the SELECTs in the order they come: each ``(columns, rows)`` (Athena
    column types, rows as lists, in the query's order) as the Arrow table UNLOAD writes as
    Parquet; with the row numbers in the engine's order column when the SELECT computes it."""
    tables = iter(
        [
            pa.table({name: pa.array([r[i] for r in rows], _ARROW[kind]) for i, (name, kind) in enumerate(columns)})
            for columns, rows in results
        ]
    )

    def answer(select: str) -> pa.Table:
        table = next(tables)
        if ORDER_COLUMN in select:
            table = table.append_column(ORDER_COLUMN, pa.array(range(table.num_rows), pa.int64()))
        return table

    return answer


def _reports(s3, monkeypatch) -> None:
    uploads = _publish(s3, UPLOADS, "Parquet", _versions(s3, UPLOADS), CREATED)
    scenes = _publish(s3, SCENES, "CSV", _versions(s3, SCENES), CREATED)
    monkeypatch.setenv("STORAGE_INVENTORY", f"{uploads}, {SCENES}={scenes}")


def _manifests(resources) -> dict:
    return {
        m.source_bucket: m
        for m in (latest_manifest(resources["object_store"], loc, TODAY) for loc in config.inventories())
    }


@pytest.fixture
def athena(moto_server):
    with athena_engine(moto_server, work_group=WORK_GROUP, output=OUTPUT, database="metrics") as (engine, client):
        yield engine, client, moto_server


def test_snapshot_on_athena_sends_the_ddl_and_fetches_only_groups(aws, athena, monkeypatch):  # noqa: F811
    s3, resources = aws
    engine, client, endpoint = athena
    _reports(s3, monkeypatch)
    # The statements, in the order the asset sends them: per report (uploads, then scenes:
    # STORAGE_BUCKETS' order) DROP, CREATE, counts, groups; then the two DROPs. The DDL goes
    # through; the two SELECTs of each report are answered in turn.
    answers = _answers(
        *[
            result
            for bucket in (UPLOADS, SCENES)
            for result in ((STATS_COLUMNS, [STATS[bucket]]), (PART_COLUMNS, [list(p) for p in PARTS if p[0] == bucket]))
        ]
    )
    with AthenaUnload(endpoint, OUTPUT + "unload/", answers):
        result = materialize_snapshot(resources | {"query_engine": engine})
    assert result.success
    warehouse = resources["warehouse"]
    assert usage_rows(warehouse, "usage_data") == EXPECTED
    assert {
        r["owner"]: int(r["noncurrent_bytes"])
        for r in warehouse.fetch_all("SELECT owner, noncurrent_bytes FROM usage_data")
    } == {"alice": 100, "bob": 40, "carol": 0, None: 0}
    # The keys never left S3: no per-key baseline, and the run says so (not a base for usage_live).
    assert warehouse.scalar("SELECT count(*) FROM storage_snapshot_objects") == 0
    assert warehouse.fetch_all("SELECT source FROM storage_snapshot_runs") == [{"source": "athena-inventory"}]
    meta = metadata_of(result, "usage_snapshot")
    assert (meta["keys_listed"], meta["keys_metered"], meta["delete_markers"]) == (7, 6, 1)
    assert meta["query_engine"] == "athena" and meta["athena_queries"] == 10
    assert meta["per_key_baseline"].startswith("not kept")

    ids = client.list_query_executions(WorkGroup=WORK_GROUP)["QueryExecutionIds"]
    executions = [client.get_query_execution(QueryExecutionId=i)["QueryExecution"] for i in ids]
    assert {e["WorkGroup"] for e in executions} == {WORK_GROUP}
    sent = [e["Query"] for e in executions]
    assert len(sent) == 10
    uploads_table = f"storage_inventory_{UPLOADS}_daily_{DT}".replace("-", "_")
    scenes_table = f"storage_inventory_{SCENES}_daily_{DT}".replace("-", "_")
    assert sent[0] == f"DROP TABLE IF EXISTS {uploads_table}"
    assert sent[4] == f"DROP TABLE IF EXISTS {scenes_table}"
    assert sent[8:] == [f"DROP TABLE IF EXISTS {uploads_table}", f"DROP TABLE IF EXISTS {scenes_table}"]
    parquet_ddl, csv_ddl = (q.replace(" = ", "=") for q in (sent[1], sent[5]))
    for ddl, source, table in ((parquet_ddl, UPLOADS, uploads_table), (csv_ddl, SCENES, scenes_table)):
        assert ddl.startswith(f"CREATE EXTERNAL TABLE {table} (")
        assert "partitioned by (dt string)" in ddl.lower()
        assert "STORED AS INPUTFORMAT 'org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat'" in ddl
        assert "OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'" in ddl
        assert f"LOCATION 's3://{INVENTORY}/inventory/{source}/daily/hive/'" in ddl
        for prop in (
            "'projection.enabled'='true'",
            "'projection.dt.type'='date'",
            "'projection.dt.format'='yyyy-MM-dd-HH-mm'",
            f"'projection.dt.range'='{DT},{DT}'",
            f"'storage.location.template'='s3://{INVENTORY}/inventory/{source}/daily/hive/dt=${{dt}}/'",
        ):
            assert prop in ddl
    assert "ROW FORMAT SERDE 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe'" in parquet_ddl
    # Parquet: the columns the snapshot reads, by name, typed as AWS's example types them
    assert (
        "(bucket string, key string, version_id string, is_latest boolean, is_delete_marker boolean, "
        "size bigint, last_modified_date timestamp)"
    ) in parquet_ddl.lower()
    assert "ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.OpenCSVSerde'" in csv_ddl
    # CSV (OpenCSVSerde reads by position): every fileSchema column, in order, as a string
    assert (
        "(bucket string, key string, size string, last_modified_date string, etag string, storageclass string, "
        "ismultipartuploaded string)"
    ) in csv_ddl.lower()
    for query, table in (
        (sent[2], uploads_table),
        (sent[3], uploads_table),
        (sent[6], scenes_table),
        (sent[7], scenes_table),
    ):
        assert f"FROM {table}" in query and f"dt = '{DT}'" in query
    assert "GROUP BY bucket, rule, location" in sent[3] and "GROUP BY bucket, rule, location" in sent[7]
    assert "STARTS_WITH(URL_DECODE(REPLACE(key, '+', '%20')), 'scenes/')" in sent[6]  # only the metered prefix
    assert "SELECT key" not in " ".join(sent)  # never the keys themselves


def _duckdb_over_reports(resources, tmp_path):
    """A DuckDB session where each report's Athena table is a view over the data files its
    hive/dt=.../symlink.txt names (copied from moto), with ``dt`` as a column."""
    store = resources["object_store"]
    con = open_session(":memory:")
    manifests = _manifests(resources)
    for manifest in manifests.values():
        symlink = store.get_bytes(
            INVENTORY, f"{manifest.location.prefix}/hive/dt={inventory_athena.dt_of(manifest)}/symlink.txt"
        )
        keys = [line.removeprefix(f"s3://{INVENTORY}/") for line in symlink.decode().splitlines() if line]
        files = "[" + ", ".join(literal(str(store.local_copy(INVENTORY, k, tmp_path))) for k in keys) + "]"
        if manifest.file_format == "Parquet":
            source = f"read_parquet({files})"
        else:  # OpenCSVSerde: every column a string
            spec = "{" + ", ".join(f"{literal(c)}: 'VARCHAR'" for c in manifest.columns) + "}"
            source = f"read_csv({files}, header = false, columns = {spec}, quote = '\"', compression = 'auto')"
        con.execute(
            f"CREATE VIEW {inventory_athena.table_name(manifest)} AS "
            f"SELECT *, {literal(inventory_athena.dt_of(manifest))} AS dt FROM {source}"
        )
    return con, manifests


def _trino_to_duckdb(sql: str) -> str:
    sqlglot.parse_one(sql, read="trino")  # it is Trino SQL
    return render(sql, None, "duckdb")


def test_the_trino_attribution_run_on_duckdb_gives_the_hand_computed_groups(aws, monkeypatch, tmp_path):  # noqa: F811
    s3, resources = aws
    _reports(s3, monkeypatch)
    scopes, rules = config.buckets(), config.rules()
    con, manifests = _duckdb_over_reports(resources, tmp_path)
    cutoff = datetime.combine(TODAY + timedelta(days=1), time(0), UTC)  # the end of the snapshot's day
    parts, stats = [], {}
    for scope in scopes:
        manifest = manifests[scope.bucket]
        versioned = scope.bucket == UPLOADS
        stats[scope.bucket] = list(
            con.execute(
                _trino_to_duckdb(inventory_athena.stats_sql(manifest, scope.prefix, versioned, cutoff))
            ).fetchall()[0]
        )
        parts += con.execute(
            _trino_to_duckdb(inventory_athena.groups_sql(manifest, scope.prefix, versioned, cutoff, rules))
        ).fetchall()
    assert stats == STATS
    assert sorted(parts, key=str) == sorted(PARTS, key=str)
    # per owner, the bytes the local path writes (test_inventory.py: EXPECTED)
    assert {(p[7], p[8], p[9], p[3], p[4]) for p in parts} == EXPECTED

    # The conflicting keys' query, for two places: exactly their stored versions.
    manifest = manifests[UPLOADS]
    keys = con.execute(
        _trino_to_duckdb(
            inventory_athena.conflict_keys_sql(
                manifest, "", True, cutoff, rules, [(UPLOADS, 0, "uploads/alice/u1"), (UPLOADS, 0, "uploads/bob/b1")]
            )
        )
    ).fetchall()
    assert sorted((k[3], k[5]) for k in keys) == [
        ("uploads/alice/u1/a.bin", 100),
        ("uploads/alice/u1/a.bin", 250),
        ("uploads/bob/b1/c d+e.bin", 40),
    ]


def test_a_past_day_ranks_keys_changed_after_it(aws, monkeypatch, tmp_path):  # noqa: F811
    """A report taken after the snapshot's day: versions made after the cutoff are left out and
    the newest version before it is current again (snapshot_tables' rule), on the Trino SQL."""
    s3, resources = aws
    rows = _versions(s3, UPLOADS)
    # alice's two versions dated apart (moto stamps both within the same second)
    alice = sorted((r for r in rows if r["key"] == "uploads/alice/u1/a.bin"), key=lambda r: r["is_latest"])
    alice[0]["last_modified_date"] = datetime(2026, 1, 1, 12, tzinfo=UTC)  # 100 bytes, noncurrent today
    alice[1]["last_modified_date"] = datetime(2026, 1, 2, 12, tzinfo=UTC)  # 250 bytes, current today
    uploads = _publish(s3, UPLOADS, "Parquet", rows, CREATED)
    monkeypatch.setenv("STORAGE_INVENTORY", uploads)
    con, manifests = _duckdb_over_reports(resources, tmp_path)
    cutoff = datetime(2026, 1, 2, tzinfo=UTC)  # the end of 2026-01-01: only the first version existed
    stats = con.execute(_trino_to_duckdb(inventory_athena.stats_sql(manifests[UPLOADS], "", True, cutoff))).fetchall()[
        0
    ]
    groups = con.execute(
        _trino_to_duckdb(inventory_athena.groups_sql(manifests[UPLOADS], "", True, cutoff, config.rules()))
    ).fetchall()
    by_owner = {g[9]: g[3:7] for g in groups}
    # (bytes, versions, noncurrent bytes, noncurrent versions): alice's 100 bytes were current then
    assert by_owner["alice"] == (100, 1, 0, 0)
    assert stats[1] >= 1  # the 250-byte version (and the rest, made today) is after the cutoff


def test_conflicting_owners_on_athena_fetch_a_bounded_list_of_keys(aws, athena, monkeypatch):  # noqa: F811
    """One object id under two owners in an Athena-scanned report: the check fails naming the
    keys, fetched by one more query (LIMIT 50), each owner billed its own bytes."""
    s3, resources = aws
    engine, client, endpoint = athena
    uploads = _publish(s3, UPLOADS, "Parquet", _versions(s3, UPLOADS), CREATED)
    monkeypatch.setenv("STORAGE_INVENTORY", uploads)  # scenes is listed
    groups = [
        (UPLOADS, 0, "uploads/alice/u1", 350, 2, 100, 1, "UPLOAD", "u1", "alice", f"s3://{UPLOADS}/uploads/alice/u1"),
        (UPLOADS, 0, "uploads/bob/u1", 40, 1, 40, 1, "UPLOAD", "u1", "bob", f"s3://{UPLOADS}/uploads/bob/u1"),
        (UPLOADS, None, None, 7, 1, 0, 0, "UNATTRIBUTED", UPLOADS, None, f"s3://{UPLOADS}/"),
    ]
    # DROP, CREATE (let through), counts, groups, the conflicting keys (answered), DROP.
    answers = _answers(
        (STATS_COLUMNS, [STATS[UPLOADS]]),
        (PART_COLUMNS, [list(g) for g in groups]),
        (
            [
                ("bucket", "varchar"),
                ("rule", "integer"),
                ("location", "varchar"),
                ("key", "varchar"),
                ("version_id", "varchar"),
                ("size", "bigint"),
            ],
            [
                [UPLOADS, 0, "uploads/alice/u1", "uploads/alice/u1/a.bin", "v1", 100],
                [UPLOADS, 0, "uploads/alice/u1", "uploads/alice/u1/a.bin", "v2", 250],
                [UPLOADS, 0, "uploads/bob/u1", "uploads/bob/u1/c.bin", "v3", 40],
            ],
        ),
    )
    with AthenaUnload(endpoint, OUTPUT + "unload/", answers):
        result = materialize_snapshot(resources | {"query_engine": engine}, raise_on_error=False)
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == "one_owner_per_object"]
    assert not check.passed and check.metadata["conflicting_objects"].value == 1
    keys = check.metadata["keys"].value
    assert "s3://platform-uploads/uploads/bob/u1/c.bin" in keys and keys.count("uploads/alice/u1/a.bin") == 2
    warehouse = resources["warehouse"]
    assert usage_rows(warehouse, "usage_data", "metered_object_type = 'UPLOAD'") == {
        ("UPLOAD", "u1", "alice", 350, 2),
        ("UPLOAD", "u1", "bob", 40, 1),
    }
    assert usage_rows(warehouse, "usage_data", "metered_object_type = 'SCENE'") == {("SCENE", "s1", "carol", 35, 2)}
    assert warehouse.fetch_all("SELECT source FROM storage_snapshot_runs") == [{"source": "athena-inventory+listing"}]
    ids = client.list_query_executions(WorkGroup=WORK_GROUP)["QueryExecutionIds"]
    sent = [client.get_query_execution(QueryExecutionId=i)["QueryExecution"]["Query"] for i in ids]
    assert len(sent) == 6
    assert (
        "LIMIT 50" in sent[4]
        and "location = 'uploads/bob/u1'" in sent[4]
        and "location = 'uploads/alice/u1'" in sent[4]
    )
