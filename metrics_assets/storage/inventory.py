"""S3 Inventory as the snapshot's source: the day's report instead of a full listing.

Listing 100 million keys takes 100,000 ListObjectsV2 calls; S3 Inventory writes the same list
once a day. Where it lies (storage-inventory-location.html)::

    <destination-prefix>/<source-bucket>/<config-ID>/YYYY-MM-DDTHH-MMZ/manifest.json
    <destination-prefix>/<source-bucket>/<config-ID>/YYYY-MM-DDTHH-MMZ/manifest.checksum
    <destination-prefix>/<source-bucket>/<config-ID>/data/<uuid>.parquet | .csv.gz

``STORAGE_INVENTORY`` names, per metered bucket, ``s3://<destination-bucket>/<destination-prefix>
/<source-bucket>/<config-ID>`` (comma-separated; ``source-bucket=s3://...`` to say it
explicitly, else the manifest's ``sourceBucket`` tells). For a snapshot day, the latest
``YYYY-MM-DDTHH-MMZ/manifest.json`` of that day is read: its ``sourceBucket``,
``destinationBucket`` (an ARN), ``creationTimestamp`` (milliseconds: the time the snapshot
stands for, as a listing's start does), ``fileFormat`` (Parquet or CSV; ORC is refused with a
message), ``fileSchema`` and ``files`` (``key``, ``size``, ``MD5checksum``).

Columns (storage-inventory.html, storage-inventory-athena-query.html): Parquet/ORC use
``bucket, key, version_id, is_latest, is_delete_marker, size, last_modified_date``; CSV has no
header, its ``fileSchema`` names the columns (``Bucket, Key, VersionId, IsLatest,
IsDeleteMarker, Size, LastModifiedDate, ...``) and its keys are URL-encoded with '+' for a
space. ``VersionId``/``IsLatest``/``IsDeleteMarker`` exist only when the configuration
includes all versions; without them every row is a current object.

The data files are scanned where they lie: with the local query engine, DuckDB reads them in
place from the local object store (or from a local copy when the store is S3), through a view
that the snapshot uses as its listing (no copy of the rows), so attribution, versions and
owners follow exactly the rules of a listing. With Athena (production) the report stays in S3
and Athena scans it: :mod:`metrics_assets.storage.inventory_athena`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from metrics_assets.resources import ObjectStore
from metrics_assets.resources.sqltext import literal
from metrics_assets.settings import ConfigurationError

SETTING = "STORAGE_INVENTORY"
_FOLDER = re.compile(r"(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})Z")
# CSV fileSchema name -> the Parquet/ORC column name
CSV_COLUMNS = {
    "Bucket": "bucket",
    "Key": "key",
    "VersionId": "version_id",
    "IsLatest": "is_latest",
    "IsDeleteMarker": "is_delete_marker",
    "Size": "size",
    "LastModifiedDate": "last_modified_date",
}


@dataclass(frozen=True)
class InventoryLocation:
    bucket: str  # the destination bucket
    prefix: str  # <destination-prefix>/<source-bucket>/<config-ID>, without a trailing '/'
    source_bucket: str | None = None

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def parse_setting(value: str | None) -> list[InventoryLocation]:
    if not value or not value.strip():
        return []
    out = []
    for item in value.split(","):
        item = item.strip()
        if not item:
            continue
        named, sep, url = item.partition("=")
        source: str | None = named
        if not sep:
            source, url = None, item
        if not url.startswith("s3://"):
            raise ConfigurationError(
                f"{SETTING}: {item!r} is not s3://bucket/prefix (or source-bucket=s3://bucket/prefix)."
            )
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not bucket or not prefix.strip("/"):
            raise ConfigurationError(
                f"{SETTING}: {item!r} needs the inventory's folder: s3://<destination-bucket>/<prefix>/<source-bucket>/<config-ID>."
            )
        out.append(InventoryLocation(bucket, prefix.strip("/"), (source or "").strip() or None))
    return out


@dataclass(frozen=True)
class Manifest:
    location: InventoryLocation
    key: str
    source_bucket: str
    destination_bucket: str
    created_at: datetime
    file_format: str
    columns: list[str]  # data-file columns, in the Parquet/ORC names
    files: list[dict]


def _columns(file_format: str, schema: str) -> list[str]:
    if file_format == "CSV":
        names = [c.strip() for c in schema.split(",")]
        return [CSV_COLUMNS.get(n, n) for n in names]
    # Parquet: "message s3.inventory { required binary bucket (STRING); optional int64 size; ...}"
    return re.findall(r"(?:required|optional)\s+\w+\s+(\w+)", schema)


def latest_manifest(store: ObjectStore, location: InventoryLocation, day: date) -> Manifest | None:
    """The day's latest manifest under ``location``, or None when the day has none."""
    stamp = f"{location.prefix}/{day.isoformat()}T"
    keys = [
        o.key
        for page in store.list_pages(location.bucket, stamp)
        for o in page
        if o.key.endswith("/manifest.json") and _FOLDER.fullmatch(o.key[len(location.prefix) + 1 :].split("/")[0])
    ]
    if not keys:
        return None
    key = max(keys)
    raw = store.get_bytes(location.bucket, key)
    checksum_key = key.removesuffix("manifest.json") + "manifest.checksum"
    try:
        checksum = store.get_bytes(location.bucket, checksum_key).decode().strip()
    except Exception:
        checksum = None
    if checksum and checksum.lower() != hashlib.md5(raw).hexdigest():
        raise ConfigurationError(f"{SETTING}: s3://{location.bucket}/{key} does not match its manifest.checksum.")
    try:
        doc = json.loads(raw)
        file_format = doc["fileFormat"]
        manifest = Manifest(
            location=location,
            key=key,
            source_bucket=doc["sourceBucket"],
            destination_bucket=doc["destinationBucket"].removeprefix("arn:aws:s3:::"),
            created_at=datetime.fromtimestamp(int(doc["creationTimestamp"]) / 1000, UTC),
            file_format=file_format,
            columns=_columns(file_format, doc["fileSchema"]),
            files=list(doc["files"]),
        )
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigurationError(
            f"{SETTING}: s3://{location.bucket}/{key} is not an S3 Inventory manifest ({error})."
        ) from error
    if file_format not in ("CSV", "Parquet"):
        raise ConfigurationError(
            f"{SETTING}: s3://{location.bucket}/{key} is {file_format}; set the inventory's output format to Parquet (or CSV)."
        )
    missing = {"bucket", "key", "size"} - set(manifest.columns)
    if missing:
        raise ConfigurationError(
            f"{SETTING}: the inventory at {location.url} lacks {', '.join(sorted(missing))}: add the Size field to its configuration."
        )
    if location.source_bucket and manifest.source_bucket != location.source_bucket:
        raise ConfigurationError(
            f"{SETTING}: {location.url} is the inventory of {manifest.source_bucket}, not of {location.source_bucket}."
        )
    return manifest


def local_files(store: ObjectStore, manifest: Manifest, scratch: Path) -> list[Path]:
    """The data files as local paths: in place on a local store, else copied to ``scratch``."""
    paths = []
    for f in manifest.files:
        path = store.local_path(manifest.destination_bucket, f["key"])
        paths.append(path if path is not None else store.local_copy(manifest.destination_bucket, f["key"], scratch))
    return paths


def duckdb_relation(manifest: Manifest, paths: list[Path], versioned: bool) -> str:
    """A DuckDB SELECT giving the listing columns (LISTING_DDL) from the data files. A version
    id the inventory leaves empty is S3's null version ('null', as ListObjectVersions and the
    notifications name it) in a bucket that has versioning, and '' in one that never had."""
    files = "[" + ", ".join(literal(str(p)) for p in paths) + "]"
    cols = set(manifest.columns)
    if manifest.file_format == "Parquet":
        source = f"read_parquet({files})"
        key = "key"
    else:
        types = {c: ("BIGINT" if c == "size" else "VARCHAR") for c in manifest.columns}
        spec = "{" + ", ".join(f"{literal(c)}: {literal(t)}" for c, t in types.items()) + "}"
        source = f"read_csv({files}, header = false, columns = {spec}, quote = '\"', compression = 'auto')"
        key = "url_decode(replace(key, '+', '%20'))"  # S3 encodes a space as '+'

    def flag(name: str, default: str) -> str:
        if name not in cols:
            return default
        return name if manifest.file_format == "Parquet" else f"lower({name}) = 'true'"

    null_version = "null" if versioned else ""
    modified = "last_modified_date" if "last_modified_date" in cols else "NULL"
    if manifest.file_format == "CSV" and modified != "NULL":
        modified = "CAST(last_modified_date AS TIMESTAMPTZ)"
    return f"""SELECT bucket, {key} AS key, coalesce(CAST(size AS BIGINT), 0) AS size,
                      coalesce(CAST({modified} AS TIMESTAMPTZ), TIMESTAMPTZ '1970-01-01 00:00:00+00') AS last_modified,
                      {"coalesce(nullif(version_id, ''), " + literal(null_version) + ")" if "version_id" in cols else "''"} AS version_id,
                      coalesce({flag("is_latest", "true")}, true) AS is_latest,
                      coalesce({flag("is_delete_marker", "false")}, false) AS is_delete_marker
               FROM {source}"""


def scope_relation(store: ObjectStore, manifest: Manifest, prefix: str, versioned: bool, scratch: Path) -> str:
    """The inventory's rows under ``prefix`` as a DuckDB SELECT of the listing columns, read
    from the data files where they lie (copies in ``scratch`` when the store is remote: keep it
    until the rows have been used)."""
    relation = duckdb_relation(manifest, local_files(store, manifest, scratch), versioned)
    where = f" WHERE starts_with(key, {literal(prefix)})" if prefix else ""
    return f"SELECT * FROM ({relation}) AS inventory{where}"
