"""usage_snapshot from S3 Inventory reports (STORAGE_INVENTORY) against moto over HTTP.

moto does not produce inventory reports, so the test writes them into a destination bucket on
moto exactly as S3 lays them out and words them:

* the folders ``<prefix>/<source-bucket>/<config-ID>/YYYY-MM-DDTHH-MMZ/manifest.json`` and
  ``manifest.checksum`` (the MD5 of manifest.json), ``.../hive/dt=YYYY-MM-DD-HH-MM/symlink.txt``
  (the data files' s3:// URLs, one a line, for Athena), data files under ``.../data/``
  (storage-inventory-location.html);
* manifest.json's fields as S3 writes them (``sourceBucket``, ``destinationBucket`` as an ARN,
  ``version`` "2016-11-30", ``creationTimestamp`` in milliseconds as a string, ``fileFormat``,
  ``fileSchema``, ``files`` with ``key``/``size``/``MD5checksum``) - the Parquet ``fileSchema``
  string is the one S3 writes for an all-versions inventory (seen in real manifests quoted by
  lakeFS's tests and a public nix-cache inventory);
* Parquet columns ``bucket, key, version_id, is_latest, is_delete_marker, size,
  last_modified_date (TIMESTAMP(MILLIS,true)), e_tag, storage_class, is_multipart_uploaded``;
  CSV: gzip, no header, every field quoted, columns as ``fileSchema`` names them, keys
  URL-encoded with '+' for a space (storage-inventory.html; cloud-custodian#1997).

The rows themselves come from moto's own ListObjectVersions, so the inventory says what S3's
would: the snapshot from it must equal the snapshot from listing.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import uuid
from datetime import UTC, datetime, time
from urllib.parse import quote_plus

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster_aws.s3 import S3Resource

from metrics_assets.resources import DuckDBQueryEngine, S3ObjectStore
from metrics_assets.settings import ConfigurationError
from metrics_assets.storage.inventory import parse_setting

from .conftest import TODAY, materialize_snapshot, metadata_of, usage_rows

UPLOADS, SCENES, INVENTORY = "platform-uploads", "platform-scenes", "platform-inventory"
PARQUET_SCHEMA = (
    "message s3.inventory {  required binary bucket (STRING);  required binary key (STRING);  optional binary "
    "version_id (STRING);  optional boolean is_latest;  optional boolean is_delete_marker;  optional int64 size;  "
    "optional int64 last_modified_date (TIMESTAMP(MILLIS,true));  optional binary e_tag (STRING);  optional binary "
    "storage_class (STRING);  optional boolean is_multipart_uploaded;}"
)
CSV_SCHEMA = "Bucket, Key, Size, LastModifiedDate, ETag, StorageClass, IsMultipartUploaded"


def _versions(s3, bucket: str) -> list[dict]:
    rows = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for v in page.get("Versions", []):
            rows.append(
                {
                    "bucket": bucket,
                    "key": v["Key"],
                    "version_id": v["VersionId"],
                    "is_latest": v["IsLatest"],
                    "is_delete_marker": False,
                    "size": v["Size"],
                    "last_modified_date": v["LastModified"],
                    "e_tag": v["ETag"].strip('"'),
                    "storage_class": "STANDARD",
                    "is_multipart_uploaded": False,
                }
            )
        for m in page.get("DeleteMarkers", []):
            rows.append(
                {
                    "bucket": bucket,
                    "key": m["Key"],
                    "version_id": m["VersionId"],
                    "is_latest": m["IsLatest"],
                    "is_delete_marker": True,
                    "size": None,
                    "last_modified_date": m["LastModified"],
                    "e_tag": None,
                    "storage_class": None,
                    "is_multipart_uploaded": None,
                }
            )
    return rows


def _publish(s3, source: str, file_format: str, rows: list[dict], created: datetime, config_id: str = "daily") -> str:
    """Write an inventory report into the destination bucket as S3 does; returns its folder URL."""
    base = f"inventory/{source}/{config_id}"
    files = []
    if file_format == "Parquet":
        schema = pa.schema(
            [
                ("bucket", pa.string()),
                ("key", pa.string()),
                ("version_id", pa.string()),
                ("is_latest", pa.bool_()),
                ("is_delete_marker", pa.bool_()),
                ("size", pa.int64()),
                ("last_modified_date", pa.timestamp("ms", tz="UTC")),
                ("e_tag", pa.string()),
                ("storage_class", pa.string()),
                ("is_multipart_uploaded", pa.bool_()),
            ]
        )
        for part in (rows[: len(rows) // 2], rows[len(rows) // 2 :]):  # two data files
            sink = io.BytesIO()
            pq.write_table(pa.Table.from_pylist(part, schema=schema), sink)
            files.append((f"{base}/data/{uuid.uuid4()}.parquet", sink.getvalue()))
        file_schema = PARQUET_SCHEMA
    else:
        text = io.StringIO()
        writer = csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n")
        for r in rows:
            writer.writerow(
                [
                    r["bucket"],
                    quote_plus(r["key"], safe="/"),
                    r["size"],
                    r["last_modified_date"].strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                    r["e_tag"],
                    "STANDARD",
                    "false",
                ]
            )
        files.append((f"{base}/data/{uuid.uuid4()}.csv.gz", gzip.compress(text.getvalue().encode())))
        file_schema = CSV_SCHEMA
    for key, body in files:
        s3.put_object(Bucket=INVENTORY, Key=key, Body=body)
    manifest = json.dumps(
        {
            "sourceBucket": source,
            "destinationBucket": f"arn:aws:s3:::{INVENTORY}",
            "version": "2016-11-30",
            "creationTimestamp": str(int(created.timestamp() * 1000)),
            "fileFormat": file_format,
            "fileSchema": file_schema,
            "files": [{"key": k, "size": len(b), "MD5checksum": hashlib.md5(b).hexdigest()} for k, b in files],
        },
        indent=2,
    ).encode()
    folder = f"{base}/{created:%Y-%m-%dT%H-%MZ}"
    # The Hive-compatible manifest: one s3:// URL of a data file per line (storage-inventory-location.html).
    symlink = "".join(f"s3://{INVENTORY}/{k}\n" for k, _ in files).encode()
    s3.put_object(Bucket=INVENTORY, Key=f"{base}/hive/dt={created:%Y-%m-%d-%H-%M}/symlink.txt", Body=symlink)
    s3.put_object(Bucket=INVENTORY, Key=f"{folder}/manifest.json", Body=manifest)
    s3.put_object(Bucket=INVENTORY, Key=f"{folder}/manifest.checksum", Body=hashlib.md5(manifest).hexdigest().encode())
    return f"s3://{INVENTORY}/{base}"


@pytest.fixture
def aws(moto_server, warehouse, monkeypatch, metrics_home):
    monkeypatch.setenv("STORAGE_BUCKETS", f"{UPLOADS},{SCENES}/scenes/")
    s3 = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    for bucket in (UPLOADS, SCENES, INVENTORY):
        s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=UPLOADS, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=UPLOADS, Key="uploads/alice/u1/a.bin", Body=b"a" * 100)
    s3.put_object(Bucket=UPLOADS, Key="uploads/alice/u1/a.bin", Body=b"a" * 250)  # 100 now noncurrent
    s3.put_object(Bucket=UPLOADS, Key="uploads/bob/b1/c d+e.bin", Body=b"c" * 40)
    s3.delete_object(Bucket=UPLOADS, Key="uploads/bob/b1/c d+e.bin")  # a delete marker: 40 noncurrent
    s3.put_object(Bucket=UPLOADS, Key="misc/readme.txt", Body=b"r" * 7)
    s3.put_object(Bucket=SCENES, Key="scenes/carol/s1/band 1+2.tif", Body=b"s" * 30)
    s3.put_object(Bucket=SCENES, Key="scenes/carol/s1/band 3.tif", Body=b"s" * 5)
    s3.put_object(Bucket=SCENES, Key="thumbnails/carol/s1.png", Body=b"t" * 3)  # outside the metered prefix
    resources = {
        "warehouse": warehouse,
        "object_store": S3ObjectStore(s3=S3Resource(region_name="us-east-1", endpoint_url=moto_server)),
        "query_engine": DuckDBQueryEngine(object_store_dir=str(metrics_home / "objects")),
    }
    return s3, resources


EXPECTED = {
    ("UPLOAD", "u1", "alice", 350, 2),
    ("UPLOAD", "b1", "bob", 40, 1),
    ("UNATTRIBUTED", UPLOADS, None, 7, 1),
    ("SCENE", "s1", "carol", 35, 2),
}


def test_snapshot_from_parquet_and_csv_inventories_equals_the_listing(aws, monkeypatch):
    s3, resources = aws
    warehouse = resources["warehouse"]
    assert materialize_snapshot(resources).success
    assert usage_rows(warehouse, "usage_data") == EXPECTED
    by_listing = warehouse.fetch_all("SELECT owner, noncurrent_bytes FROM usage_data ORDER BY owner")

    created = datetime.combine(TODAY, time(0, 30), UTC)  # the day's report, taken at 00:30
    uploads = _publish(s3, UPLOADS, "Parquet", _versions(s3, UPLOADS), created)
    # Scenes: a current-only CSV inventory (no version columns), with an earlier report of the same
    # day that must not be the one read.
    stale = [
        {
            "bucket": SCENES,
            "key": "scenes/carol/s1/old.tif",
            "size": 10**9,
            "e_tag": "x",
            "last_modified_date": datetime(2026, 1, 1, tzinfo=UTC),
        }
    ]
    _publish(s3, SCENES, "CSV", stale, created.replace(minute=0))
    scenes = _publish(s3, SCENES, "CSV", list(_versions(s3, SCENES)), created)
    monkeypatch.setenv("STORAGE_INVENTORY", f"{uploads}, {SCENES}={scenes}")

    result = materialize_snapshot(resources)
    assert usage_rows(warehouse, "usage_data") == EXPECTED
    assert warehouse.fetch_all("SELECT owner, noncurrent_bytes FROM usage_data ORDER BY owner") == by_listing
    assert {r["owner"]: r["noncurrent_bytes"] for r in by_listing} == {"alice": 100, "bob": 40, "carol": 0, None: 0}
    meta = metadata_of(result, "usage_snapshot")
    assert meta["source"] == "inventory" and meta["listed_at"] == created.isoformat()
    assert (meta["keys_listed"], meta["keys_metered"], meta["delete_markers"]) == (7, 6, 1)  # thumbnails/ left out
    assert "Parquet, 2 file(s)" in meta["inventories"] and "CSV, 1 file(s)" in meta["inventories"]
    keys = {
        r["key"]
        for r in warehouse.fetch_all("SELECT key FROM storage_snapshot_objects WHERE bucket = :b", {"b": SCENES})
    }
    assert keys == {"scenes/carol/s1/band 1+2.tif", "scenes/carol/s1/band 3.tif"}  # '+' and ' ' decoded right
    run = warehouse.fetch_all("SELECT source, listed_at FROM storage_snapshot_runs")[0]
    assert run["source"] == "inventory"


def test_inventory_problems_fail_the_run_naming_the_setting(aws, monkeypatch):
    s3, resources = aws
    monkeypatch.setenv("STORAGE_INVENTORY", f"s3://{INVENTORY}/inventory/{UPLOADS}/daily")
    result = materialize_snapshot(resources, raise_on_error=False)
    assert not result.success
    [failure] = result.get_step_failure_events()
    text = str(failure.step_failure_data.user_failure_data.description)
    assert (
        f"STORAGE_INVENTORY: no inventory of {TODAY}" in text and f"s3://{INVENTORY}/inventory/{UPLOADS}/daily" in text
    )

    created = datetime.combine(TODAY, time(0, 30), UTC)
    url = _publish(s3, UPLOADS, "Parquet", _versions(s3, UPLOADS), created)
    folder = url.removeprefix(f"s3://{INVENTORY}/") + f"/{created:%Y-%m-%dT%H-%MZ}"
    body = json.loads(s3.get_object(Bucket=INVENTORY, Key=f"{folder}/manifest.json")["Body"].read())
    body["fileFormat"] = "ORC"
    raw = json.dumps(body).encode()
    s3.put_object(Bucket=INVENTORY, Key=f"{folder}/manifest.json", Body=raw)
    s3.put_object(Bucket=INVENTORY, Key=f"{folder}/manifest.checksum", Body=b"0" * 32)
    result = materialize_snapshot(resources, raise_on_error=False)
    assert "does not match its manifest.checksum" in str(
        result.get_step_failure_events()[0].step_failure_data.user_failure_data.description
    )
    s3.put_object(Bucket=INVENTORY, Key=f"{folder}/manifest.checksum", Body=hashlib.md5(raw).hexdigest().encode())
    result = materialize_snapshot(resources, raise_on_error=False)
    assert "is ORC; set the inventory's output format to Parquet" in str(
        result.get_step_failure_events()[0].step_failure_data.user_failure_data.description
    )


def test_setting_parses():
    assert [
        (x.bucket, x.prefix, x.source_bucket) for x in parse_setting("s3://inv/a/b/c/, src=s3://inv2/x/src/cfg")
    ] == [("inv", "a/b/c", None), ("inv2", "x/src/cfg", "src")]
    for bad in ("inv/a", "s3://inv", "s3://inv/"):
        with pytest.raises(ConfigurationError, match="STORAGE_INVENTORY"):
            parse_setting(bad)
