"""The object-store role on S3, through dagster-aws's ``S3Resource`` (production).

Kept apart from :mod:`metrics_assets.resources.object_store` so that only processes that use
S3 import dagster-aws and boto3.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dagster_aws.s3 import S3Resource
from pydantic import Field, PrivateAttr

from metrics_assets.resources.object_store import PAGE_SIZE, ObjectInfo, ObjectStore


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
                ObjectInfo(bucket, o["Key"], int(o["Size"]), o["LastModified"]) for o in response.get("Contents", [])
            ]

    def versioning(self, bucket: str) -> str | None:
        return self.client().get_bucket_versioning(Bucket=bucket).get("Status")

    def list_version_pages(
        self, bucket: str, prefix: str = "", page_size: int = PAGE_SIZE
    ) -> Iterator[list[ObjectInfo]]:
        paginator = self.client().get_paginator("list_object_versions")
        for response in paginator.paginate(Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size}):
            page = [
                ObjectInfo(bucket, v["Key"], int(v["Size"]), v["LastModified"], v["VersionId"], bool(v["IsLatest"]))
                for v in response.get("Versions", [])
            ]
            page += [
                ObjectInfo(bucket, m["Key"], 0, m["LastModified"], m["VersionId"], bool(m["IsLatest"]), True)
                for m in response.get("DeleteMarkers", [])
            ]
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
