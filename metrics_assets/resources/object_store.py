"""The object-store role: buckets of objects (S3 in production, a directory locally).

Locally, ``METRICS_OBJECT_STORE_DIR`` (default ``$METRICS_HOME/objects``) plays S3: its first
level of folders are the buckets, and a key is the path below. In production, dagster-aws's
``S3Resource`` talks to S3; ``AWS_ENDPOINT_URL`` points it at any S3-compatible server.

Listing is a generator of pages, so a bucket of any size is never held in memory at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

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

    def list_version_pages(
        self, bucket: str, prefix: str = "", page_size: int = PAGE_SIZE
    ) -> Iterator[list[ObjectInfo]]:
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


def __getattr__(name: str):
    # S3ObjectStore lives in object_store_s3.py: importing dagster-aws costs about 0.6 s of CPU,
    # which local processes (and every run worker of a local deployment) need not pay.
    if name == "S3ObjectStore":
        from metrics_assets.resources.object_store_s3 import S3ObjectStore

        return S3ObjectStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
