"""Infrastructure roles, each an interface with one implementation per deployment.

| role (resource key)  | local (default)                  | production                        |
|----------------------|----------------------------------|-----------------------------------|
| ``warehouse``        | SQLite file or PostgreSQL URL     | PostgreSQL                        |
| ``object_store``     | folder, first level = buckets     | S3 (dagster-aws ``S3Resource``)   |
| ``query_engine``     | DuckDB over the local lake        | Athena (pyathena)                 |
| ``notification_queue`` | spool folder, a file a message  | SQS                               |

``METRICS_DEPLOYMENT`` picks the column; assets only ever see the role.
"""

from __future__ import annotations

from typing import Any

from dagster import EnvVar

from metrics_assets import settings
from metrics_assets.resources.notification_queue import (
    NotificationQueue,
    QueueMessage,
    SpoolNotificationQueue,
    SQSNotificationQueue,
)
from metrics_assets.resources.object_store import (
    LocalObjectStore,
    ObjectInfo,
    ObjectStore,
)
from metrics_assets.resources.query_engine import (
    AthenaQueryEngine,
    DuckDBQueryEngine,
    QueryEngine,
    QueryFailed,
    QueryResult,
)
from metrics_assets.resources.warehouse import Warehouse

__all__ = [
    "AthenaQueryEngine",
    "DuckDBQueryEngine",
    "LocalObjectStore",
    "NotificationQueue",
    "ObjectInfo",
    "ObjectStore",
    "QueryEngine",
    "QueryFailed",
    "QueryResult",
    "QueueMessage",
    "S3ObjectStore",
    "SQSNotificationQueue",
    "SpoolNotificationQueue",
    "Warehouse",
    "build_resources",
]


def __getattr__(name: str):
    # Production-only classes, imported on first use (dagster-aws costs ~0.6 s CPU to import).
    if name == "S3ObjectStore":
        from metrics_assets.resources.object_store_s3 import S3ObjectStore

        return S3ObjectStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _from_env(name: str) -> Any:
    """``EnvVar(name)`` when the variable is set (resolved at run time), else None."""
    return EnvVar(name) if settings.env(name) is not None else None


def _aws_credentials() -> dict[str, Any]:
    if settings.env("AWS_ACCESS_KEY_ID") is None:
        return {}  # boto3's own chain: instance role, profile, web identity...
    return {
        "aws_access_key_id": EnvVar("AWS_ACCESS_KEY_ID"),
        "aws_secret_access_key": EnvVar("AWS_SECRET_ACCESS_KEY"),
    }


def _warehouse() -> Warehouse:
    if settings.env("METRICS_WAREHOUSE_URL"):
        return Warehouse(url=EnvVar("METRICS_WAREHOUSE_URL"))
    if settings.deployment() == settings.PRODUCTION:
        # Resolved at run time: a run fails with "METRICS_WAREHOUSE_URL is not set".
        return Warehouse(url=EnvVar("METRICS_WAREHOUSE_URL"))
    return Warehouse(url=settings.warehouse_url())


def build_resources(deployment: str | None = None) -> dict[str, Any]:
    """The resources for a deployment (default: ``METRICS_DEPLOYMENT``)."""
    deployment = deployment or settings.deployment()
    if deployment == settings.LOCAL:
        return {
            "warehouse": _warehouse(),
            "object_store": LocalObjectStore(root_dir=str(settings.object_store_dir())),
            "query_engine": DuckDBQueryEngine(
                object_store_dir=str(settings.object_store_dir()), database=settings.duckdb_path()
            ),
            "notification_queue": SpoolNotificationQueue(spool_dir=str(settings.spool_dir())),
        }

    from dagster_aws.s3 import S3Resource

    from metrics_assets.resources.object_store_s3 import S3ObjectStore

    region = settings.aws_region()
    endpoint = _from_env("AWS_ENDPOINT_URL")
    creds = _aws_credentials()
    s3_kwargs = {k: v for k, v in {"endpoint_url": endpoint, **creds}.items() if v is not None}
    return {
        "warehouse": _warehouse(),
        "object_store": S3ObjectStore(s3=S3Resource(region_name=region, **s3_kwargs)),
        "query_engine": AthenaQueryEngine(
            work_group=EnvVar("ATHENA_WORK_GROUP"),
            output_location=EnvVar("ATHENA_OUTPUT_LOCATION"),
            database=EnvVar("ATHENA_DATABASE"),
            region_name=region,
            endpoint_url=_from_env("ATHENA_ENDPOINT_URL") or endpoint,
            **creds,
        ),
        "notification_queue": SQSNotificationQueue(
            queue_url=EnvVar("S3_NOTIFICATIONS_QUEUE_URL"),
            region_name=region,
            endpoint_url=_from_env("SQS_ENDPOINT_URL") or endpoint,
            **creds,
        ),
    }
