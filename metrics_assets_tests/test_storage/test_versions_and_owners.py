"""Versioned buckets (ListObjectVersions, noncurrent bytes, version-keyed live usage, delete
markers) against moto over HTTP, and one object id claimed by two owners.

moto keeps versions and delete markers like S3 (ListObjectVersions gives Versions with
VersionId/IsLatest/Size and DeleteMarkers), but its event notifications carry no ``versionId``
and no ``sequencer``. So the live part runs with notifications off, and the test publishes
the messages S3 documents for each operation (notification-content-structure.html): a put
in a versioned bucket carries the new ``versionId``; deleting a key without a version id
creates a delete marker, ``ObjectRemoved:DeleteMarkerCreated`` with the marker's own
``versionId`` and no size; deleting a version by id is ``ObjectRemoved:Delete`` with that
``versionId``. The version ids are moto's real ones.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta

import boto3
import dagster as dg
import pytest
from dagster_aws.s3 import S3Resource

from metrics_assets.resources import (
    DuckDBQueryEngine,
    S3ObjectStore,
    SQSNotificationQueue,
)
from metrics_assets.resources.duckdb_session import open_session
from metrics_assets.storage.rules import parse_rules
from metrics_assets.storage.usage import snapshot_tables

from .conftest import (
    TODAY,
    materialize_billing,
    materialize_live,
    materialize_snapshot,
    metadata_of,
    run_sensor,
    s3_message,
    s3_record,
    usage_rows,
)

UPLOADS, SCENES = "platform-uploads", "platform-scenes"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _versioned_record(bucket, key, event, size, version_id, sequencer) -> dict:
    record = s3_record(bucket, key, event, size, sequencer, _now())
    record["s3"]["object"]["versionId"] = version_id
    return record


@pytest.fixture
def aws(moto_server, warehouse, monkeypatch, metrics_home):
    monkeypatch.setenv("STORAGE_BUCKETS", f"{UPLOADS},{SCENES}")
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=moto_server, region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName="s3-events")["QueueUrl"]
    for bucket in (UPLOADS, SCENES):
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=UPLOADS, VersioningConfiguration={"Status": "Enabled"})
    resources = {
        "warehouse": warehouse,
        "object_store": S3ObjectStore(s3=S3Resource(region_name="us-east-1", endpoint_url=moto_server)),
        "query_engine": DuckDBQueryEngine(object_store_dir=str(metrics_home / "objects")),
        "notification_queue": SQSNotificationQueue(queue_url=queue_url, endpoint_url=moto_server),
    }
    return s3, resources


def test_versioned_bucket_snapshot_and_live_usage(aws):
    s3, resources = aws
    warehouse, queue = resources["warehouse"], resources["notification_queue"]

    def put(bucket, key, size):
        return s3.put_object(Bucket=bucket, Key=key, Body=b"v" * size).get("VersionId")

    a1 = put(UPLOADS, "uploads/alice/u1/a.bin", 100)
    c1 = put(UPLOADS, "uploads/bob/b1/c.bin", 70)
    put(SCENES, "scenes/carol/s1/x.tif", 30)
    put(SCENES, "scenes/carol/s1/x.tif", 35)  # unversioned: the overwrite replaces
    assert a1 and a1 != "null"

    first = materialize_snapshot(resources)
    meta = metadata_of(first, "usage_snapshot")
    assert meta["versioned_buckets"] == f"{UPLOADS} (Enabled)"
    rows = warehouse.fetch_all(
        "SELECT owner, usage_amount, object_count, noncurrent_bytes FROM usage_data ORDER BY owner"
    )
    assert [tuple(r.values()) for r in rows] == [("alice", 100, 1, 0), ("bob", 70, 1, 0), ("carol", 35, 1, 0)]

    # After the snapshot: overwrite a (a1 becomes noncurrent), put b then delete it without a
    # version id (a delete marker: b's bytes stay, noncurrent), delete c's only version by id
    # (its bytes go), then expire a1 by id as a lifecycle rule on noncurrent versions would.
    a2 = put(UPLOADS, "uploads/alice/u1/a.bin", 250)
    b1 = put(UPLOADS, "uploads/alice/u1/b.bin", 40)
    marker = s3.delete_object(Bucket=UPLOADS, Key="uploads/alice/u1/b.bin")
    assert marker["DeleteMarker"] is True
    s3.delete_object(Bucket=UPLOADS, Key="uploads/bob/b1/c.bin", VersionId=c1)
    messages = [
        _versioned_record(UPLOADS, "uploads/alice/u1/a.bin", "ObjectCreated:Put", 250, a2, "0A"),
        _versioned_record(UPLOADS, "uploads/alice/u1/b.bin", "ObjectCreated:Put", 40, b1, "0B"),
        _versioned_record(
            UPLOADS, "uploads/alice/u1/b.bin", "ObjectRemoved:DeleteMarkerCreated", None, marker["VersionId"], "0C"
        ),
        _versioned_record(UPLOADS, "uploads/bob/b1/c.bin", "ObjectRemoved:Delete", None, c1, "0D"),
    ]
    for record in reversed(messages):  # in any order
        queue.send(s3_message(record))
    run_sensor(resources)
    stored = warehouse.fetch_all("SELECT key, version_id FROM storage_object_events ORDER BY sequencer")
    assert [r["version_id"] for r in stored] == [a2, b1, marker["VersionId"], c1]
    materialize_live(resources)
    # a2 250 + a1 100 (noncurrent, still stored) + b1 40 (under a delete marker); bob's c is gone.
    assert usage_rows(warehouse, "usage_live") == {("UPLOAD", "u1", "alice", 390, 3), ("SCENE", "s1", "carol", 35, 1)}

    # Lifecycle expires the noncurrent a1: exactly its 100 bytes go, a.bin stays.
    s3.delete_object(Bucket=UPLOADS, Key="uploads/alice/u1/a.bin", VersionId=a1)
    queue.send(
        s3_message(_versioned_record(UPLOADS, "uploads/alice/u1/a.bin", "LifecycleExpiration:Delete", None, a1, "0E"))
    )
    run_sensor(resources)
    materialize_live(resources)
    live = {("UPLOAD", "u1", "alice", 290, 2), ("SCENE", "s1", "carol", 35, 1)}
    assert usage_rows(warehouse, "usage_live") == live

    # A fresh listing of versions agrees, and says how much is noncurrent (b1 under its marker).
    second = materialize_snapshot(resources)
    assert usage_rows(warehouse, "usage_data") == live
    assert warehouse.scalar("SELECT noncurrent_bytes FROM usage_data WHERE owner = 'alice'") == 40
    meta = metadata_of(second, "usage_snapshot")
    assert (
        meta["keys_listed"],
        meta["keys_metered"],
        meta["delete_markers"],
        meta["noncurrent_bytes"],
        meta["noncurrent_versions"],
    ) == (4, 3, 1, 40, 1)
    versions = warehouse.fetch_all(
        "SELECT key, version_id, size FROM storage_snapshot_objects WHERE bucket = :b ORDER BY key", {"b": UPLOADS}
    )
    assert [tuple(v.values()) for v in versions] == [
        ("uploads/alice/u1/a.bin", a2, 250),
        ("uploads/alice/u1/b.bin", b1, 40),
    ]


def test_past_day_noncurrent_versions_from_a_hand_built_listing():
    """snapshot_tables on a listing shaped like ListObjectVersions' (Versions and DeleteMarkers
    flattened): the current version on a past day is the newest before the day's end."""
    con = open_session()
    rules = parse_rules({"rules": [{"pattern": "u/{owner}/{object_id}/**", "metered_object_type": "UPLOAD"}]})

    def t(d, h=12):
        return datetime(2026, 11, d, h, tzinfo=UTC)

    con.execute("""CREATE TABLE listing (bucket VARCHAR, key VARCHAR, size BIGINT, last_modified TIMESTAMPTZ,
                   version_id VARCHAR, is_latest BOOLEAN, is_delete_marker BOOLEAN)""")
    con.executemany(
        "INSERT INTO listing VALUES ('b', ?, ?, ?, ?, ?, ?)",
        [
            ("u/al/o1/k", 10, t(1), "v1", False, False),
            ("u/al/o1/k", 20, t(3), "v2", True, False),  # overwrote v1 on day 3
            ("u/al/o1/m", 5, t(1), "m1", False, False),
            ("u/al/o1/m", 0, t(2), "dm", True, True),  # a delete marker on day 2
        ],
    )
    cases = {1: (15, 2, 0), 2: (15, 2, 5), 3: (35, 3, 15)}  # day: (bytes, versions, noncurrent bytes)
    for day, (amount, count, noncurrent) in cases.items():
        stats = snapshot_tables(con, rules, date(2026, 11, day), t(day + 1, 0), t(day + 1, 0))
        assert con.execute("SELECT usage_amount, object_count, noncurrent_bytes FROM snapshot_usage").fetchall() == [
            (amount, count, noncurrent)
        ], day
        assert stats.noncurrent_bytes == noncurrent


def test_one_object_id_under_two_owners_bills_each_and_fails_the_check(local_resources, metrics_home):
    warehouse = local_resources["warehouse"]
    for key, size in (
        ("uploads/alice/u1/a.bin", 1000),
        ("uploads/bob/u1/b.bin", 500),
        ("uploads/bob/u1/c.bin", 20),
        ("uploads/carol/c7/x.bin", 3),
    ):
        path = metrics_home / "objects" / "platform-uploads" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)
    result = materialize_snapshot(local_resources)
    assert result.success  # the snapshot is written...
    assert usage_rows(warehouse, "usage_data") == {
        ("UPLOAD", "u1", "alice", 1000, 1),
        ("UPLOAD", "u1", "bob", 520, 2),
        ("UPLOAD", "c7", "carol", 3, 1),
    }
    [check] = [e for e in result.get_asset_check_evaluations() if e.check_name == "one_owner_per_object"]
    assert (check.passed, check.severity) == (False, dg.AssetCheckSeverity.ERROR)  # ...and the check fails
    assert check.metadata["conflicting_objects"].value == 1
    keys = check.metadata["keys"].value
    for key in ("uploads/alice/u1/a.bin", "uploads/bob/u1/b.bin", "uploads/bob/u1/c.bin"):
        assert f"s3://platform-uploads/{key}" in keys
    assert "carol" not in keys
    # Live usage and billing keep the owners apart too.
    materialize_live(local_resources)
    assert usage_rows(warehouse, "usage_live") == usage_rows(warehouse, "usage_data")
    month = TODAY.replace(day=1).isoformat()
    billing = materialize_billing(local_resources, month)
    rows = warehouse.fetch_all("SELECT owner, byte_days FROM storage_billing_monthly ORDER BY owner")
    assert [(r["owner"], r["byte_days"]) for r in rows] == [("alice", 1000), ("bob", 520), ("carol", 3)]
    meta = metadata_of(billing, "storage_billing_monthly")
    assert meta["owners_billed"] == 3 and meta["gb_days_total"] == pytest.approx(1523 / 1e9)
    assert "GB-days" in meta["preview"]
    # The same ids without a conflict pass.
    os.remove(metrics_home / "objects" / "platform-uploads" / "uploads/alice/u1/a.bin")
    again = materialize_snapshot(local_resources)
    [check] = [e for e in again.get_asset_check_evaluations() if e.check_name == "one_owner_per_object"]
    assert check.passed
    assert metadata_of(again, "usage_snapshot")["owners"] == 2


def test_metadata_of_every_storage_asset_is_numeric_and_human(local_resources, metrics_home):
    """Business figures are numeric metadata under stable names (the Plots tab charts them),
    previews speak GB, and constants (thresholds) are not numbers."""
    path = metrics_home / "objects" / "platform-uploads" / "uploads/alice/u1/a.bin"
    path.parent.mkdir(parents=True)
    with open(path, "wb") as f:
        f.truncate(1_500_000_000)
    noon = datetime.combine(TODAY - timedelta(days=1), datetime.min.time(), UTC) + timedelta(hours=12)
    os.utime(path, (noon.timestamp(), noon.timestamp()))
    snapshot = materialize_snapshot(local_resources)
    [event] = [
        e.materialization
        for e in snapshot.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey("usage_snapshot")
    ]
    for name in ("bytes_metered", "noncurrent_bytes", "objects_metered", "owners"):
        assert isinstance(event.metadata[name], dg.IntMetadataValue), name
    assert isinstance(event.metadata["gb_metered"], dg.FloatMetadataValue)
    assert event.metadata["gb_metered"].value == 1.5 and event.metadata["bytes_metered"].value == 1_500_000_000
    assert "1.50 GB" in event.metadata["preview"].value and "1500000000" not in event.metadata["preview"].value
    [event] = materialize_live(local_resources).asset_materializations_for_node("usage_live")
    assert isinstance(event.metadata["bytes_total"], dg.IntMetadataValue) and event.metadata["owners"].value == 1
    assert "1.50 GB" in event.metadata["preview"].value
    run_sensor(local_resources)
    from .conftest import evaluate_reconciliation

    materialize_snapshot(local_resources, TODAY - timedelta(days=1))  # gives today a base
    materialize_snapshot(local_resources)
    run_sensor(local_resources)
    [check] = evaluate_reconciliation(local_resources).get_asset_check_evaluations()
    assert check.metadata["status"].value == "ok"
    assert not any(
        isinstance(v, dg.FloatMetadataValue | dg.IntMetadataValue)
        for k, v in check.metadata.items()
        if k in ("thresholds",)
    )
