"""The object-store role: buckets of objects (S3 in production, a directory locally).

Locally, ``METRICS_OBJECT_STORE_DIR`` (default ``$METRICS_HOME/objects``) plays S3: its first
level of folders are the buckets, and a key is the path below. In production, dagster-aws's
``S3Resource`` talks to S3; ``AWS_ENDPOINT_URL`` points it at any S3-compatible server.

Listing is a generator of pages, so a bucket of any size is never held in memory at once.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource
from dagster_aws.s3 import S3Resource
from pydantic import Field, PrivateAttr

PAGE_SIZE = 1000


@dataclass(frozen=True)
class ObjectInfo:
    bucket: str
    key: str
    size: int
    last_modified: datetime
    #: For a versioned listing (ListObjectVersions): S3's version id ('null' for the null
    #: version), whether it is the key's latest, whether it is a delete marker (size 0).
    #: A plain listing leaves the defaults: '', latest, not a marker.
    version_id: str = ""
    is_latest: bool = True
    is_delete_marker: bool = False


class ObjectStore(ConfigurableResource):
    """The interface. Assets annotate their parameter with this class."""

    def list_pages(self, bucket: str, prefix: str = "", page_size: int = PAGE_SIZE) -> Iterator[list[ObjectInfo]]:
        raise NotImplementedError

    def versioning(self, bucket: str) -> str | None:
        """S3's versioning status of the bucket: 'Enabled', 'Suspended', or None (never enabled)."""
        return None

    def list_version_pages(self, bucket: str, prefix: str = "", page_size: int = PAGE_SIZE) -> Iterator[list[ObjectInfo]]:
        """Every version and delete marker (ListObjectVersions); a store without versions lists objects."""
        return self.list_pages(bucket, prefix, page_size)

    def list_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        for page in self.list_pages(bucket, prefix):
            yield from page

    def get_bytes(self, bucket: str, key: str) -> bytes:
        raise NotImplementedError

    def put_bytes(self, bucket: str, key: str, data: bytes) -> None:
        raise NotImplementedError

    def delete(self, bucket: str, key: str) -> None:
        raise NotImplementedError

    def local_copy(self, bucket: str, key: str, directory: Path) -> Path:
        """A local file with the object's bytes, for engines that read files (DuckDB)."""
        raise NotImplementedError

    def local_path(self, bucket: str, key: str = "") -> Path | None:
        """The object's own path when the store is local, else None."""
        return None


class LocalObjectStore(ObjectStore):
    root_dir: str = Field(description="Folder whose first level plays the buckets.")

    @property
    def root(self) -> Path:
        return Path(self.root_dir)

    def local_path(self, bucket: str, key: str = "") -> Path:
        path = (self.root / bucket / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"key {key!r} escapes bucket {bucket!r}")
        return path

    def list_pages(self, bucket: str, prefix: str = "", page_size: int = PAGE_SIZE) -> Iterator[list[ObjectInfo]]:
        base = self.root / bucket
        if not base.is_dir():
            return
        page: list[ObjectInfo] = []
        # Walk in key order, like S3, without materialising the whole tree.
        for path in _walk_sorted(base):
            key = path.relative_to(base).as_posix()
            if not key.startswith(prefix):
                continue
            stat = path.stat()
            page.append(ObjectInfo(bucket, key, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC)))
            if len(page) >= page_size:
                yield page
                page = []
        if page:
            yield page

    def get_bytes(self, bucket: str, key: str) -> bytes:
        return self.local_path(bucket, key).read_bytes()

    def put_bytes(self, bucket: str, key: str, data: bytes) -> None:
        path = self.local_path(bucket, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp-upload")
        tmp.write_bytes(data)
        tmp.replace(path)

    def delete(self, bucket: str, key: str) -> None:
        self.local_path(bucket, key).unlink(missing_ok=True)

    def local_copy(self, bucket: str, key: str, directory: Path) -> Path:
        return self.local_path(bucket, key)


def _walk_sorted(base: Path) -> Iterator[Path]:
    for entry in sorted(base.iterdir(), key=lambda p: p.name):
        if entry.is_dir():
            yield from _walk_sorted(entry)
        elif entry.is_file() and not entry.name.endswith(".tmp-upload"):
            yield entry


class S3ObjectStore(ObjectStore):
    s3: S3Resource = Field(description="dagster-aws S3 resource (region, endpoint, credentials).")

    _client: Any = PrivateAttr(default=None)

    def client(self):
        """One boto3 client per resource instance (building one costs tens of ms)."""
        if self._client is None:
            self._client = self.s3.get_client()
        return self._client

    def list_pages(self, bucket: str, prefix: str = "", page_size: int = PAGE_SIZE) -> Iterator[list[ObjectInfo]]:
        paginator = self.client().get_paginator("list_objects_v2")
        for response in paginator.paginate(Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size}):
            yield [
                ObjectInfo(bucket, o["Key"], int(o["Size"]), o["LastModified"])
                for o in response.get("Contents", [])
            ]

    def versioning(self, bucket: str) -> str | None:
        return self.client().get_bucket_versioning(Bucket=bucket).get("Status")

    def list_version_pages(self, bucket: str, prefix: str = "", page_size: int = PAGE_SIZE) -> Iterator[list[ObjectInfo]]:
        paginator = self.client().get_paginator("list_object_versions")
        for response in paginator.paginate(Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size}):
            page = [ObjectInfo(bucket, v["Key"], int(v["Size"]), v["LastModified"], v["VersionId"], bool(v["IsLatest"]))
                    for v in response.get("Versions", [])]
            page += [ObjectInfo(bucket, m["Key"], 0, m["LastModified"], m["VersionId"], bool(m["IsLatest"]), True)
                     for m in response.get("DeleteMarkers", [])]
            yield page

    def get_bytes(self, bucket: str, key: str) -> bytes:
        return self.client().get_object(Bucket=bucket, Key=key)["Body"].read()

    def put_bytes(self, bucket: str, key: str, data: bytes) -> None:
        self.client().put_object(Bucket=bucket, Key=key, Body=data)

    def delete(self, bucket: str, key: str) -> None:
        self.client().delete_object(Bucket=bucket, Key=key)

    def local_copy(self, bucket: str, key: str, directory: Path) -> Path:
        target = Path(directory) / bucket / key
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
            self.client().download_fileobj(bucket, key, tmp)
        shutil.move(tmp.name, target)
        return target
